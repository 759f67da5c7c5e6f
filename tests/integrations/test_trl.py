"""GoldTracker on a plain TRL GRPOTrainer (β = 0) training a lab policy: its KL and gold agree
with an independent Monte Carlo estimate from transformers' own sampler, and `rewardlab report`
reads its folder."""

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

from rewardlab.errors import RewardLabError
from rewardlab.integrations.trl import GoldTracker
from rewardlab.optimize.curves import CURVE_COLUMNS
from rewardlab.report.build import build_report
from rewardlab.tasks import load_task

TASK = load_task("sorting", {"min_len": 3, "max_len": 4})
LIMIT = 8


def proxy(prompts, completions, **kw):
    """Longer is better: a proxy a GRPO step can push on."""
    return [float(len(c.split())) for c in completions]


def gold(prompts, completions, **kw):
    return TASK.gold(prompts, completions)


def independent_estimate(model, init, tok, prompts, n):
    """KL k1 and gold from transformers' generate and a plain forward pass (standard errors
    over prompts)."""
    banned = sorted(
        {tok.pad_token_id, tok.bos_token_id, tok.unk_token_id} - {tok.eos_token_id, None}
    )
    torch.manual_seed(123)
    kl_p, gold_p, ent_p = [], [], []
    for p in prompts:
        enc = tok([p] * n, return_tensors="pt", add_special_tokens=False)
        L = enc.input_ids.shape[1]
        with torch.no_grad():
            seq = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                 max_new_tokens=LIMIT, suppress_tokens=banned,
                                 pad_token_id=tok.pad_token_id)  # fmt: skip
            comp = seq[:, L:]
            # tokens after the first <eos> are padding
            is_eos = (comp == tok.eos_token_id).int()
            keep = (is_eos.cumsum(1) - is_eos) == 0
            lp = []
            for m in (model, init):
                logits = m(seq).logits[:, L - 1 : -1].clone()
                logits[..., banned] = -float("inf")
                tok_lp = logits.log_softmax(-1).gather(-1, comp[..., None])[..., 0]
                lp.append(torch.where(keep, tok_lp, 0.0).sum(1))  # padding may be -inf
        kl_p.append((lp[0] - lp[1]).mean().item())
        ent_p.append((-lp[0]).mean().item())
        texts = [
            tok.decode(c[k], skip_special_tokens=True).strip()
            for c, k in zip(comp, keep, strict=True)
        ]
        gold_p.append(np.mean(TASK.gold([p] * n, texts)))
    se = lambda v: np.std(v, ddof=1) / np.sqrt(len(v))  # noqa: E731
    return np.mean(kl_p), se(kl_p), np.mean(gold_p), se(gold_p), np.mean(ent_p), se(ent_p)


