import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from rewardlab.config import StudyConfig
from rewardlab.errors import RewardLabError
from rewardlab.study import run_study
from rewardlab.tasks import TaskConfig, load_task
from rewardlab.tasks.base import build_tokenizer
from rewardlab.tasks.neural import REFERENCE
from rewardlab.tasks.topics import Topics
from tests.conftest import tiny_config_dict

SMALL = dict(n_layer=1, n_embd=16, n_head=2, init_std=0.1, teacher_seed=3)


def one_at_a_time(model, tok, prompts, comps) -> np.ndarray:
    """The teacher on each sample alone, no padding: the independent reading of t(x, y)."""
    out = []
    for p, c in zip(prompts, comps, strict=True):
        ids = [tok.bos_token_id, *tok(p, add_special_tokens=False)["input_ids"],
               *tok(c, add_special_tokens=False)["input_ids"], tok.eos_token_id]  # fmt: skip
        with torch.no_grad():
            out.append(float(model(input_ids=torch.tensor([ids])).logits[0, 0]))
    return np.array(out)


@pytest.mark.parametrize("rule_weight", [0.0, 0.7])
def test_gold_is_the_stated_teacher_plus_the_weighted_rule(rule_weight):
    task = load_task("neural", {**SMALL, "rule_weight": rule_weight})
    topics = Topics()
    tok = build_tokenizer(topics.vocab)
    # the teacher as the docstring states it, built here with transformers alone
    torch.manual_seed(3)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, num_labels=1,
                     activation_function="gelu_pytorch_tanh", initializer_range=0.1,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.pad_token_id)  # fmt: skip
    teacher = GPT2ForSequenceClassification(cfg).eval()
    rng = np.random.default_rng([3, 7])
    ref_p = topics.prompts(REFERENCE, rng)
    ref_c = topics.demonstrations(ref_p, 0.5, rng)
    t_ref, r_ref = one_at_a_time(teacher, tok, ref_p, ref_c), np.array(topics.gold(ref_p, ref_c))
    prompts = topics.prompts(40, np.random.default_rng(11))
    comps = topics.demonstrations(prompts, 0.8, np.random.default_rng(12))
    t, r = one_at_a_time(teacher, tok, prompts, comps), np.array(topics.gold(prompts, comps))
    expected = rule_weight * (r - r_ref.mean()) / r_ref.std() + (t - t_ref.mean()) / t_ref.std()
    np.testing.assert_allclose(task.gold(prompts, comps), expected, rtol=1e-5, atol=1e-5)


def test_its_scores_have_no_ties_and_its_best_of_n_kl_is_the_formula(tmp_path):
    task = load_task("neural", SMALL)
    prompts = ["write about river lamp :"] * 500
    comps = task.demonstrations(prompts, 1.0, np.random.default_rng(0))
    g = np.array(task.gold(prompts, comps))
    distinct = len(set(comps))
    assert len(np.unique(g)) == distinct > 400  # one score per distinct completion, no ties

    data = tiny_config_dict(tmp_path)
    data["task"] = {"name": "neural", "params": SMALL}
    data["rewards"] = data["rewards"][:1]
    run = run_study(StudyConfig.model_validate(data), tmp_path / "run", log=lambda _: None)
    s = pd.read_csv(run.run_dir / "summary.csv").set_index(["optimizer", "reward"])
    n = 16  # the pool's n: exact KL of best-of-16 without ties
    assert s.loc[("bon", "rule"), "final_kl"] == pytest.approx(math.log(n) - (n - 1) / n, rel=0.01)


def test_the_gold_network_is_part_of_the_cache_key():
    a = TaskConfig(name="neural", params=SMALL).cache_key()
    b = TaskConfig(name="neural", params={**SMALL, "teacher_seed": 4}).cache_key()
    assert a["gold_sha256"] != b["gold_sha256"] and len(a["gold_sha256"]) == 64
    assert TaskConfig(name="neural", params=SMALL).cache_key() == a
    assert "gold_sha256" not in TaskConfig(name="topics").cache_key()


def test_bad_parameters_are_named():
    with pytest.raises(RewardLabError, match="base 'poems'"):
        load_task("neural", {"base": "poems"})
    with pytest.raises(RewardLabError, match="init_std"):
        load_task("neural", {"init_std": 0})
