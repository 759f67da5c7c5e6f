"""What every optimizer returns (`OptimizerResult`: curve rows, per-prompt rows, fits), the raw
curves of trained optimizers turned into ``curves.csv`` rows, ``measurements.csv`` and fits
(normalised by the base policy's pool as best-of-n is, `measure.normalize`), and the summary of
every curve.

An optimizer is one module under `optimize/` with ``Config`` (a `Strict` model whose ``kind`` is
a `Literal`), ``FAMILY`` (`SAMPLE` or `TRAINED`) and ``run(cfg, ctx) -> OptimizerResult``. A
sample-based optimizer picks among the base policy's samples in ``ctx.scores``; a trained one
updates the policy and writes, per reward it optimises, a raw curve with the columns
`measurement.RAW_COLUMNS` (`CURVE_FILE`), which `trained_result` turns into its result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rewardlab.measure import Fit, fit_rl, normalize
from rewardlab.rewards.base import RULE

SAMPLE, TRAINED = "sample", "trained"  # the two optimizer families
CURVE_FILE = "curve.csv"  # a trained optimizer's raw curve in its stage folder

CURVE_COLUMNS = [
    "optimizer",
    "reward",
    "reward_params",
    "seed",
    "step",
    "kl",
    "sqrt_kl",
    "proxy",
    "gold",
    "proxy_raw",
    "gold_raw",
    "family",
]


@dataclass
class Trained:
    """One trained optimizer run: its algorithm, the reward it optimised (None: none, as DPO),
    the label of its stage in the run folder, its raw curve, and settings kept for analyses."""

    optimizer: str
    reward: str
    proxy: str | None
    label: str
    raw: pd.DataFrame
    beta: float = 0.0


@dataclass
class OptimizerResult:
    """What every optimizer returns, whatever its family.

    Attributes:
        family: `SAMPLE` or `TRAINED`.
        curves: ``curves.csv`` rows (`CURVE_COLUMNS`).
        fits: {optimizer as named in `curves`: {reward: fit of gold}}.
        by_prompt: per-prompt curves (optimizer, reward, prompt, n, kl, proxy, gold, sqrt_kl),
            for a sample-based optimizer.
        measurements: every measurement with its errors (``measurements.csv``), for a trained one.
        examples: completions picked along the curves (``examples.csv``).
    """

    family: str
    curves: pd.DataFrame
    fits: dict[str, dict[str, Fit]] = field(default_factory=dict)
    by_prompt: pd.DataFrame | None = None
    measurements: pd.DataFrame | None = None
    examples: pd.DataFrame | None = None


def families(curves: pd.DataFrame) -> dict[str, str]:
    """optimizer -> family of a ``curves.csv``; a run folder written before curves carried their
    family had one sample-based optimizer, best-of-n."""
    if "family" in curves:
        return dict(zip(curves.optimizer, curves.family, strict=True))
    return {o: SAMPLE if o == "bon" else TRAINED for o in curves.optimizer.unique()}


def _scale(ref: np.ndarray) -> float:
    sd = float(np.std(ref))
    return sd if sd > 0 else 1.0


def trained_result(trained: list[Trained], ctx) -> OptimizerResult:
    """The result of a trained optimizer's runs, normalised by the study's scored pool."""
    params = {n: r.params for n, r in ctx.rewards.items()}
    curves, detail, fits = trained_rows(trained, ctx.scores, params, ctx.seed)
    return OptimizerResult(TRAINED, curves, fits, measurements=detail)


def trained_rows(
    trained: list[Trained], pool: pd.DataFrame, params: dict[str, int], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, Fit]]]:
    """``curves.csv`` rows, the detailed measurements and an RL-form fit per run.

    For a run with raw gold g and proxy p at each step: gold = normalize(g, pool gold) and
    proxy = normalize(p, pool proxy), the pool being the base policy's scored best-of-n pool
    (its column named after the proxy reward; the rule's proxy is gold itself); standard errors
    are divided by the same standard deviations, and so is each prompt's mean gold
    (``gold_by_prompt``, the units of the hacking test, `verdict`); sqrt_kl = sqrt(max(kl, 0)) (k1 can be slightly
    negative by noise near the initial policy). `checkpoint` names the policy measured at each
    step inside the run folder (the base policy at step 0).
    """
    gold_ref = pool["gold"].to_numpy(float)
    rows, details, fits = [], [], {}
    for t in trained:
        c = t.raw.sort_values("step").reset_index(drop=True)
        if t.proxy is None:
            proxy_ref = None
        else:  # the rule's proxy is gold itself
            proxy_ref = gold_ref if t.proxy == RULE else pool[t.proxy].to_numpy(float)
        c["gold"] = normalize(c.gold_raw.to_numpy(float), gold_ref)
        if "gold_by_prompt" in c:  # absent from curves measured before it was recorded
            c["gold_by_prompt"] = [
                " ".join(f"{x:.9g}" for x in normalize(np.array(v.split(), float), gold_ref))
                if isinstance(v, str) else np.nan
                for v in c.gold_by_prompt
            ]  # fmt: skip
        c["gold_se_norm"] = c.gold_se / _scale(gold_ref)
        if proxy_ref is None:
            c["proxy"], c["proxy_se_norm"] = np.nan, np.nan
        else:
            c["proxy"] = normalize(c.proxy_raw.to_numpy(float), proxy_ref)
            c["proxy_se_norm"] = c.proxy_se / _scale(proxy_ref)
        c["sqrt_kl"] = np.sqrt(c.kl.clip(lower=0))
        c.insert(0, "optimizer", t.optimizer)
        c.insert(1, "reward", t.reward)
        c["beta"] = t.beta
        c["checkpoint"] = [
            "stages/policy" if st == 0 else f"stages/{t.label}/checkpoints/step-{st:05d}"
            for st in c.step
        ]
        details.append(c)
        rows.append(
            c.assign(reward_params=params.get(t.reward, 0), seed=seed, family=TRAINED)[
                CURVE_COLUMNS
            ]
        )
        fits.setdefault(t.optimizer, {})[t.reward] = fit_rl(
            c.sqrt_kl.to_numpy(), c.gold.to_numpy(), n_boot=0
        )
    if not rows:
        return pd.DataFrame(columns=CURVE_COLUMNS), pd.DataFrame(), {}
    return pd.concat(rows, ignore_index=True), pd.concat(details, ignore_index=True), fits


def drop_interval(
    by_prompt: pd.DataFrame,
    reward: str,
    peak_step: int,
    n_boot: int = 2000,
    seed: int = 0,
    optimizer: str | None = None,
) -> tuple[float, float]:
    """95% bootstrap interval over prompts of gold(peak_step) - gold(last step), the peak step
    held fixed (so the interval leaves out the choice of the peak, and is a little optimistic);
    the rows of `optimizer` only, when given."""
    bp = by_prompt[by_prompt.reward == reward]
    if optimizer is not None:
        bp = bp[bp.optimizer == optimizer]
    G = bp.pivot(index="prompt", columns="n", values="gold")
    if len(G) < 2:
        return (np.nan, np.nan)
    diff = (G[peak_step] - G[G.columns.max()]).to_numpy()
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(diff), (n_boot, len(diff)))].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(lo), float(hi)


def summarize(
    curves: pd.DataFrame, fits: dict[str, dict[str, Fit]], by_prompt: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (optimizer, reward): gold at its peak and at the largest step, the fall
    between them (with a 95% interval over prompts when `by_prompt` is given), proxy at the
    largest step, and the fitted coefficients (`fits` is {optimizer: {reward: Fit}}). A curve
    whose peak is its last point is ``censored``: the budget (largest n, last step or KL budget)
    ended it before gold turned, so its peak and its KL are lower bounds. The fall's
    interval needs per-prompt curves: it is given for optimizers that have rows in `by_prompt`."""
    rows = []
    per_prompt = set(by_prompt.optimizer) if by_prompt is not None and len(by_prompt) else set()
    for (opt, name), c in curves.groupby(["optimizer", "reward"], sort=False):
        c = c.sort_values("step")
        i = int(np.argmax(c["gold"].to_numpy()))
        f = fits.get(opt, {}).get(name)
        lo, hi = (np.nan, np.nan)
        if by_prompt is not None and opt in per_prompt:
            lo, hi = drop_interval(by_prompt, name, int(c["step"].iloc[i]), optimizer=opt)
        rows.append(
            dict(
                optimizer=opt,
                reward=name,
                params=int(c["reward_params"].iloc[0]),
                peak_gold=c["gold"].iloc[i],
                peak_sqrt_kl=c["sqrt_kl"].iloc[i],
                peak_step=int(c["step"].iloc[i]),
                final_gold=c["gold"].iloc[-1],
                gold_drop=c["gold"].iloc[i] - c["gold"].iloc[-1],
                censored=bool(i == len(c) - 1),
                drop_lo=lo,
                drop_hi=hi,
                final_proxy=c["proxy"].iloc[-1],
                final_kl=c["kl"].iloc[-1],
                alpha=f.alpha if f else np.nan,
                beta=f.beta if f else np.nan,
                fit_rmse=f.rmse if f else np.nan,
            )
        )
    return pd.DataFrame(rows)