@pytest.fixture(scope="module")
def trained(finished_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked")
    policy = finished_run / "stages" / "policy"
    tok = AutoTokenizer.from_pretrained(policy)
    model = AutoModelForCausalLM.from_pretrained(policy)
    rng = np.random.default_rng(0)
    train = TASK.prompts(16, rng)
    held_out = TASK.prompts(12, np.random.default_rng(1))
    tracker = GoldTracker(gold=gold, prompts=held_out, every=3, out=out / "track", proxy=proxy,
                          samples=8, max_new_tokens=LIMIT, reward="length", seed=0)  # fmt: skip
    args = GRPOConfig(output_dir=str(out / "trainer"), per_device_train_batch_size=8,
                      num_generations=4, max_completion_length=LIMIT, learning_rate=5e-2,
                      beta=0.0, max_steps=6, logging_steps=1, bf16=False, use_cpu=True,
                      save_strategy="no", report_to=[], disable_tqdm=True, seed=0)  # fmt: skip
    trainer = GRPOTrainer(model=model, reward_funcs=proxy, args=args, processing_class=tok,
                          train_dataset=Dataset.from_dict({"prompt": train}), callbacks=[tracker])  # fmt: skip
    trainer.train()
    init = AutoModelForCausalLM.from_pretrained(policy).eval()
    return out / "track", trainer.model.eval(), init, tok, held_out


def test_curves_follow_the_lab_schema_at_each_measurement(trained):
    folder = trained[0]
    curves = pd.read_csv(folder / "curves.csv")
    assert list(curves.columns) == CURVE_COLUMNS
    assert curves.step.tolist() == [0, 3, 6] and set(curves.optimizer) == {"grpo"}
    first = curves.iloc[0]
    assert abs(first.kl) < 1e-4 and first.gold == pytest.approx(0, abs=1e-9)
    ref = pd.read_parquet(folder / "reference.parquet")
    assert first.gold_raw == pytest.approx(ref.gold.mean())
    assert curves.kl.iloc[-1] > 0.05  # beta = 0: the trainer reports no KL, the tracker does
    summary = build_report(folder)
    assert (folder / "report.html").is_file() and "grpo" in set(summary.optimizer)


def test_kl_and_gold_agree_with_an_independent_estimate(trained):
    folder, model, init, tok, prompts = trained
    last = pd.read_csv(folder / "measurements.csv").iloc[-1]
    kl, kl_se, g, g_se, ent, ent_se = independent_estimate(model, init, tok, prompts, n=32)
    assert abs(last.kl - kl) < 4 * np.hypot(last.kl_se, kl_se), (last.kl, kl)
    assert abs(last.entropy - ent) < 4 * np.hypot(last.entropy_se, ent_se), (last.entropy, ent)
    assert abs(last.gold_raw - g) < 4 * np.hypot(last.gold_se, g_se), (last.gold_raw, g)


def test_a_resume_without_init_model_is_refused(tmp_path):
    tr = GoldTracker(
        gold=gold, prompts=["sort 1 2 :", "sort 3 1 :"], out=tmp_path, max_new_tokens=4
    )

    class State:
        global_step = 5

    with pytest.raises(RewardLabError, match="resumes at step 5"):
        tr.on_train_begin(
            None, State(), None, model=torch.nn.Linear(1, 1), processing_class=object()
        )


def _grpo(policy, out, callbacks, steps=6):
    tok = AutoTokenizer.from_pretrained(policy)
    model = AutoModelForCausalLM.from_pretrained(policy)
    args = GRPOConfig(output_dir=str(out), per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=LIMIT, learning_rate=5e-2, beta=0.0, max_steps=steps,
                      logging_steps=1, bf16=False, use_cpu=True, save_strategy="no",
                      report_to=[], disable_tqdm=True, seed=0)  # fmt: skip
    train = TASK.prompts(16, np.random.default_rng(0))
    trainer = GRPOTrainer(model=model, reward_funcs=proxy, args=args, processing_class=tok,
                          train_dataset=Dataset.from_dict({"prompt": train}), callbacks=callbacks)  # fmt: skip
    trainer.train()
    return trainer


def test_hacking_alarm_stops_a_trl_trainer_on_its_own_logs(finished_run, tmp_path):
    """A watch that never fires records the length drift, checked by hand against the trainer's
    log; the same (deterministic) run with the threshold at the first drift past 0 stops there."""
    import json

    from rewardlab.integrations.trl import HackingAlarm

    policy = finished_run / "stages" / "policy"
    watch = HackingAlarm("length_drift", threshold=float("inf"))
    free = _grpo(policy, tmp_path / "free", [watch])
    logged = {h["step"]: h["completions/mean_length"] for h in free.state.log_history
              if "completions/mean_length" in h}  # fmt: skip
    first = min(logged)
    by_hand = {s: abs(v - logged[first]) / logged[first] for s, v in logged.items()}
    assert watch.statistics == pytest.approx(by_hand) and watch.alarm is None
    step = next((s for s in sorted(by_hand) if by_hand[s] > 0 and s < max(by_hand)), None)
    assert step is not None, "the length never drifted before the last step"
    alarm = HackingAlarm("length_drift", threshold=by_hand[step] * (1 - 1e-9), out=tmp_path / "a")
    stopped = _grpo(policy, tmp_path / "stopped", [alarm])
    assert stopped.state.global_step == step
    assert json.loads((tmp_path / "a" / "stop.json").read_text())["step"] == step
    with pytest.raises(RewardLabError, match="gold audit needs GoldTracker"):
        HackingAlarm("gold_audit")
