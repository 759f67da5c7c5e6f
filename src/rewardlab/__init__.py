"""rewardlab: a laboratory for learned reward functions and the ways optimisation against them goes wrong."""

import os

# OpenMP threads that spin while they wait make two lab processes on the same cores run 10-30x
# slower instead of 2x (docs/PERFORMANCE.md, "Several processes on the same cores"). Passive
# waiting is set before torch loads; it applies when rewardlab is imported first (the CLI is).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from rewardlab.errors import RewardLabError  # noqa: E402

__all__ = ["RewardLabError", "load", "run"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """`rewardlab.run` and `rewardlab.load` (`rewardlab.api`), imported on first use so that
    ``import rewardlab`` stays light."""
    if name in ("run", "load"):
        from rewardlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'rewardlab' has no attribute {name!r}")
