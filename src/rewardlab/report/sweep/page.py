"""The sweep's report page: every analysis that applies to each grid, its tables (with what their
columns mean) and plots, written to ``analysis_*.csv`` and ``report.html``."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from rewardlab.common.html import img, table, write_page
from rewardlab.common.io import write_atomic
from rewardlab.report.sweep.analyses import (
    AXES,
    EXAMPLE_KINDS,
    _read,
    by_reward,
    ensembles,
    gao_findings,
    in_block,
    kl_penalty,
    levels,
    load_sweep_tables,
    rm_accuracy,
    scaling,
    scaling_within,
)
from rewardlab.report.sweep.matched import eval_vs_gen, frontier, learned_vs_rule
from rewardlab.report.sweep.plots import (
    plot_by_reward,
    plot_ensembles,
    plot_eval_vs_gen,
    plot_frontier,
    plot_gold_curves,
    plot_kl_penalty,
    plot_learned_vs_rule,
    plot_rm_accuracy,
    plot_scaling,
)
from rewardlab.rewards.ensemble import REDUCERS as ENSEMBLE_REDUCERS

MIN_SEEDS_FOR_INTERVAL = 3  # with fewer seeds a t interval over seeds is too wide to mean anything
COLUMNS = {  # what the sweep report's table columns mean (shown under each table that has them)
    "seeds": "seeds behind the row's means",
    "n": "points (studies × levels) behind a fitted line",
    "paired_seeds": "seeds that have both sides of a paired difference (both rewards, or both levels)",
    "slope": "least-squares slope per decade of the axis (y = intercept + slope·log10 x), the "
    "mean of one line per seed",
    "slope_lo": "95% interval of the slope, Student t over seeds (k − 1 degrees of freedom; over "
    "points when there is one seed): low end",
    "slope_hi": "95% interval of the slope: high end",
    "slope_se": "standard error of the slope (over seeds)",
    "interval_over": "what the interval is over: seeds, or points when there is one seed",
    "r2": "share of the variance the line explains",
    "test_accuracy": "share of held-out preference pairs the reward model ranks as gold does",
    "train_accuracy": "the same on its training pairs",
    "rises": "whether the mean test accuracy is above that of the level below (blank at the "
    "lowest level)",
    "step": "mean over seeds of the paired step from the level below (this level's accuracy "
    "minus the level below's, same seed)",
    "step_ci95": "95% Student-t half-width of that paired step, over seeds",
    "rises_in_seeds": "seeds in which this level's accuracy is above the level below's",
    "peak_gold": "the curve's highest gold (base-policy standard deviations)",
    "final_gold": "gold at the curve's last point",
    "gold_drop": "peak_gold − final_gold: how far gold falls after its peak",
    "final_kl": "KL(policy ‖ base) at the last point, nats",
    "alpha": "Gao et al.'s α: the fitted curve's initial slope in √KL",
    "beta": "Gao et al.'s β: how fast the fitted curve bends down",
    "minus_rule": "final gold minus the rule's final gold in the same seed (paired)",
    "reaches": "whether the learned reward's final gold comes within one standard error of the "
    "rule's (at matched KL: of the rule's gold at the learned run's final KL)",
    "compared_at": "matched KL (the rule's curve read at the learned run's final KL) or final "
    "step (equal steps, when the curves are missing)",
    "gap": "learned final gold minus the rule's gold at the same KL, mean over seeds (paired)",
    "matched_kl": "the KL every compared run reached (the smallest final KL among them), nats",
    "gold_at_matched_kl": "gold at matched_kl, linear in KL on each run's curve, mean over seeds",
    "hacked": "whether the fall's 95% interval over seeds lies above 0",
    "gap_to_rule": "final gold minus the rule's gold at the same KL (same study and optimizer): "
    "how far below the gold's own curve the proxy ends",
    "caveat": "what the slope does not say",
    "gao_sign": "the direction Gao et al. 2022 report (+1 rises, −1 falls, 0 no trend)",
}


def _table(df: pd.DataFrame) -> str:
    """`table`, with intervals over seeds left blank in rows of fewer than
    `MIN_SEEDS_FOR_INTERVAL` seeds, and the meaning of each column it has (`COLUMNS`); a column
    ``X_ci95`` is the half-width of X's 95% interval over seeds (Student t)."""
    df = df.copy()
    if "seeds" in df:
        few = df.seeds < MIN_SEEDS_FOR_INTERVAL
        for c in [c for c in df if c.endswith("_ci95")]:
            df[c] = df[c].astype(float).where(~few)
    notes = [f"<b>{c}</b>: {COLUMNS[c]}" for c in df if c in COLUMNS]
    if any(c.endswith("_ci95") for c in df):
        notes.append(
            "<b>X_ci95</b>: half-width of the 95% interval of X over seeds (Student t), blank "
            f"with fewer than {MIN_SEEDS_FOR_INTERVAL} seeds"
        )
    legend = f'<p style="font-size:12px">{"; ".join(notes)}.</p>' if notes else ""
    return table(df) + legend


