"""The figures of a run: overoptimization curves, coefficients against size, example completions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rewardlab.measure import Fit  # noqa: E402
from rewardlab.optimize.curves import SAMPLE, families  # noqa: E402
from rewardlab.rewards.base import RULE  # noqa: E402


def _save(fig, path: Path, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _band(
    by_prompt: pd.DataFrame, reward: str, col: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sqrt_kl, mean and 1.96 standard errors over prompts of `col` for one reward."""
    g = by_prompt[by_prompt.reward == reward].groupby("sqrt_kl")[col]
    n = g.count()
    return (
        g.mean().index.to_numpy(),
        g.mean().to_numpy(),
        1.96 * (g.std(ddof=1) / np.sqrt(n)).to_numpy(),
    )


def plot_curves(
    curves: pd.DataFrame, by_prompt: pd.DataFrame, fits: dict[str, Fit], out: Path
) -> Path:
    """Gold and proxy against sqrt(KL), one panel per reward, with the fitted gold curve and
    95% bands over prompts."""
    rewards = list(dict.fromkeys(curves.reward))
    cols = min(4, len(rewards))
    rows = int(np.ceil(len(rewards) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False, sharex=True
    )
    for ax, name in zip(axes.ravel(), rewards, strict=False):
        c = curves[curves.reward == name].sort_values("sqrt_kl")
        for col, color, label in (("gold", "C0", "gold"), ("proxy", "C1", "proxy")):
            x, m, e = _band(by_prompt, name, col)
            ax.plot(x, m, color=color, label=label)
            ax.fill_between(x, m - e, m + e, color=color, alpha=0.2, lw=0)
        f = fits.get(name)
        if f is not None:
            d = np.linspace(0, c.sqrt_kl.max(), 100)
            ax.plot(
                d, f.predict(d), "--", color="C0", lw=1, label=f"fit α={f.alpha:.2f} β={f.beta:.2f}"
            )
        params = int(c.reward_params.iloc[0])
        ax.set_title(
            f"{name}" + (f" ({params:,} params)" if params else " (the rule)"), fontsize=10
        )
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("√KL (nats^½)")
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes.ravel()[len(rewards) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("reward (base-policy std)")
    fig.suptitle("Best-of-n: gold and proxy against √KL (bands: 95% over prompts)", fontsize=11)
    return _save(fig, out / "bon_curves.png")


def plot_gold_overlay(curves: pd.DataFrame, out: Path) -> Path:
    """Gold against sqrt(KL) for every reward on one axis."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.groupby("reward", sort=False):
        c = c.sort_values("sqrt_kl")
        p = int(c.reward_params.iloc[0])
        ax.plot(c.sqrt_kl, c.gold, label=f"{name} ({p:,})" if p else f"{name}", lw=2 if p else 1)
    ax.set_xlabel("√KL (nats^½)")
    ax.set_ylabel("gold (base-policy std)")
    ax.set_title("Gold reward of best-of-n against each reward")
    ax.legend(fontsize=8)
    return _save(fig, out / "gold_overlay.png")


def plot_coefficients(fits: dict[str, Fit], params: dict[str, int], out: Path) -> Path:
    """alpha and beta (95% intervals over prompts) against reward-model parameters."""
    names = [n for n in fits if params.get(n, 0) > 0]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key in zip(axes, ("alpha", "beta"), strict=True):
        x = np.array([params[n] for n in names], float)
        y = np.array([getattr(fits[n], key) for n in names])
        lo = np.array([fits[n].ci.get(key, (v, v))[0] for n, v in zip(names, y, strict=True)])
        hi = np.array([fits[n].ci.get(key, (v, v))[1] for n, v in zip(names, y, strict=True)])
        ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o-", capsize=3)
        for n, xi, yi in zip(names, x, y, strict=True):
            ax.annotate(n, (xi, yi), fontsize=7, xytext=(4, 4), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("reward-model parameters")
        ax.set_title(f"{key}  (r = d(α − β d))")
    return _save(fig, out / "coefficients.png")


def plot_examples(examples: pd.DataFrame, out: Path, per_reward: int = 2) -> Path:
    """What the proxy loves: completions picked at the gold peak and at the largest n."""
    lines = []
    for name, ex in examples.groupby("reward", sort=False):
        if name == RULE:
            continue
        lines.append(f"■ {name}")
        for prompt, e in list(ex.groupby("prompt", sort=False))[:per_reward]:
            lines.append(f"  prompt: {prompt}")
            for _, r in e.iterrows():
                text = textwrap.shorten(r.completion, 70)
                lines.append(
                    f"    {r['where']:>5} (n={r.n:>4}) gold={r.gold_raw:.2f} proxy={r.proxy_raw:+.2f}  {text}"
                )
    fig = plt.figure(figsize=(10, 0.15 * len(lines) + 0.3))
    fig.text(0.01, 0.99, "\n".join(lines), family="monospace", fontsize=8, va="top")
    return _save(fig, out / "examples.png", tight=False)


def plot_rl(
    rl: pd.DataFrame, detail: pd.DataFrame | None, fits: dict[str, dict[str, Fit]], out: Path
) -> Path:
    """Trained optimizers: gold and proxy against sqrt(KL) per (optimizer, reward), with 95%
    intervals and the fitted RL form."""
    runs = list(dict.fromkeys(zip(rl.optimizer, rl.reward, strict=True)))
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), squeeze=False)
    for ax, (opt, name) in zip(axes[0], runs, strict=True):
        c = rl[(rl.optimizer == opt) & (rl.reward == name)].sort_values("step")
        gerr = perr = None
        if detail is not None and "gold_se" in detail:
            d = detail[(detail.optimizer == opt) & (detail.reward == name)].sort_values("step")
            gerr, perr = 1.96 * d.gold_se_norm.to_numpy(), 1.96 * d.proxy_se_norm.to_numpy()
        ax.errorbar(c.sqrt_kl, c.gold, yerr=gerr, fmt="o-", ms=3, color="C0", label="gold")
        ax.errorbar(c.sqrt_kl, c.proxy, yerr=perr, fmt="s-", ms=3, color="C1", label="proxy")
        f = fits.get(opt, {}).get(name)
        if f is not None and np.isfinite(f.alpha):
            d = np.linspace(0, c.sqrt_kl.max(), 100)
            ax.plot(
                d, f.predict(d), "--", color="C0", lw=1, label=f"fit α={f.alpha:.2f} β={f.beta:.2f}"
            )
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"{opt} on {name}", fontsize=10)
        ax.set_xlabel("√KL (nats^½)")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("reward (base-policy std)")
    return _save(fig, out / "rl_curves.png")


def plot_bon_vs_rl(curves: pd.DataFrame, out: Path) -> Path:
    """Gold against KL for every optimizer and reward (best-of-n solid, trained optimizers
    dashed with markers; one colour per reward)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = {r: f"C{i % 10}" for i, r in enumerate(dict.fromkeys(curves.reward))}
    fams = families(curves)
    for (opt, name), c in curves.groupby(["optimizer", "reward"], sort=False):
        c = c.sort_values("step")
        style = "-" if fams[opt] == SAMPLE else "o--"
        ax.plot(c.kl, c.gold, style, color=colours[name], ms=3, label=f"{opt}: {name}")
    ax.set_xlabel("KL (nats)")
    ax.set_ylabel("gold (base-policy std)")
    ax.set_title("Every optimizer: gold against KL")
    ax.legend(fontsize=7)
    return _save(fig, out / "bon_vs_rl.png")
