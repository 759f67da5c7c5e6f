"""Adapters that hand the lab's rewards and measurements to outside trainers (OpenRLHF, verl, TRL)."""