def build_sweep_report(out: str | Path) -> dict[str, pd.DataFrame]:
    """Run every analysis that applies to each grid of the sweep in `out`; write
    ``analysis_*.csv``, PNGs and ``report.html``; return the analysis tables."""
    out = Path(out)
    studies, summary, rl = load_sweep_tables(out)
    if summary.empty:
        write_atomic(out / "report.html", "<p>no finished study</p>")
        return {}
    if not rl.empty:
        rl = rl.merge(studies[["study", "blocks"]], on="study", how="left")
    rms = _read(out, "reward_models.csv")
    if not rms.empty:
        rms = rms.drop(columns=[c for c in ("blocks", "policy_params") if c in rms])
        rms = rms.merge(studies[["study", "blocks", "policy_params"]], on="study", how="left")
    blocks = sorted({int(b) for bs in studies.blocks.astype(str) for b in bs.split()})
    swept = [c for c in studies.columns if c not in (
        "study", "blocks", "seed", "flip_rate", "ok", "seconds", "error", "policy_params")]  # fmt: skip
    grid = _Grid(out, _read(out, "curves.csv"))
    sections = []
    for b in blocks:
        st = in_block(studies, b)
        varying = [c for c in swept if st[c].nunique() > 1]
        head = (f"<h2>Grid {b}: {html.escape(', '.join(varying) or 'one study')}"
                f" ({len(st)} studies)</h2>")  # fmt: skip
        r = in_block(rl, b) if not rl.empty else rl
        a = in_block(rms, b) if not rms.empty else rms
        sections.append(
            head + grid.sizes(b, in_block(summary, b), a) + grid.others(b, in_block(summary, b), r)
        )
    result = {k: pd.concat(v, ignore_index=True) for k, v in grid.tables.items()}
    for k, df in result.items():
        df.to_csv(out / f"analysis_{k}.csv", index=False)
    cfg = (out / "sweep.yaml").read_text() if (out / "sweep.yaml").is_file() else ""
    cols = ["study", *swept, "optimizer", "reward", "params", "peak_gold", "peak_kl",
            "final_gold", "gold_drop", "alpha", "beta"]  # fmt: skip
    body = f"""<p>Gold and proxy are normalised per study (0 = base policy mean, 1 = its standard deviation).
Intervals are 95% over seeds (Student t). Each study's own report is in studies/&lt;id&gt;/report.html.</p>
{"".join(sections)}
<h2>All studies</h2>{_table(summary[[c for c in cols if c in summary]])}
<h2>Sweep file</h2><pre>{html.escape(cfg)}</pre>"""
    write_page(out / "report.html", f"rewardlab sweep: {out.name}", body, width=1300)
    return result


