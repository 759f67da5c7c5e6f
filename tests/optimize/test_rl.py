import contextlib
import itertools
import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch

from rewardlab import progress
from rewardlab.config import StudyConfig
from rewardlab.errors import RewardLabError
from rewardlab.measure import kl_from_samples
from rewardlab.models import build_causal_lm
from rewardlab.policy import sample, token_logprobs
from rewardlab.rewards import guard as guard_mod
from rewardlab.rewards.guard import GuardedReward
from rewardlab.seeding import seed_everything
from rewardlab.specs import ModelSpec
from rewardlab.study import run_study
from rewardlab.tasks import build_tokenizer
from tests.conftest import tiny_config_dict

RL = dict(
    steps=4,
    measure_every=2,
    prompts_per_step=2,
    generations=4,
    measure_prompts=2,
    measure_samples=4,
)


def test_kl_estimator_against_the_exact_kl_of_two_enumerable_policies():
    # vocabulary {a, b} plus <eos>, at most 2 new tokens: 7 possible completions, enumerable
    tok = build_tokenizer(["a", "b"])
    seed_everything(0, "test")
    pi = build_causal_lm(ModelSpec(n_layer=1, n_embd=8, n_head=2), tok)
    with torch.no_grad():  # a peaked policy, far from a fresh reference
        for p in pi.parameters():
            p.add_(torch.randn_like(p))
    seed_everything(1, "test")
    ref = build_causal_lm(ModelSpec(n_layer=1, n_embd=8, n_head=2), tok)
    seqs = [""] + ["a", "b"] + [" ".join(p) for p in itertools.product("ab", repeat=2)]
    with torch.no_grad():
        lp, m = token_logprobs(pi, tok, ["a"] * 7, seqs, max_new_tokens=2)
        lq, mq = token_logprobs(ref, tok, ["a"] * 7, seqs, max_new_tokens=2)
    log_pi, log_ref = (lp * m).sum(-1).numpy(), (lq * mq).sum(-1).numpy()
    assert np.exp(log_pi).sum() == pytest.approx(1.0, abs=1e-5)  # the enumeration is complete
    exact = float(np.sum(np.exp(log_pi) * (log_pi - log_ref)))
    comps, logp = sample(
        pi, tok, "a", 20_000, max_new_tokens=2, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        lr, mr = token_logprobs(ref, tok, ["a"] * len(comps), comps, max_new_tokens=2)
    est = kl_from_samples(logp, (lr * mr).sum(-1).numpy())
    assert exact > 0.05
    assert abs(est.k1 - exact) < 4 * est.k1_se
    assert abs(est.k3 - exact) < 4 * est.k3_se


def test_guarded_reward_stop_skip_and_hang():
    def flaky(prompts, completions):
        return [math.nan if c == "bad" else 1.0 for c in completions]

    def raises(prompts, completions):
        if "bad" in completions:
            raise ValueError("cannot score")
        return [2.0] * len(completions)

    with pytest.raises(RewardLabError, match=r"reward 'flaky' returned nan .* sample 1 .*'bad'"):
        GuardedReward(flaky, "flaky")(["p", "p"], ["ok", "bad"])
    with pytest.raises(
        RewardLabError, match=r"reward 'raises' raised ValueError: cannot score on sample 2"
    ):
        GuardedReward(raises, "raises")(["p"] * 3, ["ok", "ok", "bad"])
    g = GuardedReward(raises, "raises", mode="skip")
    assert g(["p"] * 3, ["ok", "bad", "ok"]) == [2.0, None, 2.0] and g.skipped == 1
    g = GuardedReward(flaky, "flaky", mode="skip")
    assert g(["p"] * 2, ["bad", "bad"]) == [None, None] and g.skipped == 2


def rl_config(tmp_path, **rl):
    d = tiny_config_dict(tmp_path)
    d["optimizers"].append({"kind": "grpo", **RL, "rewards": ["rule", "rm-a", "rm-b/min"], **rl})
    return StudyConfig.model_validate(d)


def test_rl_runs_change_the_policy_and_write_measured_rows(tmp_path):
    cfg = rl_config(tmp_path)
    s = run_study(cfg, tmp_path / "run", log=lambda m: None)
    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    rl = curves[curves.optimizer == "grpo"]
    assert set(rl.reward) == {"rule", "rm-a", "rm-b/min"}
    assert sorted(rl[rl.reward == "rm-a"].step) == [0, 2, 4]
    first = rl[rl.step == 0]
    assert np.allclose(first.kl, 0, atol=1e-4)  # the initial policy has no KL to itself
    assert (rl[rl.step == 4].kl.abs() > 1e-4).all()
    for label in ("grpo-rule", "grpo-rm-a", "grpo-rm-b-min"):
        out = s.stages[label].path
        assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
            "step-00002",
            "step-00004",
        ]
        from safetensors.torch import load_file

        before = load_file(s.stages["policy"].path / "model.safetensors")
        after = load_file(out / "final" / "model.safetensors")
        assert any(not torch.equal(before[k], after[k]) for k in before)  # parameters changed
    assert (tmp_path / "run" / "rl_curves.png").is_file() and (
        tmp_path / "run" / "bon_vs_rl.png"
    ).is_file()
    fits = __import__("json").loads((tmp_path / "run" / "fits.json").read_text())
    assert set(fits["grpo"]) == {"rule", "rm-a", "rm-b/min"}


