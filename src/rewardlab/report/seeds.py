"""The report of a several-seed run folder (`rewardlab.seeds`): gold against √KL with 95%
intervals over seeds, the verdicts over seeds, and a link to each seed's own report."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from rewardlab.common.html import img, table, write_page  # noqa: E402
from rewardlab.verdict import MARGIN, t_interval  # noqa: E402

OVER_SEEDS = "curves_over_seeds.csv"


def curves_over_seeds(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (optimizer, reward, step) of ``curves.csv`` (every seed's rows): the seeds'
    mean √KL, proxy and gold, gold's 95% Student-t interval over the seeds that reached the step
    (``seeds`` of them; NaN bounds with one)."""
    rows = []
    for (opt, rew, step), d in curves.groupby(["optimizer", "reward", "step"], sort=False):
        m, lo, hi = t_interval(d.gold.to_numpy(float))
        rows.append(dict(optimizer=opt, reward=rew, step=step, seeds=len(d),
                         sqrt_kl=d.sqrt_kl.mean(), kl=d.kl.mean(), proxy=d.proxy.mean(),
                         gold=m, gold_lo=lo, gold_hi=hi))  # fmt: skip
    return pd.DataFrame(rows)


def plot_over_seeds(over: pd.DataFrame, path: Path) -> Path:
    """Gold against the seeds' mean √KL, one panel per optimizer, a line and its 95% band over
    seeds per reward."""
    opts = list(dict.fromkeys(over.optimizer))
    fig, axes = plt.subplots(1, len(opts), figsize=(4.6 * len(opts), 3.6), squeeze=False)
    for ax, opt in zip(axes[0], opts, strict=True):
        for i, (rew, d) in enumerate(over[over.optimizer == opt].groupby("reward", sort=False)):
            d = d.sort_values("step")
            ax.plot(d.sqrt_kl, d.gold, color=f"C{i}", label=rew)
            ax.fill_between(d.sqrt_kl, d.gold_lo, d.gold_hi, color=f"C{i}", alpha=0.2, lw=0)
        ax.set_title(opt, fontsize=10)
        ax.set_xlabel("√KL (nats^½), mean over seeds")
        ax.axhline(0, color="grey", lw=0.5)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("gold (base-policy std)")
    fig.suptitle("Gold against √KL (bands: 95% over seeds, Student t)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def build_seeds_report(run_dir: Path) -> pd.DataFrame:
    """Write ``curves_over_seeds.csv``, ``gold_over_seeds.png`` and ``report.html`` of the
    several-seed run in `run_dir` from its gathered files; return the verdicts over seeds."""
    run_dir = Path(run_dir)
    judged = pd.read_csv(run_dir / "verdicts.csv")
    over = curves_over_seeds(pd.read_csv(run_dir / "curves.csv"))
    over.to_csv(run_dir / OVER_SEEDS, index=False)
    fig = plot_over_seeds(over, run_dir / "gold_over_seeds.png")
    seeds = sorted(int(p.name[1:]) for p in (run_dir / "seeds").glob("s*") if p.is_dir())
    links = " · ".join(f'<a href="seeds/s{s}/report.html">seed {s}</a>' for s in seeds)
    cols = ["optimizer", "reward", "seeds", "verdict", "fall", "fall_lo", "fall_hi",
            "vs_control_lo", "vs_control_hi", "hacked_seeds", "not_hacked_seeds", "verdict_kl",
            "peak_gold", "peak_gold_lo", "peak_gold_hi", "final_gold", "final_gold_lo",
            "final_gold_hi"]  # fmt: skip
    body = f"""<p>{len(seeds)} seeds of one study. Each seed's fall of gold after its peak is
cross-fitted over its prompts; the verdict is over seeds: the seeds' mean fall with its 95%
Student-t interval over seeds, and its paired difference from the same optimizer against the rule
(<code>vs_control</code>). <b>hacked</b>: both intervals above 0; <b>not hacked</b>: the fall's
interval below {MARGIN} std within the budget (<code>verdict_kl</code> nats); otherwise
<b>undetermined</b>. <code>hacked_seeds</code>, <code>not_hacked_seeds</code>: the seeds' own
verdicts. Gold is in base-policy standard deviations.</p>
<h2>Verdicts over seeds</h2>{table(judged[[c for c in cols if c in judged]])}
<h2>Gold over seeds</h2>{img(fig)}
<h2>Each seed</h2><p>{links}</p>
<h2>Config</h2><pre>{html.escape((run_dir / "config.yaml").read_text())}</pre>"""
    write_page(run_dir / "report.html", f"rewardlab: {run_dir.name} ({len(seeds)} seeds)", body)
    return judged


def is_seeds_folder(run_dir: Path) -> bool:
    """Whether `run_dir` is a several-seed run folder (it holds ``seeds/`` and ``verdicts.csv``)."""
    return (Path(run_dir) / "seeds").is_dir() and (Path(run_dir) / "verdicts.csv").is_file()
