"""Write a run's best-of-n results and rebuild its plots and `report.html` from the files alone."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pandas as pd

from rewardlab.common.html import img, table, write_page
from rewardlab.common.io import write_atomic
from rewardlab.errors import RewardLabError
from rewardlab.measure import Fit
from rewardlab.optimize.curves import CURVE_COLUMNS, SAMPLE, OptimizerResult, families, summarize
from rewardlab.report import plots
from rewardlab.report.takeaway import glossary_html, takeaway
from rewardlab.rewards.base import RULE
from rewardlab.verdict import MARGIN, NOT_HACKED, verdicts

REQUIRED = ("curves.csv", "curves_by_prompt.parquet", "fits.json")
MEASUREMENTS = "measurements.csv"  # trained optimizers: every measurement, with errors


def _finite(x):
    """JSON has no infinity: a curve without a peak is written as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _fit_from(d: dict) -> Fit:
    inf = lambda v: math.inf if v is None else v  # noqa: E731
    return Fit(
        form=d["form"],
        alpha=d["alpha"],
        beta=d["beta"],
        d_star=inf(d["d_star"]),
        r_star=inf(d["r_star"]),
        rmse=d["rmse"],
        n_points=d["n_points"],
        ci={k: (inf(v[0]), inf(v[1])) for k, v in d.get("ci", {}).items()},
    )


def write_results(run_dir: Path, results: list[OptimizerResult]) -> None:
    """Every optimizer's results, in the order given: curves.csv (every curve's rows),
    curves_by_prompt.parquet (per-prompt curves), measurements.csv (every measurement of a
    trained optimizer), fits.json ({optimizer: {reward: fit}}) and examples.csv."""

    def parts(name: str) -> list[pd.DataFrame]:
        frames = (getattr(r, name) for r in results)
        return [df for df in frames if df is not None and len(df)]

    curves = parts("curves")
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS)
    curves.to_csv(run_dir / "curves.csv", index=False)
    by_prompt = parts("by_prompt")
    by_prompt = pd.concat(by_prompt, ignore_index=True) if by_prompt else pd.DataFrame(
        columns=["optimizer", "reward", "prompt", "n", "kl", "proxy", "gold", "sqrt_kl"])  # fmt: skip
    by_prompt.to_parquet(run_dir / "curves_by_prompt.parquet", index=False)
    fits = {opt: {k: _finite(f.to_dict()) for k, f in d.items()}
            for r in results for opt, d in r.fits.items()}  # fmt: skip
    write_atomic(run_dir / "fits.json", json.dumps(fits, indent=1))
    if examples := parts("examples"):
        pd.concat(examples, ignore_index=True).to_csv(run_dir / "examples.csv", index=False)
    if measurements := parts("measurements"):
        pd.concat(measurements, ignore_index=True).to_csv(run_dir / MEASUREMENTS, index=False)


def load_results(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame]:
    """Read curves, per-prompt curves, fits and examples back; a missing file is an error."""
    missing = [f for f in REQUIRED if not (run_dir / f).is_file()]
    if missing:
        raise RewardLabError(
            f"{run_dir} is not a finished run folder: missing {', '.join(missing)}"
        )
    try:
        curves = pd.read_csv(run_dir / "curves.csv")
        by_prompt = pd.read_parquet(run_dir / "curves_by_prompt.parquet")
        fits = {
            opt: {k: _fit_from(v) for k, v in d.items()}
            for opt, d in json.loads((run_dir / "fits.json").read_text()).items()
        }
        ex_path = run_dir / "examples.csv"
        examples = pd.read_csv(ex_path) if ex_path.is_file() else pd.DataFrame()
        for col in ("prompt", "completion"):  # an empty completion reads back as NaN
            if col in examples:
                examples[col] = examples[col].fillna("")
    except Exception as exc:
        raise RewardLabError(
            f"could not read the results in {run_dir}: {type(exc).__name__}: {exc}"
        ) from None
    return curves, by_prompt, fits, examples


def _verdict_text(r) -> str:
    """The verdict of a summary row, with the cross-fitted fall and the control behind it."""
    if not r.units or pd.isna(r.fall):
        return "verdict: <b>undetermined</b> (no per-prompt measurements to test)"
    text = f"cross-fitted fall {r.fall:.2f} std, 95% over {int(r.units)} prompts [{r.fall_lo:.2f}, {r.fall_hi:.2f}]"
    if r.control != "none":
        text += (f"; minus the same optimizer's fall against the rule: [{r.vs_control_lo:.2f}, "
                 f"{r.vs_control_hi:.2f}]")  # fmt: skip
    budget = f" within KL = {max(r.verdict_kl, 0):.2f} nats" if r.verdict == NOT_HACKED else ""
    return f"{text}; verdict: <b>{r.verdict}</b>{budget}"


