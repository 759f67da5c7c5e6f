"""The sweep's analyses (see `rewardlab.report.sweep`): tables computed from the gathered
summary, measurements and reward-model tables of a sweep folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from rewardlab.common.stats import fit_line_by_seed, mean_ci
from rewardlab.errors import RewardLabError
from rewardlab.optimize.curves import TRAINED, families
from rewardlab.rewards.base import RULE
from rewardlab.rewards.ensemble import REDUCERS as ENSEMBLE_REDUCERS

AXES = {
    "params": "reward-model parameters",
    "train_pairs": "preference pairs",
    "policy_params": "policy parameters",
}
METRICS = ("alpha", "beta", "peak_gold", "peak_kl", "gold_drop", "gap_to_rule")
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
    fams = {}
    if not summary.empty and (out / "curves.csv").is_file():  # two columns of a large table
        cols = pd.read_csv(out / "curves.csv", usecols=lambda c: c in ("optimizer", "family"))
        fams = families(cols)
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
    summary["gap_to_rule"] = gap_to_rule(summary, _rule_curves(out))
    summary["family"] = summary.optimizer.map(fams)
    summary["reducer"] = [
        red if isinstance(red, str) else ("rule" if kind == "rule" else "single" if kind == "learned" else kind)
        for red, kind in zip(summary.reducer, summary.kind, strict=True)
    ]  # fmt: skip
    if not rl.empty:
        rl["family"] = rl.optimizer.map(fams).fillna(TRAINED)
    return studies, summary, rl


def _rule_curves(out: Path) -> dict[tuple[str, str], pd.DataFrame]:
    """Each (study, optimizer)'s curve against the rule (kl, gold), from ``curves.csv``."""
    f = out / "curves.csv"
    if not f.is_file():
        return {}
    cols = ("study", "optimizer", "reward", "kl", "gold")
    c = pd.read_csv(f, usecols=lambda k: k in cols)
    if not set(cols) <= set(c.columns):
        return {}
    c = c[c.reward == RULE]
    return {k: g.sort_values("kl") for k, g in c.groupby(["study", "optimizer"])}


def gap_to_rule(summary: pd.DataFrame, rule: dict[tuple[str, str], pd.DataFrame]) -> list[float]:
    """Each summary row's final gold minus the gold of the same study and optimizer against the
    rule at the row's final KL (linear in KL on the rule's curve; its last gold beyond its KL):
    how far below the gold's own curve a proxy ends at matched KL. Under a bounded gold a
    fitted β_bon measures how fast a curve saturates toward its ceiling (the rule's own curve
    fits a positive β and never falls), so overoptimization is judged by this gap and by the
    hacking test, not by β. NaN for the rule itself and where the study did not optimise it."""
    return [
        r.final_gold - interp_gold(rule[(r.study, r.optimizer)], r.final_kl)
        if r.reward != RULE and (r.study, r.optimizer) in rule
        else math.nan
        for r in summary.itertuples()
    ]


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
    """Slope of every metric against log10 of each axis that varies alone, its interval
    clustered by seed (`fit_line_by_seed`; see module doc)."""
    learned = summary[summary.reducer == "single"]
    rows = []
    for axis in AXES:
        if not varies_alone(learned, axis, 3):
            continue
        fams = families(learned)
        for opt, d in learned.groupby("optimizer"):
            fam = fams[opt]
            x = np.log10(d[axis].to_numpy(float))
            for m in (m for m in METRICS if m in d):
                fit = fit_line_by_seed(x, d[m].to_numpy(float), d.seed.to_numpy())
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
    curve's gold at the same KL (same seed, optimizer and reward), mean and standard error over
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


def rm_accuracy(reward_models: pd.DataFrame) -> pd.DataFrame:
    """Held-out pair accuracy of the reward models at each level of each axis that varies
    alone (≥ 2 values): mean and 95% interval over seeds of the test and train accuracy and of
    the accuracy in each gold-margin bin (``acc_margin_*``), and whether the mean test accuracy
    is above that of the level below (``rises``; NaN for the lowest level). The step from the
    level below is also paired by seed: with Δ_s = acc(x, s) − acc(x_prev, s) over the seeds s
    that have both levels, ``step`` is mean Δ_s with its 95% Student-t half-width ``step_ci95``,
    and ``rises_in_seeds`` counts the seeds with Δ_s > 0 out of ``paired_seeds``."""
    if reward_models.empty or "test_accuracy" not in reward_models:
        return pd.DataFrame()
    bins = [c for c in reward_models.columns if c.startswith("acc_margin_")]
    rows = []
    for axis in AXES:
        if axis not in reward_models or not varies_alone(reward_models, axis, 2):
            continue
        d = reward_models.assign(_x=levels(reward_models, axis))
        prev, prev_by_seed = math.nan, None
        for x, g in d.groupby("_x"):
            m, _, h, n = mean_ci(g.test_accuracy.to_numpy(float))
            row = dict(axis=axis, x=x, seeds=n, test_accuracy=m, test_accuracy_ci95=h,
                       train_accuracy=float(g.train_accuracy.mean()),
                       rises=math.nan if not math.isfinite(prev) else bool(m > prev))  # fmt: skip
            by_seed = g.groupby("seed").test_accuracy.mean()
            if prev_by_seed is not None:
                delta = (by_seed - prev_by_seed).dropna().to_numpy(float)
                sm, _, sh, sn = mean_ci(delta)
                row.update(step=sm, step_ci95=sh, rises_in_seeds=int((delta > 0).sum()),
                           paired_seeds=sn)  # fmt: skip
            prev_by_seed = by_seed
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


BETA_CAVEAT = (
    "under a bounded gold β also measures saturation (the rule's own curve fits β > 0 and never "
    "falls): judge overoptimization by the hacking test and gap_to_rule, not by β"
)


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
                             verdict=verdict, reason=why,
                             caveat=BETA_CAVEAT if metric == "beta" else ""))  # fmt: skip
    return pd.DataFrame(rows)


def interp_gold(curve: pd.DataFrame, kl: float) -> float:
    """Gold of a measured RL curve at KL = `kl` (linear in KL; its last gold beyond its range)."""
    c = curve.sort_values("kl")
    return float(np.interp(kl, c.kl.to_numpy(float), c.gold.to_numpy(float)))


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
