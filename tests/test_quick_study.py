"""The default study end to end (about 5 minutes: run with `pytest -m slow`).

CI runs the same stages on a tiny config (tests/test_study.py); this checks the headline result.
"""

import numpy as np
import pandas as pd
import pytest

from rewardlab.config import load_config
from rewardlab.study import run_study


@pytest.mark.slow
def test_quick_study_shows_overoptimization_under_rl_and_none_against_the_rule(tmp_path):
    cfg = load_config("studies/quick.yaml", [f"cache_dir={tmp_path / 'cache'}"])
    run_study(cfg, tmp_path / "run", log=lambda m: None)
    curves = pd.read_csv(tmp_path / "run" / "curves.csv").query("optimizer == 'bon'")
    assert curves.kl.max() >= 5.9
    proxy = curves[curves.reward == "rm-xs"].sort_values("step").proxy.to_numpy()
    assert np.all(np.diff(proxy) >= -1e-9)  # best-of-n's expected max rises with n
    # GRPO against the smallest reward model: gold peaks, then falls by >= 1 std of the base
    # policy's gold while the proxy ends above where it was at gold's peak (docs/RESULTS.md)
    m = pd.read_csv(tmp_path / "run" / "measurements.csv")
    xs = m.query("optimizer == 'grpo' and reward == 'rm-xs'").sort_values("step")
    peak = xs.loc[xs.gold.idxmax()]
    assert peak.gold - xs.gold.iloc[-1] >= 1.0
    assert xs.proxy.iloc[-1] > peak.proxy
    # against the rule there is nothing to hack: the last gold is within 0.2 std of its peak
    rule = m.query("optimizer == 'grpo' and reward == 'rule'")
    assert rule.gold.max() - rule.sort_values("step").gold.iloc[-1] <= 0.2
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