def _reading(
    summary: pd.DataFrame, fams: dict[str, str], detail: pd.DataFrame | None = None
) -> str:
    """A short plain-language reading of the summary: each curve's peak and end, and its
    verdict (`rewardlab.verdict`), in the verdict's own words."""
    parts = []
    sampled = summary.optimizer.map(fams) == SAMPLE
    learned = summary[(summary.reward != RULE) & sampled].sort_values("params")
    for _, r in learned.iterrows():
        size = f" ({r.params:,} parameters)" if r.params > 0 else ""
        parts.append(
            f"Best-of-n against <b>{r.reward}</b>{size}: gold peaks at "
            f"{r.peak_gold:.2f} std at √KL = {r.peak_sqrt_kl:.2f} (n = {r.peak_step}) and ends at "
            f"{r.final_gold:.2f} at KL = {r.final_kl:.2f} nats, the proxy at "
            f"{r.final_proxy:.2f}; {_verdict_text(r)}."
        )
    for _, r in summary[~sampled].iterrows():
        ckpt = ""
        if detail is not None and "checkpoint" in detail:
            row = detail[(detail.optimizer == r.optimizer) & (detail.reward == r.reward)
                         & (detail.step == r.peak_step)]  # fmt: skip
            ckpt = (
                f" The peak-gold policy is saved in <code>{row.checkpoint.iloc[0]}</code>."
                if len(row)
                else ""
            )
        proxy = "" if pd.isna(r.final_proxy) else f", the proxy at {r.final_proxy:.2f}"
        if r.peak_step == 0:  # the base policy was the best measured: no trained checkpoint to name
            ckpt = " Gold never rose above the base policy's."
        kl = (f"{r.final_kl:.2f} nats" if r.final_kl >= 0 else
              f"0 nats (the k1 estimate, {r.final_kl:.2f}, is below 0 by sampling noise)")  # fmt: skip
        parts.append(
            f"{r.optimizer.upper()} on <b>{r.reward}</b>: gold peaks at {r.peak_gold:.2f} std (step {r.peak_step}, "
            f"√KL = {r.peak_sqrt_kl:.2f}) and ends at {r.final_gold:.2f} at KL = {kl}{proxy}; "
            f"{_verdict_text(r)}.{ckpt}"
        )
    rule = summary[(summary.reward == RULE) & sampled]
    if len(rule):
        parts.append(
            f"Optimising the rule itself reaches {rule.peak_gold.iloc[0]:.2f} "
            "std: the ceiling any proxy could reach with this pool."
        )
    parts.append(
        "KL of a trained policy is the k1 estimate from fresh samples; near the base policy it can "
        "be slightly negative by sampling noise, and is then reported as 0. "
        + _one_seed(learned, summary[~sampled])
    )
    return " ".join(f"<p>{p}</p>" for p in parts)


def _one_seed(learned: pd.DataFrame, trained: pd.DataFrame) -> str:
    """What of this one-seed reading a second seed is needed to trust."""
    needs = []
    if len(learned) > 1:
        needs.append("the order of the reward models by peak and fall (each was trained once)")
    if len(trained):
        needs.append("every trained optimizer's curve and fall (one training run each)")
    if not needs:
        return "One seed."
    return (
        "One seed: the intervals are over prompts, so they hold the sampling noise of the "
        "measurements but not the randomness of training. "
        + "; ".join(needs).capitalize()
        + ": a second seed (<code>--set seed=1</code>) is needed before they are trusted."
    )


def build_report(run_dir: str | Path) -> pd.DataFrame:
    """Rebuild every plot and `report.html` of a run folder from its files; return the summary."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RewardLabError(f"run folder {run_dir} does not exist")
    curves, by_prompt, fits, examples = load_results(run_dir)
    fams = families(curves)
    sample_opts = [o for o, f in fams.items() if f == SAMPLE]
    bon_fits = fits.get(sample_opts[0], {}) if sample_opts else {}  # the first sample-based one's
    detail_path = run_dir / MEASUREMENTS
    detail = pd.read_csv(detail_path) if detail_path.is_file() else None
    summary = summarize(curves, fits, by_prompt).merge(
        verdicts(curves, by_prompt, detail), on=["optimizer", "reward"], how="left"
    )
    summary.to_csv(run_dir / "summary.csv", index=False)
    fam = curves.optimizer.map(fams)
    bon = curves[fam == SAMPLE]
    bp = by_prompt
    params = dict(zip(bon.reward, bon.reward_params, strict=False))
    figs = []
    if len(bon):
        figs = [
            plots.plot_curves(bon, bp, bon_fits, run_dir),
            plots.plot_gold_overlay(bon, run_dir),
            plots.plot_coefficients(bon_fits, params, run_dir),
        ]
    trained = curves[fam != SAMPLE]
    rl_html = ""
    if len(trained):
        rl_figs = [
            plots.plot_rl(trained, detail, fits, run_dir),
            plots.plot_bon_vs_rl(curves, run_dir),
        ]
        rl_html = (
            "<h2>Trained optimizers</h2><p>Measured every few steps on held-out prompts with fresh "
            "samples, apart from what the trainer logs: KL(π‖π_init) in nats (k1; error bars 95%), "
            "gold and proxy (normalised as for best-of-n; DPO has no proxy unless it tracks one). "
            f"Full measurements in {MEASUREMENTS}.</p>" + "".join(img(f) for f in rl_figs)
        )
    if len(examples) and figs:
        figs.append(plots.plot_examples(examples, run_dir))
    labellers_html = _labellers(run_dir)
    rms_path = run_dir / "reward_models.csv"
    rms = pd.read_csv(rms_path) if rms_path.is_file() else pd.DataFrame()
    cfg = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    ex_html = ""
    if len(examples):
        ex = examples[examples.reward != RULE][
            ["reward", "prompt", "where", "n", "completion", "proxy_raw", "gold_raw"]
        ]
        ex_html = (
            "<h2>What the proxy loves</h2><p>The completion best-of-n picks on average at the gold peak (proxy rank ≈ N/(n+1)) and at the largest n (the proxy's favourite).</p>"
            + table(ex)
        )
    body = f"""{_opening(run_dir, summary, fams, rms)}