def test_a_killed_rl_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    cfg = rl_config(tmp_path, rewards=["rule"], steps=6)
    calls = {"n": 0}
    real = guard_mod.GuardedReward.__call__

    def dies_at_step_five(self, prompts, completions, **kw):
        calls["n"] += self.name == "rule"  # not the calls that score the pool
        # calls: measure@0, step 1, step 2, measure@2, step 3, step 4, measure@4, step 5: killed
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(self, prompts, completions, **kw)

    monkeypatch.setattr(guard_mod.GuardedReward, "__call__", dies_at_step_five)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, tmp_path / "run", log=lambda m: None)
    partial = [p for p in (tmp_path / "cache").iterdir() if p.name.endswith(".partial")]
    assert len(partial) == 1
    ckpts = sorted(p.name for p in (partial[0] / "trainer").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-2", "checkpoint-4"]
    done = pd.read_csv(partial[0] / "curve.csv")
    assert sorted(done.step) == [0, 2, 4]

    monkeypatch.setattr(guard_mod.GuardedReward, "__call__", real)
    counted = {"n": 0}

    def counting(self, prompts, completions, **kw):
        counted["n"] += self.name == "rule"
        return real(self, prompts, completions, **kw)

    monkeypatch.setattr(guard_mod.GuardedReward, "__call__", counting)
    notes = []
    progress.send_to(notes.append)
    try:
        with transformers_warnings() as warned:
            s = run_study(cfg, tmp_path / "run", log=lambda m: None)
    finally:
        progress.send_to(None)
    assert "[grpo rule] resuming from its checkpoint at step 4 of 6" in notes  # announced
    assert warned == []  # the tied lm_head is not reported missing from the checkpoint
    curve = pd.read_csv(s.stages["grpo-rule"].path / "curve.csv")
    assert sorted(curve.step) == [0, 2, 4, 6]
    pd.testing.assert_frame_equal(curve[curve.step <= 4].reset_index(drop=True), done)
    assert counted["n"] == 2 + 1  # steps 5 and 6, and the step-6 measurement: nothing redone
    assert not partial[0].exists()  # the work folder goes once the stage is finished


def test_a_reward_that_returns_nan_stops_rl_with_its_name(tmp_path, monkeypatch):
    from rewardlab.rewards import learned

    cfg = rl_config(tmp_path, rewards=["rm-a"])
    run_study(
        StudyConfig.model_validate({**cfg.model_dump(), "optimizers": [{"kind": "bon"}]}),
        tmp_path / "run0",
        log=lambda m: None,
    )
    orig = learned.LearnedReward.__call__

    def nan_for_one(self, prompts, completions, **kw):
        out = orig(self, prompts, completions, **kw)
        out[1] = float("nan")
        return out

    monkeypatch.setattr(learned.LearnedReward, "__call__", nan_for_one)
    with pytest.raises(
        RewardLabError, match=r"reward 'rm-a' returned nan .* on sample 1 .*on_reward_error"
    ):
        run_study(cfg, tmp_path / "run", log=lambda m: None)
    # finished stages are kept: a second try re-uses everything up to RL
    monkeypatch.setattr(learned.LearnedReward, "__call__", orig)
    s = run_study(cfg, tmp_path / "run", log=lambda m: None)
    assert {k for k, v in s.stages.items() if v.built} == {"grpo-rm-a"}


def test_a_reward_model_that_returns_nan_while_scoring_the_pool(tmp_path, monkeypatch):
    from rewardlab.rewards import learned

    orig = learned.LearnedReward.__call__

    def nan_for_one(self, prompts, completions, **kw):
        out = orig(self, prompts, completions, **kw)
        out[3] = float("nan")
        return out

    monkeypatch.setattr(learned.LearnedReward, "__call__", nan_for_one)
    d = tiny_config_dict(tmp_path)
    with pytest.raises(RewardLabError, match=r"reward 'rm-a' returned nan .* on sample 3"):
        run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda m: None)


