"""Optimizers behind one contract (`optimize.curves`): best-of-n (sample-based) and TRL's trainers.

`KINDS` maps each kind to its module; the study's ``optimizers:`` list is validated against the
union of their configs (`specs.kind_union`) and each optimizer is run by its config's own module
(`specs.module_of`). Adding an optimizer = one module here, its test, and its line in `KINDS`.
"""

from rewardlab.optimize import best_of_n, dpo, rl

KINDS = {"bon": best_of_n, "grpo": rl, "rloo": rl, "dpo": dpo}
