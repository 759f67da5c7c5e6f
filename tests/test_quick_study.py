"""The default study end to end (about 10 minutes: run with `pytest -m slow`).

CI runs the same stages on a tiny config (tests/test_study.py); this checks the headline result.
"""

import numpy as np
import pandas as pd
import pytest

from rewardlab.config import load_config
from rewardlab.study import run_study


@pytest.mark.slow
def test_quick_study_shows_overoptimization(tmp_path):
    cfg = load_config("studies/quick.yaml", [f"cache_dir={tmp_path / 'cache'}"])
    study = run_study(cfg, tmp_path / "run", log=lambda m: None)
    s = study.summary.query("optimizer == 'bon'").set_index("reward")
    curves = pd.read_csv(tmp_path / "run" / "curves.csv").query("optimizer == 'bon'")
    assert curves.kl.max() >= 5.9
    # against the smallest reward model, gold peaks and falls by >= 0.1 std while proxy rises
    assert s.loc["rm-xs", "gold_drop"] >= 0.1
    proxy = curves[curves.reward == "rm-xs"].sort_values("step").proxy.to_numpy()
    assert np.all(np.diff(proxy) >= -1e-9)
    # a larger reward model peaks later or higher
    big = s.loc["rm-m"]
    assert (
        big.peak_gold > s.loc["rm-xs", "peak_gold"]
        or big.peak_sqrt_kl > s.loc["rm-xs", "peak_sqrt_kl"]
    )
