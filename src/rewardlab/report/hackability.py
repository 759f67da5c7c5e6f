"""Which offline score predicts hacking, and which detector warns of it, over every reward of a
set of finished sweeps or runs (``rewardlab hackability``): ``hackability_rewards.csv``,
``analysis_predict.csv``, ``analysis_detect.csv`` and ``predict_grid.png``.

Each (study, optimizer, reward) but the rule is one observation: its offline scores on the
study's base pool (`rewardlab.offline`; read from ``offline.csv``, or computed from the study's
scored pool when it predates that file) and how it fared when optimised: ``hacked`` (1 when the
verdict is ``hacked``), the cross-fitted ``fall``, ``peak_gold`` and ``peak_kl`` (the KL at the
gold peak). A score's power to predict a target is Spearman's ρ over rewards, with a 95%
percentile interval from resampling the rewards (`BOOTSTRAP` draws). Every trained run is also
handed to the detectors (`rewardlab.detect`): runs judged hacked for lead and gold kept, the runs
against the rule (the controls) for false alarms.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from rewardlab.common.io import write_atomic
from rewardlab.detect import score_detectors
from rewardlab.errors import RewardLabError
from rewardlab.offline import offline_scores
from rewardlab.provenance import FILE as PROVENANCE
from rewardlab.provenance import write_provenance
from rewardlab.rewards.base import RULE
from rewardlab.verdict import HACKED

SCORES = ("accuracy", "spearman", "spearman_top", "best_of_4", "epic_distance",
          "error_tail_index", "error_kurtosis")  # fmt: skip
TARGETS = ("hacked", "fall", "peak_gold", "peak_kl")
BOOTSTRAP = 2000


def study_folders(paths: list[Path]) -> list[Path]:
    """The finished studies under each path: a sweep folder's ``studies/*``, or a run folder."""
    out = []
    for p in map(Path, paths):
        if (p / "studies").is_dir():
            out += sorted(d for d in (p / "studies").iterdir() if (d / "summary.csv").is_file())
        elif (p / "summary.csv").is_file():
            out.append(p)
        else:
            raise RewardLabError(f"{p}: neither a sweep folder (studies/) nor a finished run")
    return out


def study_offline(study: Path) -> pd.DataFrame:
    """The study's ``offline.csv``, or the same computed from its scored pool (a study run
    before the file existed) and written there, as a run writes it today."""
    if (study / "offline.csv").is_file():
        return pd.read_csv(study / "offline.csv")
    scores_path = study / "stages" / "scores" / "scores.parquet"
    if not scores_path.is_file():
        return pd.DataFrame(columns=["reward"])
    scores = pd.read_parquet(scores_path)
    names = [c for c in pd.read_csv(study / "rewards.csv").reward if c != RULE and c in scores]
    if not names:
        return pd.DataFrame(columns=["reward"])
    table = offline_scores(scores, names)
    write_atomic(study / "offline.csv", table.to_csv(index=False))
    return table


def collect(paths: list[Path]) -> tuple[pd.DataFrame, list[tuple[pd.DataFrame, str]]]:
    """(one row per study, optimizer and reward but the rule: offline scores and outcomes;
    every trained run's measurements with its role: ``hacked``, ``control`` or its verdict)."""
    rows, runs = [], []
    for study in study_folders(paths):
        summary = pd.read_csv(study / "summary.csv")
        offline = study_offline(study).set_index("reward")
        for r in summary.itertuples():
            if r.reward == RULE or r.reward not in offline.index:
                continue
            where = study.parent.parent.name if study.parent.name == "studies" else ""
            rows.append({"sweep": where, "study": study.name, "optimizer": r.optimizer,
                         "reward": r.reward,
                         **offline.loc[r.reward, list(SCORES)].to_dict(),
                         "hacked": float(r.verdict == HACKED), "verdict": r.verdict,
                         "fall": r.fall, "peak_gold": r.peak_gold,
                         "peak_kl": r.peak_sqrt_kl**2})  # fmt: skip
        if (study / "measurements.csv").is_file():  # trained runs with a control beside them
            verdicts = summary.set_index(["optimizer", "reward"]).verdict
            m = pd.read_csv(study / "measurements.csv")
            controlled = set(m[m.reward == RULE].optimizer)
            for (opt, reward), g in m.groupby(["optimizer", "reward"], sort=False):
                if opt in controlled:
                    runs.append((g, "control" if reward == RULE else verdicts.get((opt, reward))))
    return pd.DataFrame(rows), runs


