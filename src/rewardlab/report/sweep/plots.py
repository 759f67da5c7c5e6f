"""The sweep's plots (see `rewardlab.report.sweep`), one PNG per analysis and grid."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rewardlab.optimize.curves import families  # noqa: E402
from rewardlab.report.sweep.analyses import AXES, METRICS, REDUCERS, per_x  # noqa: E402


def plot_by_reward(table: pd.DataFrame, path: Path) -> Path:
    """Peak and final gold of each reward, per optimizer, with 95% intervals over seeds."""
    opts = list(dict.fromkeys(table.optimizer))
    fig, axes = plt.subplots(1, len(opts), figsize=(5 * len(opts), 4), squeeze=False)
    for ax, opt in zip(axes[0], opts, strict=True):
        d = table[table.optimizer == opt].reset_index(drop=True)
        x = np.arange(len(d))
        ax.bar(x - 0.2, d.peak_gold, 0.4, yerr=d.peak_gold_ci95.fillna(0), capsize=3, label="peak")
        ax.bar(x + 0.2, d.final_gold, 0.4, yerr=d.final_gold_ci95.fillna(0), capsize=3,
               label="final")  # fmt: skip
        ax.set_xticks(x, d.reward, rotation=30, ha="right")
        ax.set_title(f"{opt}: gold (std of the base policy)")
        ax.axhline(0, color="grey", lw=0.5)
        ax.legend()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_scaling(summary: pd.DataFrame, fits: pd.DataFrame, axis: str, path: Path) -> Path:
    opts = sorted(fits.optimizer.unique())
    fig, axs = plt.subplots(len(opts), len(METRICS), figsize=(3.2 * len(METRICS), 2.8 * len(opts)),
                            squeeze=False)  # fmt: skip
    learned = summary[summary.reducer == "single"]
    for i, opt in enumerate(opts):
        d = learned[learned.optimizer == opt]
        for j, m in enumerate(METRICS):
            ax = axs[i, j]
            ax.scatter(d[axis], d[m], s=10, alpha=0.5, color="grey")
            px = per_x(summary, axis, m)
            px = px[px.optimizer == opt]
            ax.errorbar(px.x, px["mean"], yerr=px.ci95.fillna(0), fmt="o", color="C0", capsize=3)
            f = fits[(fits.optimizer == opt) & (fits.metric == m)].iloc[0]
            if math.isfinite(f.slope):
                xs = np.geomspace(d[axis].min(), d[axis].max(), 20)
                ax.plot(xs, f.intercept + f.slope * np.log10(xs), "C1-",
                        label=f"slope {f.slope:.3g} [{f.slope_lo:.2g}, {f.slope_hi:.2g}]")  # fmt: skip
                ax.legend(fontsize=7)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_title(f"{opt}: {m}", fontsize=9)
            ax.set_xlabel(AXES[axis], fontsize=8)
    return _save(fig, path)


def plot_gold_curves(curves: pd.DataFrame, key: pd.DataFrame, axis: str, path: Path) -> Path:
    """Gold against √KL (best-of-n) and KL (RL), mean over seeds, one line per level of `axis`;
    `key` maps (study, reward) to the level ``x``."""
    c = curves.merge(key, on=["study", "reward"])
    c["family"] = c.optimizer.map(families(c))
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.8))
    xs = sorted(c.x.unique())
    cmap = plt.get_cmap("viridis")
    for fam, ax in zip(("sample", "trained"), axs, strict=True):
        for i, x in enumerate(xs):
            g = c[(c.family == fam) & (c.x == x)].groupby("step")[["kl", "sqrt_kl", "gold"]]
            m = g.mean()
            if m.empty:
                continue
            kx = m.sqrt_kl if fam == "sample" else m.kl
            ax.plot(kx, m.gold, "-", color=cmap(i / max(1, len(xs) - 1)), label=f"{x:,.0f}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("√KL (nats½)" if fam == "sample" else "KL (nats)")
        ax.set_ylabel("gold (normalised), mean over seeds")
        ax.set_title("sample-based (best-of-n)" if fam == "sample" else "trained")
        if fam == "trained":
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlim(left=0)
        ax.legend(title=AXES[axis], fontsize=7, title_fontsize=7)
    return _save(fig, path)


def plot_kl_penalty(rl: pd.DataFrame, path: Path) -> Path:
    runs = sorted(set(zip(rl.optimizer, rl.reward, strict=True)))
    fig, axs = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.6), squeeze=False)
    for ax, (opt, reward) in zip(axs[0], runs, strict=True):
        d = rl[(rl.optimizer == opt) & (rl.reward == reward)]
        for k, (beta, db) in enumerate(sorted(d.groupby("beta"), key=lambda t: t[0])):
            g = db.groupby("step")[["kl", "gold"]].mean().sort_values("kl")
            ax.plot(g.kl, g.gold, "o-", ms=3, color=f"C{k}", label=f"β = {beta:g}")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        ax.set_xlabel("KL(π‖π_init), nats")
        ax.set_ylabel("gold (normalised)")
        ax.set_title(f"{opt} on {reward}: mean over seeds")
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_ensembles(table: pd.DataFrame, path: Path) -> Path:
    opts = sorted(table.optimizer.unique())
    fig, axs = plt.subplots(1, 2 * len(opts), figsize=(4.2 * 2 * len(opts), 3.4), squeeze=False)
    flips = sorted(table.flip_rate.unique())
    w = 0.8 / max(1, len(flips))
    for i, opt in enumerate(opts):
        for j, m in enumerate(("final_gold", "gold_drop")):
            ax = axs[0, 2 * i + j]
            for k, fl in enumerate(flips):
                d = table[(table.optimizer == opt) & (table.flip_rate == fl)]
                xs = (
                    np.array([REDUCERS.index(r) for r in d.reducer])
                    + (k - (len(flips) - 1) / 2) * w
                )
                ax.bar(
                    xs,
                    d[m],
                    w,
                    yerr=d[f"{m}_ci95"].fillna(0),
                    capsize=3,
                    label=f"label noise {fl:g}",
                )
            ax.set_xticks(range(len(REDUCERS)), REDUCERS)
            ax.axhline(0, color="k", lw=0.5)
            ax.set_title(f"{opt}: {m.replace('_', ' ')}")
            ax.legend(fontsize=7)
    return _save(fig, path)


def plot_learned_vs_rule(table: pd.DataFrame, axis: str, path: Path) -> Path:
    d = table[table.axis == axis]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.errorbar(d.x, d.learned_final_gold, yerr=1.96 * d.learned_final_se.fillna(0), fmt="o-",
                capsize=3, label="learned reward: final gold")  # fmt: skip
    ax.plot(d.x, d.learned_peak_gold, "s--", alpha=0.6, label="learned reward: peak gold")
    r, se = d.rule_final_gold.iloc[0], d.rule_se.iloc[0]
    ax.axhspan(r - se, r + se, color="C2", alpha=0.3, label="rule: final gold, band of 1 SE")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(AXES[axis])
    ax.set_ylabel("gold after RL (normalised)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_rm_accuracy(table: pd.DataFrame, axis: str, path: Path) -> Path:
    """Held-out accuracy (mean, 95% interval over seeds) and train accuracy against `axis`, and
    the held-out accuracy in each gold-margin bin."""
    d = table[table.axis == axis]
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axs[0]
    ax.errorbar(d.x, d.test_accuracy, yerr=d.test_accuracy_ci95.fillna(0), fmt="o-", capsize=3,
                label="held-out")  # fmt: skip
    ax.plot(d.x, d.train_accuracy, "s--", alpha=0.6, label="train")
    ax.set_ylabel("pair accuracy")
    ax.set_title("reward-model accuracy, mean over seeds (95%)")
    ax = axs[1]
    bins = [
        c
        for c in d.columns
        if c.startswith("acc_margin_") and not c.endswith("_ci95") and d[c].notna().any()
    ]  # fmt: skip  (a bin the preference data dropped is empty)
    cmap = plt.get_cmap("viridis")
    for i, b in enumerate(bins):
        lo, hi = b.removeprefix("acc_margin_").split("_")
        ax.plot(d.x, d[b], "o-", ms=3, color=cmap(i / max(1, len(bins) - 1)),
                label=f"gold margin {lo}–{hi}")  # fmt: skip
    ax.set_ylabel("held-out pair accuracy")
    ax.set_title("by gold margin (fraction of the gold range)")
    for ax in axs:
        ax.axhline(0.5, color="k", lw=0.5)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(AXES[axis])
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_frontier(cells: pd.DataFrame, crossing: dict, path: Path) -> Path:
    """Heatmaps of the gap to the rule (no penalty; stopped at the rule's KL) over size × pairs."""
    fig, axs = plt.subplots(1, 2, figsize=(11, 4))
    xs, ps = sorted(cells.params.unique()), sorted(cells.train_pairs.unique())
    for ax, key, title in zip(axs, ("gap_final", "gap_stop"), ("RL to the end (no penalty)",
                              "RL stopped at the rule's KL"), strict=True):  # fmt: skip
        grid = np.full((len(ps), len(xs)), np.nan)
        for r in cells.itertuples():
            i, j = ps.index(r.train_pairs), xs.index(r.params)
            grid[i, j] = getattr(r, key)
            mark = " ✓" if getattr(r, f"{key}_reaches") else ""
            ax.text(j, i, f"{grid[i, j]:.2f}\n(±{getattr(r, f'{key}_ci95'):.2f}){mark}", ha="center",
                    va="center", fontsize=7)  # fmt: skip
        lim = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
        im = ax.imshow(grid, origin="lower", cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(xs)), [f"{x:,.0f}" for x in xs], fontsize=7)
        ax.set_yticks(range(len(ps)), [f"{p:,.0f}" for p in ps], fontsize=7)
        ax.set_xlabel(AXES["params"])
        ax.set_ylabel(AXES["train_pairs"])
        c = crossing.get(key, {})
        if c.get("kind") == "fitted":
            note = (f"none reaches; logistic crossing ≈ {c['params']:,.3g} params "
                    f"[{c['params_lo']:,.3g}, {c['params_hi']:,.3g}]")  # fmt: skip
        elif c.get("kind") == "none":
            note = "none reaches; no crossing inside the sizes tried"
        else:
            note = f"✓ = 95% interval over seeds above −{c.get('margin', 0.2)} std"
        ax.set_title(f"{title}: learned − rule gold\n{note}", fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, path)


def plot_eval_vs_gen(table: pd.DataFrame, path: Path) -> Path:
    """Peak gold and fall against reward-model / policy parameters, one colour per policy size."""
    opts = sorted(table.optimizer.unique())
    fig, axs = plt.subplots(len(opts), 2, figsize=(10, 3.4 * len(opts)), squeeze=False)
    pols = sorted(table.policy_params.unique())
    for i, opt in enumerate(opts):
        for j, m in enumerate(("peak_gold", "gold_drop")):
            ax = axs[i, j]
            for k, pp in enumerate(pols):
                d = table[(table.optimizer == opt) & (table.policy_params == pp)].sort_values(
                    "ratio"
                )
                ax.errorbar(d.ratio, d[m], yerr=d[f"{m}_ci95"].fillna(0), fmt="o-", capsize=3,
                            color=f"C{k}", label=f"policy {pp:,.0f} params")  # fmt: skip
            ax.axvline(1, color="grey", lw=0.5, ls=":")
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xscale("log")
            ax.set_xlabel("reward-model parameters / policy parameters")
            ax.set_title(f"{opt}: {m.replace('_', ' ')} (mean over seeds, 95%)", fontsize=9)
            ax.legend(fontsize=7)
    return _save(fig, path)
