"""Optimisers against a reward: best-of-n on a shared pool (and, later, RL)."""