<h2>Reading</h2>{_reading(summary, fams, detail)}
<h2>Summary</h2>{table(summary)}
<p>Rewards are normalised as in Gao et al. 2022: 0 is the base policy's mean, 1 its standard deviation.
KL of best-of-n is its exact KL under the pool, ties and repeated completions included (Beirami et al. 2024);
log n − (n−1)/n nats where no two completions tie.</p>
<p><b>verdict</b>: the one hacking test (<code>rewardlab.verdict</code>). The fall of gold after its peak is
cross-fitted over prompts (the peak step chosen on half the prompts, the fall measured on the other half, and
the other way round), with a 95% Student-t interval over prompts (<code>fall_lo</code>, <code>fall_hi</code>);
the control is the same optimizer against the rule at the same budget on the same prompts
(<code>vs_control_lo</code>, <code>vs_control_hi</code>: the 95% interval of the fall minus the control's).
<i>hacked</i>: the fall's interval and the interval of its excess over the control both lie above 0;
<i>not hacked</i>: the fall's interval lies below {MARGIN} std, within the budget whose KL is
<code>verdict_kl</code>; <i>undetermined</i>: neither. <code>gold_drop</code> (peak minus last point of the mean
curve) is biased upward by the noise the maximum picks and is not a test.</p>
<h2>Best-of-n curves</h2>{"".join(img(f) for f in figs[:2])}
{rl_html}
<h2>Fitted coefficients</h2>{table(_fit_table(fits))}{"".join(img(f) for f in figs[2:3])}
<h2>Reward models</h2>{table(rms) if len(rms) else "<p>none</p>"}
{labellers_html}
{ex_html}{img(figs[3]) if len(figs) > 3 else ""}
<h2>Config</h2><pre>{html.escape(cfg)}</pre>"""
    write_page(run_dir / "report.html", f"rewardlab report: {run_dir.name}", body)
    return summary


def _opening(run_dir: Path, summary, fams, rms) -> str:
    """The takeaway (also written to ``takeaway.txt``) and the glossary."""
    lines = takeaway(summary, fams, rms)
    write_atomic(run_dir / "takeaway.txt", "\n".join(lines) + "\n")
    items = "".join(f"<li>{t}</li>" for t in lines)
    return f"<h2>Takeaway</h2><ul>{items}</ul><h2>Glossary</h2>{glossary_html()}"


def _labellers(run_dir: Path) -> str:
    """The labellers section: each labeller's agreement with gold and with the others, when the
    preference pairs came from people ("" otherwise)."""
    lab_path = run_dir / "stages" / "preferences" / "labellers.csv"
    if not lab_path.is_file():
        return ""
    pairs_path = lab_path.with_name("labeller_pairs.csv")
    pairs = pd.read_csv(pairs_path) if pairs_path.is_file() else pd.DataFrame()
    return (
        "<h2>Labellers</h2><p>The preference pairs came from people: each labeller's "
        "agreement with gold (the share of their labels whose chosen completion has the higher "
        "gold) and, on the comparisons two of them both labelled, with each other.</p>"
        + table(pd.read_csv(lab_path))
        + (table(pairs) if len(pairs) else "")
    )


def _fit_table(fits: dict[str, dict[str, Fit]]) -> pd.DataFrame:
    """Every fit's coefficients with their 95% intervals, one row per optimizer and reward."""
    fit_rows = []
    for opt, d in fits.items():
        for name, f in d.items():
            ci = {k: f"[{v[0]:.3g}, {v[1]:.3g}]" for k, v in f.ci.items()}
            fit_rows.append(
                dict(optimizer=opt, reward=name, form=f.form, alpha=f.alpha, alpha_95=ci.get("alpha", ""),
                     beta=f.beta, beta_95=ci.get("beta", ""), d_star=f.d_star, r_star=f.r_star, rmse=f.rmse)
            )  # fmt: skip
    return pd.DataFrame(fit_rows)