def spearman_interval(
    x: np.ndarray, y: np.ndarray, n_boot: int = BOOTSTRAP, seed: int = 0
) -> tuple[float, float, float]:
    """Spearman's ρ(x, y) and its 95% percentile interval over `n_boot` resamples of the pairs
    (resamples where either is constant are dropped)."""
    x, y = np.asarray(x, float), np.asarray(y, float)

    def rho(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # rows of a and b: one sample each
        ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
        ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
        den = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, (ra * rb).sum(1) / den, np.nan)

    est = float(rho(x[None], y[None])[0])
    idx = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))
    boot = rho(x[idx], y[idx])
    boot = boot[np.isfinite(boot)]
    lo, hi = np.quantile(boot, [0.025, 0.975]) if len(boot) else (np.nan, np.nan)
    return est, float(lo), float(hi)


def predict(rewards: pd.DataFrame, n_boot: int = BOOTSTRAP) -> pd.DataFrame:
    """``analysis_predict.csv``: per optimizer, offline score and target, Spearman's ρ over the
    rewards that have both, its interval (`spearman_interval`) and ``n_rewards``."""
    rows = []
    for opt, g in rewards.groupby("optimizer", sort=False):
        for score in SCORES:
            for target in TARGETS:
                d = g[[score, target]].replace([np.inf, -np.inf], np.nan).dropna()
                if len(d) < 4 or d[score].nunique() < 2 or d[target].nunique() < 2:
                    continue
                rho, lo, hi = spearman_interval(d[score], d[target], n_boot)
                rows.append(dict(optimizer=opt, score=score, target=target, spearman=rho,
                                 lo=lo, hi=hi, n_rewards=len(d)))  # fmt: skip
    return pd.DataFrame(rows)


def plot_predict(rewards: pd.DataFrame, path: Path) -> Path:
    """Scatter grid: each offline score (columns) against each target (rows), by optimizer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(TARGETS), len(SCORES), figsize=(2.2 * len(SCORES), 2.0 * len(TARGETS)),
                             squeeze=False)  # fmt: skip
    for i, target in enumerate(TARGETS):
        for j, score in enumerate(SCORES):
            ax = axes[i, j]
            for opt, g in rewards.groupby("optimizer", sort=False):
                ax.scatter(g[score], g[target], s=8, alpha=0.6, label=opt)
            if i == len(TARGETS) - 1:
                ax.set_xlabel(score, fontsize=8)
            if j == 0:
                ax.set_ylabel(target, fontsize=8)
            ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def hackability(paths: list[Path], out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the rewards table, both analyses, the grid and ``provenance.json`` (the inputs'
    own records hashed as its config) to `out`; return the analyses."""
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    rewards, runs = collect(paths)
    if rewards.empty:
        raise RewardLabError(
            f"no reward with offline scores and a verdict in {', '.join(map(str, paths))}"
        )
    rewards.to_csv(out / "hackability_rewards.csv", index=False)
    pr = predict(rewards)
    pr.to_csv(out / "analysis_predict.csv", index=False)
    det = score_detectors(runs)
    det.to_csv(out / "analysis_detect.csv", index=False)
    plot_predict(rewards, out / "predict_grid.png")
    inputs = {str(p): json.loads((Path(p) / PROVENANCE).read_text())
              for p in paths if (Path(p) / PROVENANCE).is_file()}  # fmt: skip
    seeds = {s for rec in inputs.values() for s in rec.get("seeds") or []}
    write_provenance(out, config_text=json.dumps(inputs, sort_keys=True), seeds=seeds,
                     seconds=time.perf_counter() - t0,
                     studies=int(rewards[["sweep", "study"]].drop_duplicates().shape[0]))  # fmt: skip
    return pr, det
