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
  standard error (over seeds; the measurement's own when there is one seed);
- **reward-model accuracy** (`reward_models.csv`): held-out accuracy per level of each axis that
  varies alone, by gold-margin bin, and whether each step rises;
- **Gao et al. 2022 side by side**: each stated direction (`GAO`) beside the slope and a verdict;
  for a grid over two axes, the slopes of each at fixed levels of the other (`scaling_within`);
- **frontier**: over size × pairs, RL's gold minus the rule's at the same KL, per cell, and the
  crossing (measured, or extrapolated and labelled so);
- **evaluation vs generation**: over reward-model × policy size, peak gold and fall against the
  ratio of their parameters;
- **by reward**: when rewards learned from examples (classifier, demos, likelihood ratio) are
  present: each reward's peak gold, final gold, fall and final KL per optimizer over seeds, and
  its final gold minus the rule's, paired by seed.
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
from rewardlab.optimize.curves import TRAINED, families  # noqa: E402
from rewardlab.rewards.base import RULE  # noqa: E402
from rewardlab.rewards.ensemble import REDUCERS as ENSEMBLE_REDUCERS  # noqa: E402

MIN_SEEDS_FOR_INTERVAL = 3  # with fewer seeds a t interval over seeds is too wide to mean anything
COLUMNS = {  # what the sweep report's table columns mean (shown under each table that has them)
    "seeds": "seeds behind the row's means",
    "n": "points (studies × levels) behind a fitted line",
    "paired_seeds": "seeds in which both rewards of a paired difference ran",
    "slope": "least-squares slope per decade of the axis (y = intercept + slope·log10 x)",
    "slope_lo": "95% interval of the slope (Student t, n − 2 degrees of freedom): low end",
    "slope_hi": "95% interval of the slope: high end",
    "slope_se": "standard error of the slope",
    "r2": "share of the variance the line explains",
    "test_accuracy": "share of held-out preference pairs the reward model ranks as gold does",
    "train_accuracy": "the same on its training pairs",
    "rises": "whether the mean test accuracy is above that of the level below (blank at the "
    "lowest level)",
    "peak_gold": "the curve's highest gold (base-policy standard deviations)",
    "final_gold": "gold at the curve's last point",
    "gold_drop": "peak_gold − final_gold: how far gold falls after its peak",
    "final_kl": "KL(policy ‖ base) at the last point, nats",
    "alpha": "Gao et al.'s α: the fitted curve's initial slope in √KL",
    "beta": "Gao et al.'s β: how fast the fitted curve bends down",
    "minus_rule": "final gold minus the rule's final gold in the same seed (paired)",
    "reaches": "whether the learned reward's final gold comes within one standard error of the "
    "rule's",
    "hacked": "whether the fall's 95% interval over seeds lies above 0",
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
    fams = families(_read(out, "curves.csv")) if not summary.empty else {}
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
    summary["family"] = summary.optimizer.map(fams)
    summary["reducer"] = [
        red if isinstance(red, str) else ("rule" if kind == "rule" else "single" if kind == "learned" else kind)
        for red, kind in zip(summary.reducer, summary.kind, strict=True)
    ]  # fmt: skip
    if not rl.empty:
        rl["family"] = rl.optimizer.map(fams).fillna(TRAINED)
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
        fams = families(learned)
        for opt, d in learned.groupby("optimizer"):
            fam = fams[opt]
            x = np.log10(d[axis].to_numpy(float))
            for m in METRICS:
                fit = fit_line(x, d[m].to_numpy(float))
                rows.append(dict(axis=axis, optimizer=opt, family=fam, metric=m, **fit))
    return pd.DataFrame(rows)


def scaling_within(summary: pd.DataFrame) -> pd.DataFrame:
    """When no axis varies alone (a grid over two axes): `scaling` of one axis within each level
    of another, with ``held_axis`` naming the held axis and ``held_value`` its level; a set of
    studies already fitted under another held axis is not fitted again."""
    learned = summary[summary.reducer == "single"]
    out, seen = [], set()
    for held in AXES:
        if learned.empty or learned.groupby("seed")[held].nunique().max() < 2:
            continue
        for x, sub in learned.groupby(levels(learned, held)):
            studies = frozenset(sub.study)
            if studies in seen:  # the same studies held by another axis (pairs that follow policy)
                continue
            seen.add(studies)
            sc = scaling(sub)
            if len(sc):
                out.append(sc.assign(held_axis=held, held_value=x))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


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
    d = summary[summary.optimizer.map(families(summary)) == TRAINED]
    rule = d[d.reward == RULE]
    learned = d[d.reducer == "single"]
    if rule.empty or learned.empty:
        return pd.DataFrame(), {}
    r_mean, r_se, _, n = mean_ci(rule.drop_duplicates("seed").final_gold.to_numpy(float))
    if n == 1 or not math.isfinite(r_se):  # one seed: the measurement's own standard error
        last = rl[(rl.reward == RULE) & (rl.optimizer.map(families(rl)) == TRAINED)].sort_values("step").iloc[-1]
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


def rm_accuracy(reward_models: pd.DataFrame) -> pd.DataFrame:
    """Held-out pair accuracy of the reward models at each level of each axis that varies
    alone (≥ 2 values): mean and 95% interval over seeds of the test and train accuracy and of
    the accuracy in each gold-margin bin (``acc_margin_*``), and whether the mean test accuracy
    is above that of the level below (``rises``; NaN for the lowest level)."""
    if reward_models.empty or "test_accuracy" not in reward_models:
        return pd.DataFrame()
    bins = [c for c in reward_models.columns if c.startswith("acc_margin_")]
    rows = []
    for axis in AXES:
        if axis not in reward_models or not varies_alone(reward_models, axis, 2):
            continue
        d = reward_models.assign(_x=levels(reward_models, axis))
        prev = math.nan
        for x, g in d.groupby("_x"):
            m, _, h, n = mean_ci(g.test_accuracy.to_numpy(float))
            row = dict(axis=axis, x=x, seeds=n, test_accuracy=m, test_accuracy_ci95=h,
                       train_accuracy=float(g.train_accuracy.mean()),
                       rises=math.nan if not math.isfinite(prev) else bool(m > prev))  # fmt: skip
            for b in bins:
                bm, _, bh, _ = mean_ci(g[b].to_numpy(float))
                row.update({b: bm, f"{b}_ci95": bh})
            rows.append(row)
            prev = m
    return pd.DataFrame(rows)


# Gao et al. 2022's stated direction of each finding (+1 rises, -1 falls, 0 no trend) against
# log reward-model parameters, log preference pairs and log policy parameters ("weak dependence
# on policy size"), as the lab reads their results on each; what they state, and what the lab
# measures for it.
GAO = {
    ("params", "sample", "alpha"): (+1, "α_bon rises with RM size, about linearly in log params"),
    ("params", "sample", "beta"): (
        -1,
        "β_bon falls with RM size: larger RMs are overoptimised later",
    ),
    ("params", "sample", "peak_gold"): (+1, "larger RMs reach a higher best-of-n gold peak"),
    ("params", "sample", "peak_kl"): (+1, "the best-of-n peak moves to larger KL (d* = α/2β)"),
    ("params", "trained", "alpha"): (0, "α_RL changes little with RM size"),
    ("params", "trained", "beta"): (-1, "β_RL falls with RM size"),
    ("params", "trained", "peak_gold"): (+1, "larger RMs reach a higher RL gold peak"),
    ("params", "trained", "peak_kl"): (+1, "the RL peak moves to larger KL"),
    ("train_pairs", "sample", "alpha"): (+1, "more data: higher gold (α_bon rises)"),
    ("train_pairs", "sample", "peak_gold"): (+1, "more data: a higher best-of-n peak"),
    ("train_pairs", "trained", "peak_gold"): (+1, "more data: a higher RL peak"),
    ("train_pairs", "sample", "gold_drop"): (-1, "more data: less Goodharting after the peak"),
    ("policy_params", "sample", "peak_kl"): (0, "policy size barely moves the KL of the peak"),
    ("policy_params", "trained", "peak_kl"): (0, "policy size barely moves the KL of the peak"),
}


def gao_findings(fits: pd.DataFrame) -> pd.DataFrame:
    """Gao et al. 2022's direction of each finding (`GAO`) beside the lab's slope per decade
    with its 95% interval, and the verdict: for a stated rise or fall, *reproduced* when the
    interval excludes 0 on the stated side, *not reproduced* when it excludes 0 on the other
    side, *not established* when it includes 0; for a stated absence of trend, *reproduced*
    when the interval includes 0 and *not reproduced* otherwise."""
    rows = []
    if fits.empty:
        return pd.DataFrame()
    fam = fits.family if "family" in fits else fits.optimizer.map(families(fits))
    for (axis, f, metric), (sign, text) in GAO.items():
        sel = fits[(fits.axis == axis) & (fam == f) & (fits.metric == metric)]
        for r in sel.itertuples():
            lo, hi = r.slope_lo, r.slope_hi
            if not (math.isfinite(lo) and math.isfinite(hi)):
                verdict, why = "not established", "too few points for an interval"
            elif sign == 0:
                zero = lo <= 0 <= hi
                verdict = "reproduced" if zero else "not reproduced"
                why = "interval includes 0" if zero else "interval excludes 0"
            elif lo > 0 or hi < 0:
                ok = (lo > 0) == (sign > 0)
                verdict = "reproduced" if ok else "not reproduced"
                why = (
                    "interval excludes 0 on the stated side" if ok else "significant, opposite sign"
                )
            else:
                verdict, why = "not established", "interval includes 0"
            held = (
                {"held_axis": r.held_axis, "held_value": r.held_value}
                if "held_axis" in fits
                else {}
            )
            rows.append(dict(axis=axis, **held, optimizer=r.optimizer, metric=metric, gao=text,
                             gao_sign=sign, slope=r.slope, slope_lo=lo, slope_hi=hi, n=r.n,
                             verdict=verdict, reason=why))  # fmt: skip
    return pd.DataFrame(rows)


def _interp_gold(curve: pd.DataFrame, kl: float) -> float:
    """Gold of a measured RL curve at KL = `kl` (linear in KL; its last gold beyond its range)."""
    c = curve.sort_values("kl")
    return float(np.interp(kl, c.kl.to_numpy(float), c.gold.to_numpy(float)))


def frontier(summary: pd.DataFrame, rl: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The hackability frontier of RL over a grid of reward-model size × preference pairs.

    For every RL run against a learned reward (one study, seed s) and the same study's run
    against the rule: ``gap_final`` = learned final gold − the rule's gold at the learned run's
    final KL (on the rule's curve, its last gold beyond it), and ``gap_stop`` = the learned run's
    gold when it had spent the rule's final KL (early stopping at the rule's KL budget) − the
    rule's final gold. Per cell (size, pairs): mean and standard error over seeds; a cell
    ``reaches`` the rule when mean ≥ −se. The crossing: the reaching cells with no reaching cell
    below them in both size and pairs (smallest first); when none reaches, least squares
    gap = a + b·log10(params) + c·log10(pairs) over all runs, the size where it meets 0 at the
    grid's largest pairs, with a 95% interval from a bootstrap over seeds (an extrapolation).
    """
    d = summary[summary.optimizer.map(families(summary)) == TRAINED]
    learned = d[d.reducer == "single"]
    rule = d[d.reward == RULE]
    if learned.empty or rule.empty or rl.empty:
        return pd.DataFrame(), {}
    if learned.params.nunique() < 2 or learned.groupby("seed").train_pairs.nunique().max() < 2:
        return pd.DataFrame(), {}
    curve = {k: g.sort_values("step") for k, g in rl.groupby(["study", "optimizer", "reward"])}
    runs = []
    for r in learned.itertuples():
        mine = curve.get((r.study, r.optimizer, r.reward))
        base = curve.get((r.study, r.optimizer, RULE))
        if mine is None or base is None:
            continue
        last, base_last = mine.iloc[-1], base.iloc[-1]
        runs.append(dict(study=r.study, seed=r.seed, params=r.params, train_pairs=r.train_pairs,
                         learned_final_gold=last.gold, learned_final_kl=last.kl,
                         rule_final_gold=base_last.gold, rule_final_kl=base_last.kl,
                         gap_final=last.gold - _interp_gold(base, last.kl),
                         gap_stop=_interp_gold(mine, base_last.kl) - base_last.gold))  # fmt: skip
    runs = pd.DataFrame(runs)
    if runs.empty:
        return runs, {}
    runs["size"] = levels(runs, "params")
    runs["pairs"] = levels(runs, "train_pairs")
    rows = []
    for (x, p), g in runs.groupby(["size", "pairs"]):
        row = dict(params=x, train_pairs=p, seeds=g.seed.nunique())
        for k in ("gap_final", "gap_stop"):
            m, se, h, n = mean_ci(g[k].to_numpy(float))
            se = se if math.isfinite(se) else 0.0
            row.update({k: m, f"{k}_se": se, f"{k}_ci95": h, f"{k}_reaches": bool(m >= -se)})
        rows.append(row)
    cells = pd.DataFrame(rows)
    crossing = {k: _crossing(cells, runs, k) for k in ("gap_final", "gap_stop")}
    return cells, crossing


def _crossing(cells: pd.DataFrame, runs: pd.DataFrame, key: str, boots: int = 2000) -> dict:
    hit = cells[cells[f"{key}_reaches"]]
    if len(hit):
        front = [r for r in hit.itertuples() if not any(
            (o.params <= r.params and o.train_pairs <= r.train_pairs and o.Index != r.Index)
            for o in hit.itertuples())]  # fmt: skip
        front.sort(key=lambda r: (r.params, r.train_pairs))
        return dict(kind="measured", cells=[(float(r.params), float(r.train_pairs)) for r in front])
    X = np.column_stack([np.ones(len(runs)), np.log10(runs.params), np.log10(runs.train_pairs)])
    y = runs[key].to_numpy(float)
    lp = math.log10(runs.pairs.max())

    def cross(Xs: np.ndarray, ys: np.ndarray) -> float:
        a, b, c = np.linalg.lstsq(Xs, ys, rcond=None)[0]
        return (-a - c * lp) / b if b > 0 else math.inf  # log10 params where the gap meets 0

    est = cross(X, y)
    seeds = runs.seed.unique()
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(boots):
        pick = rng.choice(seeds, len(seeds), replace=True)
        idx = np.concatenate([np.flatnonzero(runs.seed.to_numpy() == s) for s in pick])
        draws.append(cross(X[idx], y[idx]))
    draws = np.array(draws)
    lo, hi = np.quantile(draws, [0.025, 0.975]) if len(draws) else (math.nan, math.nan)
    return dict(kind="extrapolated", at_pairs=float(runs.pairs.max()),
                log10_params=float(est), params=float(10**est) if math.isfinite(est) else math.inf,
                params_lo=float(10**lo) if math.isfinite(lo) else math.inf,
                params_hi=float(10**hi) if math.isfinite(hi) else math.inf,
                never=float(np.mean(~np.isfinite(draws))))  # fmt: skip


def eval_vs_gen(summary: pd.DataFrame) -> pd.DataFrame:
    """Reward-model size × policy size: peak gold and fall of every optimizer against each
    learned reward, mean and 95% interval over seeds per (policy, reward model) size, with the
    ratio of reward-model to policy parameters, and whether the fall is significantly above 0
    (``hacked``: the 95% interval of the fall over seeds lies above 0)."""
    learned = summary[summary.reducer == "single"]
    if learned.empty or learned.policy_params.nunique() < 2 or learned.params.nunique() < 2:
        return pd.DataFrame()
    d = learned.assign(_p=levels(learned, "policy_params"), _r=levels(learned, "params"))
    rows = []
    for (opt, pp, rp), g in d.groupby(["optimizer", "_p", "_r"]):
        row = dict(
            optimizer=opt, policy_params=pp, params=rp, ratio=rp / pp, seeds=g.seed.nunique()
        )
        for m in ("peak_gold", "gold_drop", "final_gold"):
            mu, _, h, _ = mean_ci(g[m].to_numpy(float))
            row.update({m: mu, f"{m}_ci95": h})
        h = row["gold_drop_ci95"]
        row["hacked"] = bool(math.isfinite(h) and row["gold_drop"] - h > 0)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- plots


EXAMPLE_KINDS = (
    "classifier",
    "demos",
    "likelihood_ratio",
    "program",
    "function",
)  # not comparisons


def by_reward(summary: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer and reward, over seeds: mean and 95% interval (Student t) of peak gold,
    final gold, fall (peak − final) and final KL, and, where the rule was optimised by the same
    optimizer in the same studies, the final gold minus the rule's (paired by seed)."""
    rows = []
    for (opt, reward), g in summary.groupby(["optimizer", "reward"], sort=False):
        kind = g.kind.dropna().iloc[0] if g.kind.notna().any() else None
        row = dict(optimizer=opt, reward=reward, kind=kind, seeds=g.seed.nunique())
        for m in ("peak_gold", "final_gold", "gold_drop", "final_kl"):
            mu, _, h, _ = mean_ci(g[m].to_numpy(float))
            row.update({m: mu, f"{m}_ci95": h})
        rule = summary[(summary.optimizer == opt) & (summary.reward == RULE)]
        if len(rule) and reward != RULE:
            paired = g.merge(rule[["study", "final_gold"]], on="study", suffixes=("", "_rule"))
            mu, _, h, k = mean_ci((paired.final_gold - paired.final_gold_rule).to_numpy(float))
            row.update(minus_rule=mu, minus_rule_ci95=h, paired_seeds=k)
        rows.append(row)
    return pd.DataFrame(rows)


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
    ax.axhspan(r - se, r + se, color="C2", alpha=0.3, label="rule: final gold ± 1 se")
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
            ax.text(j, i, f"{grid[i, j]:.2f}\n±{getattr(r, f'{key}_se'):.2f}{mark}", ha="center",
                    va="center", fontsize=7)  # fmt: skip
        lim = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
        im = ax.imshow(grid, origin="lower", cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(xs)), [f"{x:,.0f}" for x in xs], fontsize=7)
        ax.set_yticks(range(len(ps)), [f"{p:,.0f}" for p in ps], fontsize=7)
        ax.set_xlabel(AXES["params"])
        ax.set_ylabel(AXES["train_pairs"])
        c = crossing.get(key, {})
        if c.get("kind") == "extrapolated":
            note = (f"none reaches; extrapolated crossing ≈ {c['params']:,.3g} params "
                    f"[{c['params_lo']:,.3g}, {c['params_hi']:,.3g}]")  # fmt: skip
        else:
            note = "✓ = within one se of the rule"
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
    rms = _read(out, "reward_models.csv")
    if not rms.empty:
        rms = rms.drop(columns=[c for c in ("blocks", "policy_params") if c in rms])
        rms = rms.merge(studies[["study", "blocks", "policy_params"]], on="study", how="left")
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
        acc = rm_accuracy(in_block(rms, b)) if not rms.empty else pd.DataFrame()
        keep("rm_accuracy", acc, b)
        for axis in acc.axis.unique() if len(acc) else []:
            f = plot_rm_accuracy(acc, axis, out / f"rm_accuracy_{axis}_grid{b}.png")
            parts.append(f"<h3>Reward-model accuracy against {AXES[axis]}</h3>"
                         + _table(acc[acc.axis == axis].drop(columns="axis")) + img(f))  # fmt: skip
        sc = scaling(s)
        keep("scaling", sc, b)
        within = scaling_within(s) if sc.empty else pd.DataFrame()
        keep("scaling_within", within, b)
        if len(within):
            parts.append("<h3>Each axis at fixed levels of the other</h3>" + _table(within))
        gf = gao_findings(sc) if len(sc) else gao_findings(within)
        keep("gao", gf, b)
        if len(gf):
            parts.append("<h3>Against Gao et al. 2022</h3>" + _table(gf))
        for axis in sc.axis.unique() if len(sc) else []:
            f = plot_scaling(s, sc[sc.axis == axis], axis, out / f"scaling_{axis}_grid{b}.png")
            single = s[s.reducer == "single"]
            key = single.assign(x=levels(single, axis))[["study", "reward", "x"]]
            g = plot_gold_curves(curves, key, axis, out / f"curves_{axis}_grid{b}.png")
            parts.append(f"<h3>Against {AXES[axis]}</h3>" + _table(
                sc[sc.axis == axis].drop(columns="axis")) + img(f) + img(g))  # fmt: skip
        if not r.empty and r.groupby(["optimizer", "reward"]).beta.nunique().max() > 1:
            kp = kl_penalty(r)
            keep("kl_penalty", kp, b)
            f = plot_kl_penalty(r, out / f"kl_penalty_grid{b}.png")
            parts.append("<h3>KL penalty</h3>" + _table(kp) + img(f))
        if s.reducer.isin(ENSEMBLE_REDUCERS).any():
            en = ensembles(s)
            keep("ensembles", en, b)
            f = plot_ensembles(en, out / f"ensembles_grid{b}.png")
            parts.append("<h3>Ensembles</h3>" + _table(en) + img(f))
        fr, crossing = frontier(s, r) if not r.empty else (pd.DataFrame(), {})
        keep("frontier", fr, b)
        if len(fr):
            f = plot_frontier(fr, crossing, out / f"frontier_grid{b}.png")
            write_atomic(out / f"frontier_crossing_grid{b}.json", json.dumps(crossing, indent=1))
            parts.append("<h3>Hackability frontier (learned vs rule)</h3><p>Crossing: "
                         f"<code>{html.escape(json.dumps(crossing))}</code></p>"
                         + _table(fr) + img(f))  # fmt: skip
        eg = eval_vs_gen(s)
        keep("eval_vs_gen", eg, b)
        if len(eg):
            f = plot_eval_vs_gen(eg, out / f"eval_vs_gen_grid{b}.png")
            parts.append("<h3>Evaluation vs generation</h3>" + _table(eg) + img(f))
        if s.kind.isin(EXAMPLE_KINDS).any():  # rewards learned from examples or written
            br = by_reward(s)
            keep("by_reward", br, b)
            f = plot_by_reward(br, out / f"by_reward_grid{b}.png")
            parts.append("<h3>Rewards side by side</h3>" + _table(br)
                         + img(f))  # fmt: skip
        lv, smallest = learned_vs_rule(s, r) if not r.empty else (pd.DataFrame(), {})
        keep("learned_vs_rule", lv, b)
        for axis, x in smallest.items():
            f = plot_learned_vs_rule(lv, axis, out / f"learned_vs_rule_{axis}_grid{b}.png")
            found = "none of the swept values" if x is None else f"{x:g}"
            parts.append(
                f"<h3>Learned vs rule ({AXES[axis]})</h3><p>Smallest {AXES[axis]} at which RL "
                f"against the learned reward ends within one standard error of the rule's final "
                f"gold: <b>{found}</b>.</p>" + _table(lv[lv.axis == axis]) + img(f)
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
<h2>All studies</h2>{_table(summary[[c for c in cols if c in summary]])}
<h2>Sweep file</h2><pre>{html.escape(cfg)}</pre>"""
    write_page(out / "report.html", f"rewardlab sweep: {out.name}", body, width=1300)
    return result
