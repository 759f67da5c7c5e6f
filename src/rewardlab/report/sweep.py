"""The analyses of a sweep, from its gathered tables alone.

Each grid of the sweep (a sweep file may list several) is analysed on its own, so that an axis
is never confounded with another one swept in a different grid. Within a grid:

- **scaling**: for x in (reward-model parameters, preference pairs, policy parameters), when x
  takes at least three values and the other two are fixed: every metric ``y`` (α, β of the fit
  of each optimizer, peak gold, KL at the peak, gold fall) against ``log10 x``, with the least-
  squares line ``y = a + b·log10 x`` over all seeds' points, the slope's 95% interval
  (Student t, n − 2 degrees of freedom) and the mean and 95% interval over seeds at each x;
- **KL penalty**: when the ``beta`` of a trained optimizer varies: gold against KL for each β; for β > 0 the difference
  between its final gold and the unpenalised run's gold at the same KL (linear interpolation on
  the β = 0 curve of the same seed and reward), mean ± standard error over seeds. A difference
  near 0 means the penalty moves the policy along the unpenalised curve (early stopping); a
  positive one, that it reaches a better frontier;
- **ensembles**: when ensemble rewards (``name/mean|min|uwo``) are present: peak gold, final
  gold and fall of each reducer and of the single models, per label-noise rate and optimizer;
- **learned vs rule**: when RL ran against the rule and learned rewards: the smallest x at which
  the learned reward's final gold (mean over seeds) reaches the rule's final gold minus one
  standard error (over seeds; the measurement's own when there is one seed).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rewardlab.common.html import img, table, write_page  # noqa: E402
from rewardlab.common.io import write_atomic  # noqa: E402
from rewardlab.common.stats import fit_line, mean_ci  # noqa: E402
from rewardlab.errors import RewardLabError  # noqa: E402
from rewardlab.optimize import family  # noqa: E402
from rewardlab.rewards.base import RULE  # noqa: E402
from rewardlab.rewards.ensemble import REDUCERS as ENSEMBLE_REDUCERS  # noqa: E402

AXES = {
    "params": "reward-model parameters",
    "train_pairs": "preference pairs",
    "policy_params": "policy parameters",
}
METRICS = ("alpha", "beta", "peak_gold", "peak_kl", "gold_drop")
REDUCERS = ("single", *ENSEMBLE_REDUCERS)  # a single model, then the ensembles' reducers


def _read(out: Path, name: str) -> pd.DataFrame:
    f = out / name
    return pd.read_csv(f) if f.is_file() else pd.DataFrame()


def load_sweep_tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """studies.csv, the summary joined with per-study facts and with rewards.csv (each reward's
    base source, reducer and training pairs), and the trained optimizers' measurements."""
    studies = _read(out, "studies.csv")
    if studies.empty:
        raise RewardLabError(f"{out} is not a sweep folder: studies.csv is missing")
    summary = _read(out, "summary.csv")
    rewards = _read(out, "rewards.csv")
    rl = _read(out, "measurements.csv")
    pol = {}
    for sid in studies.study:
        f = out / "studies" / sid / "stages" / "policy" / "metrics.json"
        pol[sid] = json.loads(f.read_text())["params"] if f.is_file() else math.nan
    studies["policy_params"] = studies.study.map(pol)
    if summary.empty:
        return studies, summary, rl
    facts = studies[["study", "blocks", "flip_rate", "policy_params"]]
    summary = summary.drop(columns=[c for c in facts.columns[1:] if c in summary], errors="ignore")
    summary = summary.merge(facts, on="study", how="left")
    cols = ["study", "reward", "kind", "base", "reducer", "train_pairs"]
    if rewards.empty:
        rewards = pd.DataFrame(columns=cols)
    for c in cols:
        if c not in rewards:
            rewards[c] = math.nan
    summary = summary.merge(rewards[cols], on=["study", "reward"], how="left")
    summary["peak_kl"] = summary.peak_sqrt_kl**2
    summary["reducer"] = [
        red if isinstance(red, str) else ("rule" if kind == "rule" else "single" if kind == "learned" else kind)
        for red, kind in zip(summary.reducer, summary.kind, strict=True)
    ]  # fmt: skip
    if not rl.empty:
        rl["family"] = rl.optimizer.map(family)
    return studies, summary, rl


