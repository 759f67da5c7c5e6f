import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_measure_example_runs_as_written(tmp_path, monkeypatch):
    block = re.search(
        r"```python\n(import numpy as np\nfrom rewardlab.measure.*?)```", README.read_text(), re.S
    )
    rng = np.random.default_rng(0)
    gold = rng.normal(size=(40, 256))
    proxy = gold + rng.normal(size=gold.shape)  # a noisy proxy: gold rises with n
    monkeypatch.chdir(tmp_path)
    np.save("proxy.npy", proxy)
    np.save("gold.npy", gold)
    env: dict = {}
    exec(block.group(1), env)
    G, curve, fit = env["G"], env["curve"], env["fit"]
    assert G[:, 0].mean() == pytest.approx(0.0, abs=1e-9)  # normalised: the base policy scores 0
    assert np.allclose(G.mean(0), curve.gold.to_numpy())  # per-prompt curves average to the curve
    # the fit is least squares of the mean curve on (d, -d^2), solved here independently
    d = np.sqrt(curve.kl.to_numpy())
    (a, b), *_ = np.linalg.lstsq(np.stack([d, -(d**2)], 1), G.mean(0), rcond=None)
    assert (fit.alpha, fit.beta) == pytest.approx((a, b), rel=1e-6)
