"""`python -m rewardlab ...`: the command line (`rewardlab.cli`)."""

from rewardlab.cli import main

main()
