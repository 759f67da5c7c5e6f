"""Which offline score predicts hacking: Spearman against scipy on planted rewards, the bootstrap
interval's coverage, and the whole analysis on a finished run folder."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from rewardlab.report.hackability import hackability, predict, spearman_interval


def test_spearman_and_its_interval_against_scipy_and_a_known_correlation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    y = x + rng.normal(size=60)
    rho, lo, hi = spearman_interval(x, y, n_boot=1000)
    assert rho == pytest.approx(spearmanr(x, y).statistic)
    assert lo < rho < hi
    tied = np.round(x), np.round(y)  # ties: average ranks, as scipy
    assert spearman_interval(*tied, n_boot=10)[0] == pytest.approx(spearmanr(*tied).statistic)
    # coverage: for a bivariate normal with correlation r, Spearman's ρ_s = (6/π) asin(r/2)
    r, covered = 0.6, 0
    true = 6 / np.pi * np.arcsin(r / 2)
    for seed in range(100):
        g = np.random.default_rng(100 + seed).multivariate_normal([0, 0], [[1, r], [r, 1]], 80)
        _, lo, hi = spearman_interval(g[:, 0], g[:, 1], n_boot=400, seed=seed)
        covered += lo <= true <= hi
    assert covered >= 88  # 95% nominal; the percentile bootstrap runs a little short at n = 80


def test_predict_over_planted_rewards():
    rng = np.random.default_rng(1)
    n = 40
    fall = rng.normal(size=n)
    rewards = pd.DataFrame({
        "optimizer": "grpo", "fall": fall, "hacked": (fall > 0).astype(float),
        "peak_gold": -fall, "peak_kl": rng.random(n),
        "accuracy": -np.exp(fall),  # a decreasing function of the fall: ρ = −1 exactly
        "spearman": rng.normal(size=n), "spearman_top": rng.normal(size=n),
        "best_of_4": rng.normal(size=n), "epic_distance": fall + rng.normal(size=n),
        "error_tail_index": rng.normal(size=n), "error_kurtosis": np.full(n, 3.0),
    })  # fmt: skip
    t = predict(rewards, n_boot=200).set_index(["score", "target"])
    row = t.loc[("accuracy", "fall")]
    assert (row.spearman, row.lo, row.hi, row.n_rewards) == (-1.0, -1.0, -1.0, n)
    assert t.loc[("epic_distance", "fall"), "spearman"] == pytest.approx(
        spearmanr(rewards.epic_distance, fall).statistic
    )
    assert ("error_kurtosis", "fall") not in t.index  # constant: no correlation to speak of


def test_the_analysis_of_a_finished_run(finished_run, tmp_path):
    pr, det = hackability([finished_run], tmp_path)
    rewards = pd.read_csv(tmp_path / "hackability_rewards.csv")
    summary = pd.read_csv(finished_run / "summary.csv")
    learned = summary[summary.reward != "rule"]
    assert len(rewards) == len(learned)  # one row per optimizer and reward but the rule
    merged = rewards.merge(learned, on=["optimizer", "reward"], suffixes=("", "_s"))
    assert np.allclose(merged.peak_kl, merged.peak_sqrt_kl**2)
    assert (merged.hacked == (merged.verdict_s == "hacked")).all()
    offline = pd.read_csv(finished_run / "offline.csv").set_index("reward")
    assert np.allclose(
        rewards.set_index("reward").accuracy, offline.loc[rewards.reward, "accuracy"]
    )
    assert det.empty  # best-of-n only: no trained run to watch
    record = json.loads((tmp_path / "provenance.json").read_text())
    assert record["studies"] == 1 and (tmp_path / "predict_grid.png").stat().st_size > 1000