def in_block(df: pd.DataFrame, block: int) -> pd.DataFrame:
    """Rows of studies that belong to grid `block`."""
    return df[df.blocks.astype(str).str.split().apply(lambda b: str(block) in b)]


# ---------------------------------------------------------------- analyses


FIXED_SPREAD = 0.05  # an axis whose values within a seed differ by less than 5% is held fixed


def _fixed(values: pd.Series) -> bool:
    v = values.dropna().to_numpy(float)
    return len(v) == 0 or (v.max() - v.min()) <= FIXED_SPREAD * abs(v.max())


def varies_alone(d: pd.DataFrame, axis: str, min_values: int) -> bool:
    """Whether `axis` takes at least `min_values` values within one seed while the other axes
    are fixed within every seed. Pair counts differ a little by seed and by policy (ties are
    dropped), so an axis counts as fixed when its values within a seed span under 5%."""
    if d.empty:
        return False
    by_seed = d.groupby("seed")
    if by_seed[axis].nunique().max() < min_values or all(by_seed[axis].apply(_fixed)):
        return False
    return all(by_seed[o].apply(_fixed).all() for o in AXES if o != axis)


def scaling(summary: pd.DataFrame) -> pd.DataFrame:
    """Slope of every metric against log10 of each axis that varies alone (see module doc)."""
    learned = summary[summary.reducer == "single"]
    rows = []
    for axis in AXES:
        if not varies_alone(learned, axis, 3):
            continue
        for opt, d in learned.groupby("optimizer"):
            x = np.log10(d[axis].to_numpy(float))
            for m in METRICS:
                rows.append(
                    dict(axis=axis, optimizer=opt, metric=m, **fit_line(x, d[m].to_numpy(float)))
                )
    return pd.DataFrame(rows)


def levels(d: pd.DataFrame, axis: str) -> pd.Series:
    """The level of `axis` of each row: its rank among the values of its seed, named by the mean
    value of that rank over seeds ("all pairs" is 6,637 pairs in one seed and 6,705 in another)."""
    rank = d.groupby("seed")[axis].rank(method="dense")
    return rank.map(d.groupby(rank)[axis].mean())


def per_x(summary: pd.DataFrame, axis: str, metric: str) -> pd.DataFrame:
    """Mean and 95% interval over seeds of `metric` at each level of `axis` (single models)."""
    rows = []
    single = summary[summary.reducer == "single"]
    for (opt, x), d in single.assign(_x=levels(single, axis)).groupby(["optimizer", "_x"]):
        m, se, h, n = mean_ci(d[metric].to_numpy(float))
        rows.append(dict(optimizer=opt, x=x, mean=m, se=se, ci95=h, n=n))
    return pd.DataFrame(rows)


def kl_penalty(rl: pd.DataFrame) -> pd.DataFrame:
    """For each trained optimizer, reward and β > 0: final KL and gold, and gold minus the β = 0
    curve's gold at the same KL (same seed, optimizer and reward), mean ± standard error over
    seeds."""
    rows = []
    for (opt, reward), d in rl.groupby(["optimizer", "reward"]):
        base = d[d.beta == 0]
        for beta, db in d.groupby("beta"):
            finals, diffs, peaks = [], [], []
            for seed, ds in db.groupby("seed"):
                ds = ds.sort_values("step")
                last = ds.iloc[-1]
                finals.append((last.kl, last.gold))
                peaks.append(ds.gold.max())
                b0 = base[base.seed == seed].sort_values("kl")
                if beta > 0 and len(b0) > 1 and b0.kl.min() <= last.kl <= b0.kl.max():
                    diffs.append(last.gold - np.interp(last.kl, b0.kl, b0.gold))
            f = np.array(finals)
            g, gse, _, n = mean_ci(f[:, 1])
            dm, dse, dh, dn = mean_ci(np.array(diffs))
            rows.append(dict(optimizer=opt, reward=reward, beta=beta, seeds=n, final_kl=float(np.mean(f[:, 0])),
                             final_gold=g, final_gold_se=gse, peak_gold=float(np.mean(peaks)),
                             gold_minus_unpenalised=dm, diff_se=dse, diff_ci95=dh, diff_seeds=dn))  # fmt: skip
    return pd.DataFrame(rows)


