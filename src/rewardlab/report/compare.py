"""Overlays the curves of separate run folders (`rewardlab compare`): gold and proxy against √KL,
one column per optimizer, one line per run and reward, and a table of each curve's peak and end."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from rewardlab.common.io import write_atomic  # noqa: E402
from rewardlab.errors import RewardLabError  # noqa: E402


def _names(runs: list[Path]) -> list[str]:
    """A short unique name per run: the folder's name, or parent/name where names repeat."""
    names = [r.name for r in runs]
    return [f"{r.parent.name}/{r.name}" if names.count(r.name) > 1 else r.name for r in runs]


SAME = ("task", "policy", "sampling")  # what runs must share for their gold curves to compare


def differences(runs: list[Path], names: list[str] | None = None) -> list[str]:
    """One line per config section of `SAME` in which the runs differ (read from each run's
    ``config.yaml``; a run without one is named as unchecked): gold of different tasks, or KL
    from different base policies, do not share an axis."""
    import yaml

    names = names or _names(runs)
    seen: dict[str, dict[str, list[str]]] = {k: {} for k in SAME}
    out = []
    for run, name in zip(runs, names, strict=True):
        f = run / "config.yaml"
        if not f.is_file():
            out.append(f"{name} has no config.yaml: whether it shares the others' task and "
                       "policy is not checked")  # fmt: skip
            continue
        cfg = yaml.safe_load(f.read_text()) or {}
        for k in SAME:
            seen[k].setdefault(yaml.safe_dump(cfg.get(k), sort_keys=True), []).append(name)
    for k, groups in seen.items():
        if len(groups) > 1:
            parts = "; ".join(", ".join(g) for g in groups.values())
            out.append(f"the runs differ in '{k}' ({parts}): their curves are not on one scale")
    return out


def compare(runs: list[Path], out: Path) -> pd.DataFrame:
    """Write ``compare.csv`` (every run's curves with a ``run`` column), ``compare.png``,
    ``summary.csv`` and, when the runs differ in task, policy or sampling, ``warnings.txt``
    (`differences`) into `out`; return the summary: per run, optimizer and reward, the peak gold
    (max over steps of gold), its step and √KL, and the final gold, proxy and KL (at the last
    step).

    Raises:
        RewardLabError: no runs, a run folder without ``curves.csv``, or one that cannot be read.
    """
    if not runs:
        raise RewardLabError("compare: give at least one run folder")
    frames = []
    for run, name in zip(runs, _names(runs), strict=True):
        f = run / "curves.csv"
        if not f.is_file():
            raise RewardLabError(f"compare: {run} is not a finished run folder (no curves.csv)")
        try:
            c = pd.read_csv(f)
            missing = {"optimizer", "reward", "step", "sqrt_kl", "kl", "gold", "proxy"} - set(c)
        except (OSError, ValueError) as exc:
            raise RewardLabError(f"compare: cannot read {f}: {exc}") from None
        if missing:
            raise RewardLabError(f"compare: {f} lacks the columns {sorted(missing)}")
        frames.append(c.assign(run=name))
    curves = pd.concat(frames, ignore_index=True)
    rows = []
    for (run, opt, reward), c in curves.groupby(["run", "optimizer", "reward"], sort=False):
        c = c.sort_values("step")
        peak = c.loc[c.gold.idxmax()]
        last = c.iloc[-1]
        rows.append(dict(run=run, optimizer=opt, reward=reward, peak_gold=peak.gold,
                         peak_step=int(peak.step), peak_sqrt_kl=peak.sqrt_kl,
                         final_gold=last.gold, final_proxy=last.proxy, final_kl=last.kl))  # fmt: skip
    summary = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "compare.csv", curves.to_csv(index=False))
    write_atomic(out / "summary.csv", summary.to_csv(index=False))
    warned = differences(runs)
    if warned:
        write_atomic(out / "warnings.txt", "\n".join(warned) + "\n")
    _plot(curves, out / "compare.png")
    return summary


def _plot(curves: pd.DataFrame, path: Path) -> None:
    """Gold (top) and proxy (below) against √KL, a column per optimizer; an optimizer without a
    proxy (DPO trains on pairs, not on a reward) has no proxy panel."""
    opts = list(dict.fromkeys(curves.optimizer))
    fig, axes = plt.subplots(2, len(opts), figsize=(5 * len(opts), 7), squeeze=False)
    runs = list(dict.fromkeys(curves.run))
    styles = ["-", "--", ":", "-."]
    for j, opt in enumerate(opts):
        sub = curves[curves.optimizer == opt]
        rewards = list(dict.fromkeys(sub.reward))
        for (run, reward), c in sub.groupby(["run", "reward"], sort=False):
            c = c.sort_values("step")
            kw = dict(color=f"C{runs.index(run) % 10}",
                      ls=styles[rewards.index(reward) % len(styles)], label=f"{run}: {reward}")  # fmt: skip
            axes[0, j].plot(c.sqrt_kl, c.gold, **kw)
            axes[1, j].plot(c.sqrt_kl, c.proxy, **kw)
        axes[0, j].set_title(f"{opt}: gold")
        axes[1, j].set_title(f"{opt}: proxy")
        for ax in axes[:, j]:
            ax.set_xlabel("√KL (nats^½)")
            ax.set_ylabel("std of the base policy")
            ax.axhline(0, color="grey", lw=0.5)
        axes[0, j].legend(fontsize=7)
        if sub.proxy.isna().all():
            fig.delaxes(axes[1, j])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