class _Grid:
    """The sections of one grid's analyses, their PNGs in `out`, and every table kept (under its
    analysis's name, with the grid's number) for ``analysis_<name>.csv``."""

    def __init__(self, out: Path, curves: pd.DataFrame):
        self.out, self.curves = out, curves
        self.tables: dict[str, list[pd.DataFrame]] = {}

    def keep(self, name: str, df: pd.DataFrame, b: int) -> None:
        if len(df):
            self.tables.setdefault(name, []).append(df.assign(grid=b))

    def sizes(self, b: int, s: pd.DataFrame, rms: pd.DataFrame) -> str:
        """Reward-model accuracy, scaling along each axis, and Gao et al.'s findings."""
        out, parts = self.out, []
        acc = rm_accuracy(rms) if not rms.empty else pd.DataFrame()
        self.keep("rm_accuracy", acc, b)
        for axis in acc.axis.unique() if len(acc) else []:
            f = plot_rm_accuracy(acc, axis, out / f"rm_accuracy_{axis}_grid{b}.png")
            parts.append(f"<h3>Reward-model accuracy against {AXES[axis]}</h3>"
                         + _table(acc[acc.axis == axis].drop(columns="axis")) + img(f))  # fmt: skip
        sc = scaling(s)
        self.keep("scaling", sc, b)
        within = scaling_within(s) if sc.empty else pd.DataFrame()
        self.keep("scaling_within", within, b)
        if len(within):
            parts.append("<h3>Each axis at fixed levels of the other</h3>" + _table(within))
        gf = gao_findings(sc) if len(sc) else gao_findings(within)
        self.keep("gao", gf, b)
        if len(gf):
            parts.append("<h3>Against Gao et al. 2022</h3>" + _table(gf))
        for axis in sc.axis.unique() if len(sc) else []:
            f = plot_scaling(s, sc[sc.axis == axis], axis, out / f"scaling_{axis}_grid{b}.png")
            single = s[s.reducer == "single"]
            key = single.assign(x=levels(single, axis))[["study", "reward", "x"]]
            g = plot_gold_curves(self.curves, key, axis, out / f"curves_{axis}_grid{b}.png")
            parts.append(f"<h3>Against {AXES[axis]}</h3>" + _table(
                sc[sc.axis == axis].drop(columns="axis")) + img(f) + img(g))  # fmt: skip
        return "".join(parts)

    def others(self, b: int, s: pd.DataFrame, r: pd.DataFrame) -> str:
        """The KL penalty, ensembles, the frontier, evaluation vs generation, rewards side by
        side and learned vs rule, each where the grid has what it needs."""
        out, parts = self.out, []
        if not r.empty and r.groupby(["optimizer", "reward"]).beta.nunique().max() > 1:
            kp = kl_penalty(r)
            self.keep("kl_penalty", kp, b)
            f = plot_kl_penalty(r, out / f"kl_penalty_grid{b}.png")
            parts.append("<h3>KL penalty</h3>" + _table(kp) + img(f))
        if s.reducer.isin(ENSEMBLE_REDUCERS).any():
            en = ensembles(s)
            self.keep("ensembles", en, b)
            f = plot_ensembles(en, out / f"ensembles_grid{b}.png")
            parts.append("<h3>Ensembles</h3>" + _table(en) + img(f))
        fr, crossing = frontier(s, r) if not r.empty else (pd.DataFrame(), {})
        self.keep("frontier", fr, b)
        if len(fr):
            f = plot_frontier(fr, crossing, out / f"frontier_grid{b}.png")
            write_atomic(out / f"frontier_crossing_grid{b}.json", json.dumps(crossing, indent=1))
            parts.append("<h3>Hackability frontier (learned vs rule)</h3><p>Crossing: "
                         f"<code>{html.escape(json.dumps(crossing))}</code></p>"
                         + _table(fr) + img(f))  # fmt: skip
        eg = eval_vs_gen(s, r)
        self.keep("eval_vs_gen", eg, b)
        if len(eg):
            f = plot_eval_vs_gen(eg, out / f"eval_vs_gen_grid{b}.png")
            parts.append("<h3>Evaluation vs generation</h3>" + _table(eg) + img(f))
        side_by_side = s[s.reducer == "single"].groupby("study").reward.nunique().max() > 2
        if s.kind.isin(EXAMPLE_KINDS).any() or side_by_side:  # from examples, written, or several
            br = by_reward(s)
            self.keep("by_reward", br, b)
            f = plot_by_reward(br, out / f"by_reward_grid{b}.png")
            parts.append("<h3>Rewards side by side</h3>" + _table(br) + img(f))
        lv, smallest = learned_vs_rule(s, r) if not r.empty else (pd.DataFrame(), {})
        self.keep("learned_vs_rule", lv, b)
        for axis, x in smallest.items():
            f = plot_learned_vs_rule(lv, axis, out / f"learned_vs_rule_{axis}_grid{b}.png")
            found = "none of the swept values" if x is None else f"{x:g}"
            parts.append(
                f"<h3>Learned vs rule ({AXES[axis]})</h3><p>Smallest {AXES[axis]} at which RL "
                f"against the learned reward ends within one standard error of the rule "
                f"({lv.compared_at.iloc[0]}): <b>{found}</b>.</p>"
                + _table(lv[lv.axis == axis])
                + img(f)
            )
        return "".join(parts)