def ensembles(summary: pd.DataFrame) -> pd.DataFrame:
    """Peak gold, final gold and fall per optimizer, label-noise rate and reducer (over seeds)."""
    d = summary[summary.reducer.isin(REDUCERS)]
    rows = []
    for (opt, flip, red), g in d.groupby(["optimizer", "flip_rate", "reducer"]):
        row = dict(optimizer=opt, flip_rate=flip, reducer=red, seeds=g.seed.nunique())
        for m in ("peak_gold", "final_gold", "gold_drop"):
            mu, se, h, _ = mean_ci(g[m].to_numpy(float))
            row.update({m: mu, f"{m}_ci95": h})
        rows.append(row)
    out = pd.DataFrame(rows)
    if len(out):
        out["reducer"] = pd.Categorical(out.reducer, REDUCERS)
        out = out.sort_values(["optimizer", "flip_rate", "reducer"]).reset_index(drop=True)
        out["reducer"] = out.reducer.astype(str)
    return out


def learned_vs_rule(summary: pd.DataFrame, rl: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """RL final gold of learned rewards at each x against the rule's; the smallest x reaching
    the rule's final gold minus one standard error, per axis."""
    d = summary[summary.optimizer.map(family) == "trained"]
    rule = d[d.reward == RULE]
    learned = d[d.reducer == "single"]
    if rule.empty or learned.empty:
        return pd.DataFrame(), {}
    r_mean, r_se, _, n = mean_ci(rule.drop_duplicates("seed").final_gold.to_numpy(float))
    if n == 1 or not math.isfinite(r_se):  # one seed: the measurement's own standard error
        last = rl[(rl.reward == RULE) & (rl.family == "trained")].sort_values("step").iloc[-1]
        r_se = float(last.gold_se_norm)
    rows, smallest = [], {}
    for axis in ("params", "train_pairs"):
        if not varies_alone(learned, axis, 2):
            continue
        for x, g in learned.assign(_x=levels(learned, axis)).groupby("_x"):
            m, se, _, k = mean_ci(g.final_gold.to_numpy(float))
            pk, _, _, _ = mean_ci(g.peak_gold.to_numpy(float))
            rows.append(dict(axis=axis, x=x, seeds=k, learned_final_gold=m, learned_final_se=se,
                             learned_peak_gold=pk, rule_final_gold=r_mean, rule_se=r_se,
                             reaches=bool(m >= r_mean - r_se)))  # fmt: skip
        hits = [r["x"] for r in rows if r["axis"] == axis and r["reaches"]]
        smallest[axis] = min(hits) if hits else None
    return pd.DataFrame(rows), smallest


# ---------------------------------------------------------------- plots


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
    c["family"] = c.optimizer.map(family)
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
    ax.axhspan(r - se, r + se, color="C2", alpha=0.3, label="rule: final gold ± 1 se")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(AXES[axis])
    ax.set_ylabel("gold after RL (normalised)")
    ax.legend(fontsize=7)
    return _save(fig, path)


# ---------------------------------------------------------------- the report


def build_sweep_report(out: str | Path) -> dict[str, pd.DataFrame]:
    """Run every analysis that applies to each grid of the sweep in `out`; write
    ``analysis_*.csv``, PNGs and ``report.html``; return the analysis tables."""
    out = Path(out)
    studies, summary, rl = load_sweep_tables(out)
    curves = _read(out, "curves.csv")
    if summary.empty:
        write_atomic(out / "report.html", "<p>no finished study</p>")
        return {}
    if not rl.empty:
        rl = rl.merge(studies[["study", "blocks"]], on="study", how="left")
    blocks = sorted({int(b) for bs in studies.blocks.astype(str) for b in bs.split()})
    tables: dict[str, list[pd.DataFrame]] = {}
    sections = []
    swept = [c for c in studies.columns if c not in (
        "study", "blocks", "seed", "flip_rate", "ok", "seconds", "error", "policy_params")]  # fmt: skip

    def keep(name: str, df: pd.DataFrame, b: int) -> None:
        if len(df):
            tables.setdefault(name, []).append(df.assign(grid=b))

    for b in blocks:
        s = in_block(summary, b)
        r = in_block(rl, b) if not rl.empty else rl
        st = in_block(studies, b)
        varying = [c for c in swept if st[c].nunique() > 1]
        parts = [f"<h2>Grid {b}: {html.escape(', '.join(varying) or 'one study')}"
                 f" ({len(st)} studies)</h2>"]  # fmt: skip
        sc = scaling(s)
        keep("scaling", sc, b)
        for axis in sc.axis.unique() if len(sc) else []:
            f = plot_scaling(s, sc[sc.axis == axis], axis, out / f"scaling_{axis}_grid{b}.png")
            single = s[s.reducer == "single"]
            key = single.assign(x=levels(single, axis))[["study", "reward", "x"]]
            g = plot_gold_curves(curves, key, axis, out / f"curves_{axis}_grid{b}.png")
            parts.append(f"<h3>Against {AXES[axis]}</h3>" + table(
                sc[sc.axis == axis].drop(columns="axis")) + img(f) + img(g))  # fmt: skip
        if not r.empty and r.groupby(["optimizer", "reward"]).beta.nunique().max() > 1:
            kp = kl_penalty(r)
            keep("kl_penalty", kp, b)
            f = plot_kl_penalty(r, out / f"kl_penalty_grid{b}.png")
            parts.append("<h3>KL penalty</h3>" + table(kp) + img(f))
        if s.reducer.isin(ENSEMBLE_REDUCERS).any():
            en = ensembles(s)
            keep("ensembles", en, b)
            f = plot_ensembles(en, out / f"ensembles_grid{b}.png")
            parts.append("<h3>Ensembles</h3>" + table(en) + img(f))
        lv, smallest = learned_vs_rule(s, r) if not r.empty else (pd.DataFrame(), {})
        keep("learned_vs_rule", lv, b)
        for axis, x in smallest.items():
            f = plot_learned_vs_rule(lv, axis, out / f"learned_vs_rule_{axis}_grid{b}.png")
            found = "none of the swept values" if x is None else f"{x:g}"
            parts.append(
                f"<h3>Learned vs rule ({AXES[axis]})</h3><p>Smallest {AXES[axis]} at which RL "
                f"against the learned reward ends within one standard error of the rule's final "
                f"gold: <b>{found}</b>.</p>" + table(lv[lv.axis == axis]) + img(f)
            )
        sections.append("".join(parts))
    result = {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}
    for k, df in result.items():
        df.to_csv(out / f"analysis_{k}.csv", index=False)
    cfg = (out / "sweep.yaml").read_text() if (out / "sweep.yaml").is_file() else ""
    cols = ["study", *swept, "optimizer", "reward", "params", "peak_gold", "peak_kl",
            "final_gold", "gold_drop", "alpha", "beta"]  # fmt: skip
    body = f"""<p>Gold and proxy are normalised per study (0 = base policy mean, 1 = its standard deviation).
Intervals are 95% over seeds (Student t). Each study's own report is in studies/&lt;id&gt;/report.html.</p>
{"".join(sections)}
<h2>All studies</h2>{table(summary[[c for c in cols if c in summary]])}
<h2>Sweep file</h2><pre>{html.escape(cfg)}</pre>"""
    write_page(out / "report.html", f"rewardlab sweep: {out.name}", body, width=1300)
    return result