def test_rloo_with_a_kl_penalty_builds_its_reference_from_the_policy_folder(tmp_path):
    # beta > 0 makes TRL load a reference model: from the saved policy folder, never a hub
    cfg = rl_config(tmp_path, rewards=["rule"], kind="rloo", beta=0.1)
    s = run_study(cfg, tmp_path / "run", log=lambda m: None)
    rl = pd.read_csv(tmp_path / "run" / "curves.csv").query("optimizer == 'rloo'")
    assert sorted(rl.step) == [0, 2, 4]
    log = __import__("json").loads((s.stages["rloo-rule"].path / "trainer_log.json").read_text())
    assert any("kl" in row for row in log)  # the trainer computed its KL term against the reference
    detail = pd.read_csv(tmp_path / "run" / "measurements.csv")
    assert detail.set_index("step").checkpoint.to_dict() == {
        0: "stages/policy",
        2: "stages/rloo-rule/checkpoints/step-00002",
        4: "stages/rloo-rule/checkpoints/step-00004",
    }
    for path in detail.checkpoint:
        assert (tmp_path / "run" / path / "model.safetensors").is_file()


@contextlib.contextmanager
def transformers_warnings():
    """The messages transformers logs at WARNING or above inside the block."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logging.getLogger("transformers").addHandler(handler)
    try:
        yield seen
    finally:
        logging.getLogger("transformers").removeHandler(handler)


def test_a_grpo_run_prints_no_transformers_warning(tmp_path):
    """The padding warning transformers raises inside TRL's cached decoding (a finished row's
    pad token at a decoding step, prompts unpadded) is dropped; nothing else is."""
    with transformers_warnings() as seen:
        d = tiny_config_dict(tmp_path)
        d["task"] = {"name": "topics"}  # unpadded prompts; rows finish early
        d["optimizers"] = [{"kind": "grpo", "rewards": ["rm-a"], "steps": 4, "measure_every": 2}]
        run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda m: None)
    assert seen == []
    # each measurement's per-prompt gold (the hacking test's units) averages to its gold: every
    # prompt has the same number of samples, and normalising is linear
    m = pd.read_csv(tmp_path / "run" / "measurements.csv")
    per_prompt = [np.array(v.split(), float) for v in m.gold_by_prompt]
    assert len({len(g) for g in per_prompt}) == 1 and len(per_prompt[0]) > 1
    np.testing.assert_allclose([g.mean() for g in per_prompt], m.gold, rtol=1e-6, atol=1e-7)
    assert "verdict" in pd.read_csv(tmp_path / "run" / "summary.csv")


def test_rl_to_a_kl_budget_stops_at_the_first_measurement_that_reaches_it(tmp_path):
    # the same run without a budget (deterministic): the budget is set to the KL it measured at
    # step 4, so the budgeted run must stop there, not at its cap of 8 steps
    free = run_study(rl_config(tmp_path, rewards=["rm-a"], steps=8), tmp_path / "free",
                     log=lambda m: None)  # fmt: skip
    c = pd.read_csv(free.stages["grpo-rm-a"].path / "curve.csv").set_index("step").kl
    assert c[4] > max(c[0], c[2]) > -1  # the KL grows over the first measurements
    budget = float(c[4])
    s = run_study(rl_config(tmp_path, rewards=["rm-a"], steps=8, kl_budget=budget),
                  tmp_path / "budget", log=lambda m: None)  # fmt: skip
    got = pd.read_csv(s.stages["grpo-rm-a"].path / "curve.csv")
    assert list(got.step) == [0, 2, 4]
    assert got.kl.iloc[-1] == pytest.approx(budget) and (got.kl.iloc[:-1] < budget).all()
    assert s.stages["grpo-rm-a"].hash != free.stages["grpo-rm-a"].hash
    # a curve whose peak is its last point is censored, read off curves.csv independently
    summary = pd.read_csv(tmp_path / "budget" / "summary.csv")
    curves = pd.read_csv(tmp_path / "budget" / "curves.csv")
    for r in summary.itertuples():
        g = curves[(curves.optimizer == r.optimizer) & (curves.reward == r.reward)]
        g = g.sort_values("step").gold.to_numpy()  # best-of-n's step is its n
        assert r.censored == (g.argmax() == len(g) - 1)
    # an early stop on a detector: KL acceleration at measurement t is the KL's rate r_t (nats
    # per step since the last measurement) over the mean of the earlier rates, defined once that
    # mean is positive; with the threshold just under the free run's first defined value, the
    # stopped run must end at that measurement and say why
    kl, steps = c.to_list(), c.index.to_list()
    r = [None] + [(kl[i] - kl[i - 1]) / (steps[i] - steps[i - 1]) for i in range(1, len(kl))]
    t = next(t for t in range(2, len(kl) - 1) if sum(r[1:t]) / (t - 1) > 0)
    rate = r[t] / (sum(r[1:t]) / (t - 1))
    first = steps[t]
    s = run_study(rl_config(tmp_path, rewards=["rm-a"], steps=8, early_stop={
        "detector": "kl_acceleration", "threshold": rate - 1e-9 * abs(rate)}),
        tmp_path / "alarm", log=lambda m: None)  # fmt: skip
    out = s.stages["grpo-rm-a"].path
    assert list(pd.read_csv(out / "curve.csv").step) == steps[: t + 1]
    why = json.loads((out / "stop.json").read_text())
    assert (why["reason"], why["detector"], why["step"]) == ("alarm", "kl_acceleration", first)
    assert why["statistic"] == pytest.approx(rate)
    assert not (free.stages["grpo-rm-a"].path / "stop.json").exists()  # ran all its steps


def test_an_unset_kl_budget_keys_the_rl_stage_as_before_it_existed():
    from rewardlab.cache import keyable
    from rewardlab.optimize.rl import Config

    assert "kl_budget" not in keyable(Config()) and "early_stop" not in keyable(Config())
    assert keyable(Config(kl_budget=3.0))["kl_budget"] == 3.0


def test_a_monitor_and_an_ensembles_disagreement_are_measured_on_the_same_samples(tmp_path):
    # RL against the worst case of a 2-member ensemble, its mean as the monitor: on every sample
    # mean − min = |s1 − s2| / 2, and the members' sd is |s1 − s2| / √2, so at every measurement
    # monitor − proxy = disagreement / √2
    s = run_study(rl_config(tmp_path, rewards=["rm-b/min"], monitor="rm-b/mean"),
                  tmp_path / "run", log=lambda m: None)  # fmt: skip
    c = pd.read_csv(s.stages["grpo-rm-b-min"].path / "curve.csv")
    assert len(c) == 3 and (c.disagreement > 0).all()
    np.testing.assert_allclose(c.monitor_raw - c.proxy_raw, c.disagreement / math.sqrt(2),
                               rtol=1e-5, atol=1e-7)  # fmt: skip
    detail = pd.read_csv(tmp_path / "run" / "measurements.csv")
    assert detail.monitor_raw.notna().all()  # carried into the run folder's measurements
    with pytest.raises(RewardLabError, match="divergence needs a monitor"):
        run_study(rl_config(tmp_path, rewards=["rm-a"], early_stop={"detector": "divergence"}),
                  tmp_path / "bad0", log=lambda m: None)  # fmt: skip
    with pytest.raises(RewardLabError, match=r"ensemble rewards; \['rm-a'\] are not"):
        run_study(rl_config(tmp_path, rewards=["rm-a", "rm-b/min"],
                            early_stop={"detector": "ensemble_disagreement"}),
                  tmp_path / "bad1", log=lambda m: None)  # fmt: skip
    with pytest.raises(RewardLabError, match="monitor 'nope'"):
        run_study(rl_config(tmp_path, rewards=["rm-a"], monitor="nope"), tmp_path / "bad",
                  log=lambda m: None)  # fmt: skip
