"""The sweep's comparisons at matched KL (see `rewardlab.report.sweep`): learned rewards against
the rule (`learned_vs_rule`), the hackability frontier over size × pairs (`frontier`) and
policies of different sizes against one reward model (`eval_vs_gen`); each run's gold is read
on its curve at a KL the compared runs share, not at equal steps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rewardlab.common.stats import mean_ci
from rewardlab.optimize.curves import TRAINED, families
from rewardlab.report.sweep.analyses import interp_gold, levels, varies_alone
from rewardlab.rewards.base import RULE
from rewardlab.verdict import MARGIN


def learned_vs_rule(summary: pd.DataFrame, rl: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """RL final gold of learned rewards at each x against the rule's; the smallest x reaching
    the rule, per axis. With the runs' curves (`rl`, measurements.csv) the comparison is at
    matched KL: each learned run's final gold minus the same study's rule curve at the learned
    run's final KL (`interp_gold`), ``gap`` the mean over seeds, and a level reaches the rule
    when gap ≥ −(its standard error over seeds) (``compared_at`` = ``matched KL``). Without
    curves, at equal steps: the learned mean final gold against the rule's mean final gold minus
    one standard error over seeds (``compared_at`` = ``final step``)."""
    d = summary[summary.optimizer.map(families(summary)) == TRAINED]
    rule = d[d.reward == RULE]
    learned = d[d.reducer == "single"]
    if rule.empty or learned.empty:
        return pd.DataFrame(), {}
    r_mean, r_se, _, n = mean_ci(rule.drop_duplicates("seed").final_gold.to_numpy(float))
    if n == 1 or not math.isfinite(r_se):  # one seed: the measurement's own standard error
        last = (
            rl[(rl.reward == RULE) & (rl.optimizer.map(families(rl)) == TRAINED)]
            .sort_values("step")
            .iloc[-1]
        )
        r_se = float(last.gold_se_norm)
    curve = (
        {k: g.sort_values("step") for k, g in rl.groupby(["study", "optimizer", "reward"])}
        if len(rl)
        else {}
    )
    gaps = [np.nan] * len(learned)
    if curve:
        gaps = [r.final_gold - interp_gold(curve[k], r.final_kl)
                if (k := (r.study, r.optimizer, RULE)) in curve else np.nan
                for r in learned.itertuples()]  # fmt: skip
    learned = learned.assign(_gap=gaps)
    matched = bool(np.isfinite(learned._gap).all())
    rows, smallest = [], {}
    for axis in ("params", "train_pairs"):
        if not varies_alone(learned, axis, 2):
            continue
        for x, g in learned.assign(_x=levels(learned, axis)).groupby("_x"):
            m, se, _, k = mean_ci(g.final_gold.to_numpy(float))
            pk, _, _, _ = mean_ci(g.peak_gold.to_numpy(float))
            row = dict(axis=axis, x=x, seeds=k, learned_final_gold=m, learned_final_se=se,
                       learned_final_kl=float(g.get("final_kl", pd.Series([np.nan])).mean()),
                       learned_peak_gold=pk,
                       rule_final_gold=r_mean, rule_se=r_se)  # fmt: skip
            if matched:
                gm, gse, gh, _ = mean_ci(g._gap.to_numpy(float))
                gse = gse if math.isfinite(gse) else r_se
                row.update(compared_at="matched KL", gap=gm, gap_se=gse, gap_ci95=gh,
                           reaches=bool(gm >= -gse))  # fmt: skip
            else:
                row.update(compared_at="final step", reaches=bool(m >= r_mean - r_se))
            rows.append(row)
        hits = [r["x"] for r in rows if r["axis"] == axis and r["reaches"]]
        smallest[axis] = min(hits) if hits else None
    return pd.DataFrame(rows), smallest


def frontier(summary: pd.DataFrame, rl: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The hackability frontier of RL over a grid of reward-model size × preference pairs.

    For every RL run against a learned reward (one study, seed s) and the same study's run
    against the rule: ``gap_final`` = learned final gold − the rule's gold at the learned run's
    final KL (on the rule's curve, its last gold beyond it), and ``gap_stop`` = the learned run's
    gold when it had spent the rule's final KL (early stopping at the rule's KL budget) − the
    rule's final gold. Per cell (size, pairs): mean, standard error and 95% Student-t interval
    over seeds; a cell ``reaches`` the rule when that interval lies above −`MARGIN` (the verdict
    test's equivalence margin, std of the base policy's gold). The crossing (`_crossing`): the
    reaching cells with no reaching cell below them in both size and pairs, each with the
    neighbouring cells below it that do not reach (a bracket); when none reaches, a logistic in
    log10 size at the grid's largest pairs (`logistic_crossing`), reported only inside the data.
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
                         gap_final=last.gold - interp_gold(base, last.kl),
                         gap_stop=interp_gold(mine, base_last.kl) - base_last.gold))  # fmt: skip
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
            reaches = bool(math.isfinite(h) and m - h > -MARGIN)
            row.update({k: m, f"{k}_se": se, f"{k}_ci95": h, f"{k}_reaches": reaches})
        rows.append(row)
    cells = pd.DataFrame(rows)
    crossing = {k: _crossing(cells, runs, k) for k in ("gap_final", "gap_stop")}
    return cells, crossing


def _crossing(cells: pd.DataFrame, runs: pd.DataFrame, key: str) -> dict:
    hit = cells[cells[f"{key}_reaches"]]
    if not len(hit):
        return logistic_crossing(runs, key)
    front = [r for r in hit.itertuples() if not any(
        (o.params <= r.params and o.train_pairs <= r.train_pairs and o.Index != r.Index)
        for o in hit.itertuples())]  # fmt: skip
    front.sort(key=lambda r: (r.params, r.train_pairs))
    below = []
    for r in front:  # the nearest smaller size (same pairs) and fewer pairs (same size)
        for same, axis in (("train_pairs", "params"), ("params", "train_pairs")):
            under = cells[(cells[same] == getattr(r, same)) & (cells[axis] < getattr(r, axis))]
            if len(under):
                n = under.loc[under[axis].idxmax()]
                if not n[f"{key}_reaches"]:
                    below.append((float(n.params), float(n.train_pairs)))
    return dict(kind="measured", margin=MARGIN,
                cells=[(float(r.params), float(r.train_pairs)) for r in front],
                not_reaching_below=below, bracketed=bool(below))  # fmt: skip


def _logistic(u: np.ndarray, low: float, k: float, mid: float) -> np.ndarray:
    """gap(u) = low / (1 + exp(k (u − mid))): `low` for small models, rising to 0."""
    return low / (1 + np.exp(np.clip(k * (u - mid), -50, 50)))


def _fit_logistic(u: np.ndarray, y: np.ndarray) -> float:
    """log10 size where the fitted logistic meets −`MARGIN` (NaN: no fit, or it never does)."""
    from scipy.optimize import curve_fit

    lo_u, hi_u = float(u.min()), float(u.max())
    try:
        (low, k, mid), _ = curve_fit(_logistic, u, y, p0=(min(y.min(), -2 * MARGIN), 2.0,
                                     (lo_u + hi_u) / 2), bounds=([-np.inf, 1e-3, lo_u - 3],
                                     [0.0, 50.0, hi_u + 3]), maxfev=5000)  # fmt: skip
    except (RuntimeError, ValueError):
        return math.nan
    if low >= -MARGIN:
        return math.nan
    return float(mid + math.log(low / -MARGIN - 1) / k)


def logistic_crossing(runs: pd.DataFrame, key: str, boots: int = 300) -> dict:
    """When no cell reaches: at the grid's largest pairs, the least-squares logistic
    gap = low / (1 + exp(k (log10 params − mid))) over the runs (its step-like shape: small
    models far below the rule, large ones near it), and the size where it meets −`MARGIN`,
    u* = mid + ln(low / −MARGIN − 1) / k, with a 95% interval from a bootstrap over seeds.
    Reported (``kind: fitted``) only when u* lies within the sizes tried; otherwise ``kind:
    none``, with the largest cell tried."""
    top = runs[runs.pairs == runs.pairs.max()]
    u, y = np.log10(top["size"].to_numpy(float)), top[key].to_numpy(float)
    largest = dict(params=float(top["size"].max()), train_pairs=float(runs.pairs.max()),
                   gap=float(top[top["size"] == top["size"].max()][key].mean()))  # fmt: skip
    est = _fit_logistic(u, y) if len(np.unique(u)) >= 3 else math.nan
    if not (math.isfinite(est) and u.min() <= est <= u.max()):
        return dict(kind="none", margin=MARGIN, largest=largest,
                    reason="no cell reaches the rule, and the logistic in log size meets the "
                    "margin outside the sizes tried (or not at all)")  # fmt: skip
    rng, seeds = np.random.default_rng(0), top.seed.unique()
    seed_of = top.seed.to_numpy()
    draws = []
    for _ in range(boots):
        idx = np.concatenate([np.flatnonzero(seed_of == s) for s in rng.choice(seeds, len(seeds))])
        draws.append(_fit_logistic(u[idx], y[idx]))
    draws = np.array(draws)
    ok = draws[np.isfinite(draws)]
    lo, hi = np.quantile(ok, [0.025, 0.975]) if len(ok) else (math.nan, math.nan)
    return dict(kind="fitted", margin=MARGIN, at_pairs=float(runs.pairs.max()),
                log10_params=est, params=float(10**est), params_lo=float(10**lo),
                params_hi=float(10**hi), no_crossing=float(np.mean(~np.isfinite(draws))),
                largest=largest)  # fmt: skip


def eval_vs_gen(summary: pd.DataFrame, rl: pd.DataFrame | None = None) -> pd.DataFrame:
    """Reward-model size × policy size: peak gold and fall of every optimizer against each
    learned reward, mean and 95% interval over seeds per (policy, reward model) size, with the
    ratio of reward-model to policy parameters, and whether the fall is significantly above 0
    (``hacked``: the 95% interval of the fall over seeds lies above 0). With the trained runs'
    curves (`rl`), each trained optimizer's policies are also compared at matched KL: for each
    reward-model size, ``matched_kl`` is the smallest final KL of its runs over policies and
    seeds (every run reached it) and ``gold_at_matched_kl`` each run's gold there (linear in KL
    on its curve), mean and 95% interval over seeds: at equal steps a larger policy has spent
    more KL, and its gold is read further along the curve."""
    learned = summary[summary.reducer == "single"]
    if learned.empty or learned.policy_params.nunique() < 2 or learned.params.nunique() < 2:
        return pd.DataFrame()
    d = learned.assign(_p=levels(learned, "policy_params"), _r=levels(learned, "params"))
    curve = (
        {k: g for k, g in rl.groupby(["study", "optimizer", "reward"])}
        if rl is not None and len(rl)
        else {}
    )
    common = {}
    for (opt, rp), g in d.groupby(["optimizer", "_r"]):
        keys = [(r.study, opt, r.reward) for r in g.itertuples()]
        if keys and all(k in curve for k in keys):
            common[(opt, rp)] = min(float(curve[k].sort_values("step").kl.iloc[-1]) for k in keys)
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
        if (opt, rp) in common:
            kl = common[(opt, rp)]
            at = [interp_gold(curve[(r.study, opt, r.reward)], kl) for r in g.itertuples()]
            mu, _, h, _ = mean_ci(np.array(at))
            row.update(matched_kl=kl, gold_at_matched_kl=mu, gold_at_matched_kl_ci95=h)
        rows.append(row)
    return pd.DataFrame(rows)
