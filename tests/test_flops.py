import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from rewardlab.flops import forward_flops, sampling_flops
from rewardlab.models import model_config
from rewardlab.specs import ModelSpec
from rewardlab.tasks import build_tokenizer, load_task


def counted(model, ids, backward=False, **kw) -> int:
    """FLOPs torch's own counter sees in the model's matmuls."""
    with FlopCounterMode(display=False) as fc:
        out = model(input_ids=ids, **kw)
        if backward:
            out.logits.sum().backward()
    return fc.get_total_flops()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_forward_and_training_flops_match_torchs_counter(arch):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    tok = build_tokenizer(load_task("topics").vocab)
    spec = ModelSpec(arch=arch, n_layer=2, n_embd=32, n_head=4)
    cfg = model_config(spec, tok, attn_implementation="eager")  # attention as plain matmuls
    lm = AutoModelForCausalLM.from_config(cfg)
    ids = torch.randint(3, len(tok), (3, 11))
    assert counted(lm, ids) == 3 * forward_flops(spec, len(tok), 11, 11)
    assert counted(lm, ids, backward=True) == 3 * 3 * forward_flops(spec, len(tok), 11, 11)
    rm = AutoModelForSequenceClassification.from_config(
        model_config(spec, tok, num_labels=1, attn_implementation="eager")
    )
    assert counted(rm, ids) == 3 * forward_flops(spec, None, 11, 11)


def test_sampling_flops_match_torchs_counter_over_a_cached_decode():
    from transformers import AutoModelForCausalLM

    tok = build_tokenizer(load_task("topics").vocab)
    spec = ModelSpec(n_layer=1, n_embd=16, n_head=2)
    lm = AutoModelForCausalLM.from_config(model_config(spec, tok, attn_implementation="eager"))
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        out = lm(input_ids=torch.randint(3, len(tok), (1, 5)), use_cache=True)  # the prefill
        for _ in range(3):  # three sampled tokens fed back: 4 new tokens sampled in all
            nxt = torch.randint(3, len(tok), (1, 1))
            out = lm(input_ids=nxt, cache=out.cache, use_cache=True)
    assert fc.get_total_flops() == sampling_flops(spec, len(tok), [5], [4])
