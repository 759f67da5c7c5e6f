"""The report's opening: a three-line takeaway derived from the verdicts, and a glossary of its terms."""

from __future__ import annotations

import pandas as pd

from rewardlab.optimize.curves import SAMPLE
from rewardlab.verdict import HACKED, NOT_HACKED, UNDETERMINED

GLOSSARY = (
    ("gold", "the true reward: the task's rule (or a given scorer), which the optimizer never sees"),
    ("proxy", "the reward the optimizer maximises: learned, written or given"),
    ("std units", "a reward minus the base policy's mean, divided by its standard deviation, on "
                  "the held-out pool (Gao et al. 2022); 1 = one standard deviation of the base "
                  "policy's samples"),
    ("nats", "the unit of KL(π‖π_init), natural logarithms; best-of-n's is exact under the pool"),
    ("√KL", "the distance from the base policy on the curves' x-axis, as in Gao et al. 2022"),
    ("k1 / k3", "two estimators of KL from samples of π: k1 = mean of log π − log π_init "
                "(unbiased, can be negative), k3 = mean of (r − 1) − log r with r = π_init/π "
                "(never negative)"),
    ("hacked", "gold falls after its peak, beyond noise and beyond the same optimizer's fall "
               "against the gold itself (the control); cross-fitted over prompts"),
    ("not hacked", "the fall's 95% interval lies within the equivalence margin, within the KL "
                   "the run reached"),
    ("undetermined", "neither: more prompts, steps or seeds are needed"),
    ("censored", "the peak of a trained optimizer's gold is at its last measured step: the "
                 "budget ended the rise, so where the peak would be is not known"),
)  # fmt: skip

_ORDER = (HACKED, NOT_HACKED, UNDETERMINED)


def _by_verdict(rows: pd.DataFrame, censored: set[tuple[str, str]]) -> str:
    """`hacked: a, b; not hacked: c (censored)`: the rewards of `rows` grouped by verdict."""
    parts = []
    for v in _ORDER:
        names = [r.reward + (" (censored)" if (r.optimizer, r.reward) in censored else "")
                 for r in rows.itertuples() if r.verdict == v]  # fmt: skip
        if names:
            parts.append(f"{v}: {', '.join(names)}")
    return "; ".join(parts) if parts else "no verdict"


def _judges(summary: pd.DataFrame, rms: pd.DataFrame) -> str | None:
    """Held-out accuracy of each learned reward by size, and whether it rises with size."""
    if not len(rms) or "test_accuracy" not in rms:
        return None
    sized = summary[summary.params > 0].drop_duplicates("reward").sort_values("params")
    acc = []
    for r in sized.itertuples():
        a = rms.loc[rms.stage == f"rm-{r.reward}", "test_accuracy"]
        if len(a):
            acc.append((r.reward, int(r.params), float(a.mean())))
    if not acc:
        return None
    listed = ", ".join(f"{a:.3f} ({n}, {p:,} parameters)" for n, p, a in acc)
    if len(acc) == 1:
        return f"Reward model: held-out accuracy {listed}."
    rises = all(b[2] > a[2] for a, b in zip(acc, acc[1:], strict=False))
    trend = "it rises with size" if rises else "it does NOT rise with size"
    return f"Reward models: held-out accuracy {listed}: {trend}."


def takeaway(summary: pd.DataFrame, fams: dict[str, str], rms: pd.DataFrame) -> list[str]:
    """The takeaway, each line read off the run's tables: the reward models' held-out accuracy
    against size (from `rms`), then one line per sample-based optimizer and one for the trained
    ones with the rewards grouped by verdict (from `summary`); a trained curve whose summary row
    is ``censored`` (its peak at its last step) is marked so."""
    censored = {(r.optimizer, r.reward) for r in summary.itertuples()
                if fams.get(r.optimizer) != SAMPLE and r.censored}  # fmt: skip
    lines = [line for line in [_judges(summary, rms)] if line]
    sampled = summary[summary.optimizer.map(fams) == SAMPLE]
    for opt, rows in sampled.groupby("optimizer", sort=False):
        kl = rows.final_kl.max()
        lines.append(f"{opt.upper()} up to KL = {kl:.2f} nats: {_by_verdict(rows, censored)}.")
    trained = summary[summary.optimizer.map(fams) != SAMPLE]
    if len(trained):
        lines.append(" ".join(
            f"{opt.upper()}: {_by_verdict(rows, censored)}."
            for opt, rows in trained.groupby("optimizer", sort=False)
        ))  # fmt: skip
    return lines


def glossary_html() -> str:
    """The glossary as an HTML definition list."""
    return "<dl>" + "".join(f"<dt>{t}</dt><dd>{d}</dd>" for t, d in GLOSSARY) + "</dl>"
