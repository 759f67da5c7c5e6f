import math

import numpy as np
import pytest

from rewardlab.models import build_causal_lm
from rewardlab.rewards.guard import GuardedReward
from rewardlab.seeding import seed_everything
from rewardlab.specs import ModelSpec
from rewardlab.tasks import build_tokenizer

G = 4  # completions per prompt


def every_fourth_is_nan(prompts, completions, **kw):
    """Scores 0, 1, 2, ... by position in the batch; NaN at positions 1, 5, 9, ..."""
    return [math.nan if i % G == 1 else float(i) for i in range(len(prompts))]


def test_a_skipped_sample_carries_no_advantage_under_trls_grpo(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    tok = build_tokenizer(["a", "b", ":"])
    seed_everything(0, "test")
    build_causal_lm(ModelSpec(n_layer=1, n_embd=8, n_head=2), tok).save_pretrained(tmp_path / "p")
    tok.save_pretrained(tmp_path / "p")
    guarded = GuardedReward(every_fourth_is_nan, "flaky", mode="skip")
    args = GRPOConfig(output_dir=str(tmp_path / "t"), per_device_train_batch_size=2 * G,
                      num_generations=G, max_completion_length=3, max_steps=1, use_cpu=True,
                      bf16=False, report_to=[], save_strategy="no", logging_steps=1)  # fmt: skip
    trainer = GRPOTrainer(model=str(tmp_path / "p"), reward_funcs=guarded, args=args,
                          train_dataset=Dataset.from_dict({"prompt": ["a :", "b :"] * 4}),
                          processing_class=tok)  # fmt: skip
    trainer.train()
    assert guarded.skipped == 2
    adv = np.array(trainer._logs["advantages"]).reshape(-1, G)  # (groups, G), as TRL computed
    r = np.arange(2 * G, dtype=float).reshape(-1, G)
    for g in range(len(adv)):
        ok = np.arange(G) != 1
        want = (r[g, ok] - r[g, ok].mean()) / (r[g, ok].std(ddof=1) + 1e-4)  # the scored three
        assert adv[g, 1] == 0.0  # the skipped sample: no advantage
        assert adv[g, ok] == pytest.approx(want, rel=1e-5)  # and no say in the group's baseline


def test_stop_mode_names_the_sample_and_passes_keyword_arguments_through():
    seen = {}

    def fn(prompts, completions, answer, **kw):
        seen.update(answer=answer, **kw)
        if "x" in completions:
            raise ValueError("no x")
        return [1.0] * len(prompts)

    g = GuardedReward(fn, "kw")
    assert g(["p", "q"], ["a", "b"], answer=["1", "2"], trainer_state="s") == [1.0, 1.0]
    assert seen == {"answer": ["1", "2"], "trainer_state": "s"}
    with pytest.raises(Exception, match=r"reward 'kw' raised ValueError: no x on sample 1"):
        g(["p", "q"], ["a", "x"], answer=["1", "2"])
    assert seen["answer"] == ["2"]  # the one-by-one retry gives each sample its own column value
