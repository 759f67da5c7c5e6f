import copy

import numpy as np
import pytest

from rewardlab.optimize import measurement
from rewardlab.optimize.measurement import measure_policy
from rewardlab.specs import SamplingConfig
from rewardlab.tasks import load_task
from tests.test_policy import small_policy


def test_at_step_zero_pi_init_is_not_run_again_and_the_kl_is_exactly_zero(monkeypatch):
    task = load_task("sorting")
    model, tok = small_policy(task)
    init = copy.deepcopy(model)  # the same weights: π_init before the first step
    prompts = task.prompts(4, np.random.default_rng(0))
    kw = dict(tok=tok, task=task, sampling=SamplingConfig(), prompts=prompts, samples=8,
              reward=None, seed=0, step=0)  # fmt: skip
    scored = measure_policy(model, init, **kw)  # π_init's own pass over the samples
    calls = {"n": 0}
    real = measurement.sequence_logprobs

    def counted(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(measurement, "sequence_logprobs", counted)
    once = measure_policy(model, init, init_is_policy=True, **kw)
    assert calls["n"] == 0
    assert once["kl"] == 0.0 and once["kl_k3"] == 0.0 and once["kl_se"] == 0.0
    assert abs(scored["kl"]) < 1e-5  # what the second pass found: the same model, float noise
    for k in ("gold_raw", "gold_se", "gold_by_prompt", "entropy", "mean_length", "example"):
        assert once[k] == scored[k]
    measure_policy(model, init, **{**kw, "step": 5})
    assert calls["n"] == 1  # after step 0 π_init scores the samples


@pytest.mark.parametrize("step", [0, 5])
def test_the_callback_skips_the_second_pass_only_at_step_zero(tmp_path, monkeypatch, step):
    seen = {}
    monkeypatch.setattr(measurement, "measure_policy",
                        lambda model, **kw: seen.update(kw) or {"step": kw["step"]})  # fmt: skip
    m = measurement.Measure(5, tmp_path / "curve.csv")
    m._record(_Model(), step)
    assert seen["init_is_policy"] is (step == 0)


class _Model:
    def train(self):
        return self
