"""Optimizers behind one contract (`optimize.base`): best-of-n (sample-based) and TRL's trainers.

`KINDS` maps each kind to its module; `OptimizerSpec` is the union a study's ``optimizers:``
list is validated against; `family(algorithm)` says whether curves of an algorithm come from
picking samples or from training. Adding an optimizer = one module here and its test.
"""

from typing import Annotated

from pydantic import Field

from rewardlab.optimize import best_of_n, dpo, rl

KINDS = {"bon": best_of_n, "grpo": rl, "rloo": rl, "dpo": dpo}

OptimizerSpec = Annotated[best_of_n.Config | rl.Config | dpo.Config, Field(discriminator="kind")]

# the `optimizer` column of curves.csv names the algorithm as run (dpo's IPO loss runs as "ipo")
ALGORITHMS = {**{k: m.FAMILY for k, m in KINDS.items()}, "ipo": dpo.FAMILY}


def family(algorithm: str) -> str:
    """``"sample"`` or ``"trained"`` for an algorithm named in curves.csv (an unknown one, from a
    newer or foreign run folder, counts as trained)."""
    return ALGORITHMS.get(algorithm, "trained")
