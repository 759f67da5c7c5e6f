"""The likelihood-ratio reward against summed token log-probabilities computed by hand."""

import math

import pandas as pd
import pytest
import torch

from rewardlab.config import StudyConfig
from rewardlab.models import build_causal_lm
from rewardlab.rewards.likelihood_ratio import LikelihoodRatioReward
from rewardlab.specs import ModelSpec
from rewardlab.study import run_study
from rewardlab.tasks import build_tokenizer
from tests.conftest import tiny_config_dict


def _by_hand(model, tok, prompt, completion, cut):
    """Σ log softmax of each completion token (and <eos> unless cut), one unpadded sequence, with
    pad, bos and unk never sampled (their logits removed before the softmax)."""
    words = prompt.split() + completion.split()
    ids = [tok.bos_token_id] + [tok.convert_tokens_to_ids(w) for w in words]
    n_comp = len(completion.split())
    if n_comp < cut:
        ids.append(tok.eos_token_id)
        n_comp += 1
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    banned = [tok.pad_token_id, tok.bos_token_id, tok.unk_token_id]
    total = 0.0
    for t in range(len(ids) - n_comp, len(ids)):
        row = logits[t - 1].clone()
        row[banned] = -math.inf
        total += float(row[ids[t]] - torch.logsumexp(row, 0))
    return total


def test_the_reward_is_the_difference_of_summed_log_probabilities(tmp_path):
    tok = build_tokenizer(list("abcdef") + ["go", ":"])
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_causal_lm(ModelSpec(n_layer=1, n_embd=16, n_head=2), tok, positions=16)
        model.save_pretrained(tmp_path / f"m{seed}")
        tok.save_pretrained(tmp_path / f"m{seed}")
        paths.append(tmp_path / f"m{seed}")
    prompts = ["go a b :", "go c :", "go :"]
    comps = ["a b", "f e d c", ""]
    cut = 4  # "f e d c" has 4 tokens: cut by the sampler, so no <eos>
    reward = LikelihoodRatioReward(paths[0], paths[1], max_new_tokens=cut)
    got = reward(prompts, comps)
    demo, base = reward.demo, reward.base
    want = [_by_hand(demo, tok, p, c, cut) - _by_hand(base, tok, p, c, cut)
            for p, c in zip(prompts, comps, strict=True)]  # fmt: skip
    assert got == pytest.approx(want, abs=1e-4)
    assert all(abs(w) > 1e-3 for w in want)  # the two models differ: not a trivial zero


def test_a_study_with_a_likelihood_ratio_reward(tmp_path):
    d = tiny_config_dict(tmp_path)
    d["rewards"] = [{"name": "lr", "kind": "likelihood_ratio", "epochs": 2,
                     "demos": {"source": "clean", "demos": 100}}]  # fmt: skip
    s = run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda m: None)
    assert "demo-policy-lr" in s.stages and s.stages["demo-policy-lr"].built
    table = pd.read_csv(tmp_path / "run" / "rewards.csv").set_index("reward")
    assert table.loc["lr", "kind"] == "likelihood_ratio" and table.loc["lr", "demonstrations"] == 90
    scores = pd.read_parquet(s.stages["scores"].path / "scores.parquet")
    pool = scores.head(8)  # the pool's first samples, rescored here by hand
    reward = LikelihoodRatioReward(s.stages["demo-policy-lr"].path, s.stages["policy"].path,
                                   max_new_tokens=StudyConfig.model_validate(d).task.load().max_new_tokens)  # fmt: skip
    assert reward(pool.prompt.tolist(), pool.completion.tolist()) == pytest.approx(
        pool["lr"].tolist(), abs=1e-4
    )
