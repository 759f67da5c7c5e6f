"""The gridworld lab's tables and page: means with intervals over seeds, the fraction of seeds in
which an event is a habit (exact interval), the training curves and report.html."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from rewardlab.common.html import img, table
from rewardlab.common.html import write_page as page
from rewardlab.common.stats import clopper_pearson, mean_ci
from rewardlab.gridworld.config import Experiment

HABIT = 0.5  # an event is a seed's habit when it happens at least this often per episode


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% Student-t interval over seeds of every numeric column, per agent and condition; and
    for every event, the fraction of seeds in which it is a habit (at least `HABIT` times per
    episode), with its exact binomial interval (outcomes are often all-or-nothing per seed)."""
    cols = [c for c in results.columns if c not in ("agent", "seed", "condition")]
    rows = []
    for (agent, cond), g in results.groupby(["agent", "condition"], sort=False):
        row = dict(agent=agent, condition=cond, seeds=len(g))
        for c in cols:
            m, _, h, _ = mean_ci(g[c].to_numpy(float))
            row[c], row[f"{c}_lo"], row[f"{c}_hi"] = m, m - h, m + h
        for c in cols:
            if c.endswith("_per_episode"):
                e = c.removesuffix("_per_episode") + "_seeds"
                row[e], row[f"{e}_lo"], row[f"{e}_hi"] = clopper_pearson(
                    int((g[c] >= HABIT).sum()), len(g)
                )
        rows.append(row)
    return pd.DataFrame(rows)


def plot_training(curves: pd.DataFrame, path: Path, exp: Experiment) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for (agent,), g in curves.groupby(["agent"]):
        m = g.groupby("episode")[["visible", "gold"]].mean().rolling(20, min_periods=1).mean()
        ax.plot(m.index, m.visible, label=f"{agent}: visible")
        ax.plot(m.index, m.gold, "--", label=f"{agent}: gold")
    ax.set_xlabel("training episode")
    ax.set_ylabel("return (mean over seeds, 20-episode average)")
    ax.set_title(exp.env_id)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def answers(summary: pd.DataFrame, exp: Experiment) -> pd.DataFrame:
    """The question's answer per agent and condition: for each event the experiment counts, in
    how many seeds it is a habit (at least `HABIT` times an episode), with the exact 95%
    interval of that fraction, and its mean rate per episode (with a 95% interval over seeds
    from 3 seeds on: two seeds give an interval too wide to say anything)."""
    rows = []
    for r in summary.itertuples(index=False):
        row = {"agent": r.agent, "condition": r.condition, "seeds": r.seeds}
        for e in exp.rates:
            k = round(getattr(r, f"{e}_seeds") * r.seeds)
            lo, hi = getattr(r, f"{e}_seeds_lo"), getattr(r, f"{e}_seeds_hi")
            rate = getattr(r, f"{e}_per_episode")
            spread = (f" [{getattr(r, f'{e}_per_episode_lo'):.2f}, "
                      f"{getattr(r, f'{e}_per_episode_hi'):.2f}]") if r.seeds >= 3 else ""  # fmt: skip
            row[e] = f"{k} of {r.seeds} seeds [{lo:.2f}, {hi:.2f}]; {rate:.2f}{spread} an episode"
        rows.append(row)
    return pd.DataFrame(rows)


def write_page(
    name: str, exp: Experiment, summary: pd.DataFrame, out: Path, seconds: float
) -> None:
    """report.html: the question, its answer per agent (`answers`), the summary table and the
    training curves; only the agents that ran are described."""
    png = out / "training.png"
    ran = list(dict.fromkeys(summary.agent))
    deep = [a.upper() for a in ran if a in ("dqn", "ppo")]
    deep_note = (
        f" {' and '.join(deep)} (Stable-Baselines3) trained for {exp.deep_timesteps} environment "
        "steps; the tabular agents for the episodes above."
        if deep
        else ""
    )
    body = f"""<h2>{html.escape(exp.question)}</h2>
<p>Agents: {", ".join(ran)}. Environment <code>{exp.env_id}</code>; {exp.train_episodes} training
episodes per seed.{deep_note} Visible return is what the agent optimises; gold is the hidden
performance. {seconds:.1f} s.</p>
<h3>Answer</h3>
<p>Each cell: in how many seeds the event is a habit (at least {HABIT} times an episode, in the
episodes reported), with the exact 95% interval of that fraction in brackets, then the mean
count an episode (with a 95% interval over seeds when there are at least 3 seeds).</p>
{table(answers(summary, exp))}
<h3>Every measure</h3>
<p>Means with 95% intervals over seeds (Student t); per-seed values in results.csv; the run's
config, with the world's constants, in config.yaml.</p>
{table(summary)}{img(png) if png.is_file() else ""}"""
    page(out / "report.html", f"Gridworld experiment: {name}", body)
