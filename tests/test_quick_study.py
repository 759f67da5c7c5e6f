"""The default study end to end (about 5 minutes: run with `pytest -m slow`).

CI runs the same stages on a tiny config (tests/test_study.py); this checks the headline result.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rewardlab.config import load_config
from rewardlab.study import run_study


def _bon_kl_with_ties(gold: np.ndarray, n: int) -> float:
    """KL(best-of-n ‖ pool) for one prompt's samples, ties broken uniformly: value j (empirical
    CDF F_j, probability p_j) gets mass F_j^n − F_{j−1}^n, so KL = Σ_j q_j log(q_j / p_j)."""
    values, counts = np.unique(gold, return_counts=True)
    p = counts / counts.sum()
    cdf = np.cumsum(p)
    q = cdf**n - np.concatenate([[0.0], cdf[:-1]]) ** n
    keep = q > 0
    return float(np.sum(q[keep] * np.log(q[keep] / p[keep])))


def check_default_study(run: Path) -> None:
    """The default study's headline, as issue 28 states it: every row has a verdict; GRPO against
    the rule is not hacked; held-out accuracy rises with reward-model size; best-of-n's KL for the
    rule is the KL of best-of-n under the pool with its ties."""
    summary = pd.read_csv(run / "summary.csv")
    assert summary.verdict.isin(["hacked", "not hacked", "undetermined"]).all()
    grpo_rule = summary.query("optimizer == 'grpo' and reward == 'rule'")
    assert len(grpo_rule) == 1 and grpo_rule.verdict.iloc[0] != "hacked"
    rms = pd.read_csv(run / "reward_models.csv").set_index("stage")
    acc = [rms.test_accuracy[f"rm-{n}"] for n in ("rm-xs", "rm-s", "rm-m")]
    assert acc[0] < acc[1] < acc[2], acc
    params = summary.query("optimizer == 'bon'").set_index("reward").params
    assert params["rm-xs"] < params["rm-s"] < params["rm-m"]
    curves = pd.read_csv(run / "curves.csv").query("optimizer == 'bon' and reward == 'rule'")
    pool = pd.read_parquet(run / "stages" / "pool-bon" / "pool.parquet")
    n = int(curves.step.max())
    expected = np.mean(
        [_bon_kl_with_ties(g.gold.to_numpy(), n) for _, g in pool.groupby("prompt_id")]
    )
    got = curves.set_index("step").kl[n]
    assert got == pytest.approx(expected, rel=1e-6)
    assert got < np.log(n) - (n - 1) / n - 1.0  # ties make it well under the formula's 5.93


@pytest.mark.slow
def test_quick_study_tells_the_story_its_issue_asks_for(tmp_path):
    cfg = load_config("studies/quick.yaml", [f"cache_dir={tmp_path / 'cache'}"])
    run_study(cfg, tmp_path / "run", log=lambda m: None)
    check_default_study(tmp_path / "run")
    curves = pd.read_csv(tmp_path / "run" / "curves.csv").query("optimizer == 'bon'")
    assert curves.kl.max() >= 5.9
    proxy = curves[curves.reward == "rm-xs"].sort_values("step").proxy.to_numpy()
    assert np.all(np.diff(proxy) >= -1e-9)  # best-of-n's expected max rises with n
    # Whether a larger reward model peaks later or higher is a comparison one seed cannot make
    # (it flipped with float-level changes, docs/RESULTS.md); studies/rm-scaling.yaml measures
    # it over 5 seeds.


def test_the_tiny_preset_runs_the_default_studys_shape(tmp_path):
    """studies/tiny.yaml (about 15 s): every optimizer against the rewards it names, a report."""
    import subprocess
    import sys

    out = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, "-m", "rewardlab.cli", "run", "studies/tiny.yaml", "--out", str(out),
         "--set", f"cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    rows = set(pd.read_csv(out / "summary.csv")[["optimizer", "reward"]].itertuples(index=False))
    expected = {("bon", r) for r in ("rule", "rm-xs", "rm-s", "rm-m")}
    expected |= {("grpo", r) for r in ("rm-xs", "rm-m", "rule")} | {("dpo", "preferences")}
    assert {tuple(r) for r in rows} == expected
    assert (out / "report.html").is_file() and (out / "config.yaml").is_file()
    assert pd.read_csv(out / "curves.csv").query("optimizer == 'bon'").step.max() == 64
    # the terminal: progress names each reward model; the summary is split by family
    for name in ("rm-xs", "rm-s", "rm-m"):
        assert f"[reward_model {name}] building ..." in p.stdout
    assert "rm-rm" not in p.stdout
    head, rest = p.stdout.split("\nbest-of-n:\n", 1)
    bon, rest = rest.split("\ntrained policies:\n", 1)
    trained = rest.split("\n\n", 1)[0]
    assert [ln.split()[0] for ln in bon.strip().splitlines()[1:]] == ["bon"] * 4
    assert sorted(ln.split()[0] for ln in trained.strip().splitlines()[1:]) == [
        "dpo", "grpo", "grpo", "grpo"]  # fmt: skip
    assert "verdict" in bon and "verdict" in trained
    assert "alpha, beta: the fit of Gao et al. 2022" in p.stdout.replace("\n", " ")
