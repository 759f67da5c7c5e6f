import numpy as np
import pytest
import torch

from rewardlab.models import build_causal_lm
from rewardlab.policy import sample, token_logprobs, train_sft
from rewardlab.seeding import seed_everything
from rewardlab.specs import ModelSpec
from rewardlab.tasks import build_tokenizer, load_task


def small_policy(task):
    seed_everything(0, "test")
    tok = build_tokenizer(task.vocab)
    return build_causal_lm(ModelSpec(n_layer=1, n_embd=32, n_head=4), tok), tok


def test_sampled_logprobs_match_a_fresh_forward_pass():
    task = load_task("sorting")
    model, tok = small_policy(task)
    gen = torch.Generator().manual_seed(1)
    comps, logp = sample(model, tok, "sort 3 1 2 :", 32, max_new_tokens=6, generator=gen)
    cut = [len(c.split()) == 6 for c in comps]
    assert any(cut) and not all(cut)  # an untrained model: some completions are cut at 6 tokens
    lp, mask = token_logprobs(model, tok, ["sort 3 1 2 :"] * 32, comps, max_new_tokens=6)
    assert np.allclose((lp * mask).sum(-1).detach().numpy(), logp, atol=1e-4)


def test_sampling_is_reproducible_with_a_seeded_generator():
    task = load_task("topics")
    model, tok = small_policy(task)
    a = sample(
        model,
        tok,
        "write about river lamp :",
        8,
        max_new_tokens=5,
        generator=torch.Generator().manual_seed(3),
    )
    b = sample(
        model,
        tok,
        "write about river lamp :",
        8,
        max_new_tokens=5,
        generator=torch.Generator().manual_seed(3),
    )
    assert a[0] == b[0] and np.array_equal(a[1], b[1])


def test_sft_learns_noiseless_demonstrations():
    task = load_task("arithmetic", {"digits": 1})
    model, tok = small_policy(task)
    rng = np.random.default_rng(0)
    prompts = task.prompts(2000, rng)
    losses = train_sft(
        model,
        tok,
        prompts,
        task.demonstrations(prompts, 0.0, rng),
        epochs=8,
        lr=3e-3,
        batch_size=32,
        rng=rng,
        progress=False,
    )
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    gen = torch.Generator().manual_seed(0)
    test = task.prompts(20, rng)
    golds = [
        np.mean(task.gold([p] * 8, sample(model, tok, p, 8, max_new_tokens=3, generator=gen)[0]))
        for p in test
    ]
    assert np.mean(golds) > 0.6  # an untrained model scores about 0.1 (format only, at best)


def test_samples_do_not_depend_on_how_rows_are_split_into_calls():
    import torch

    from rewardlab.seeding import torch_generator

    tok = build_tokenizer(["a", "b", "c"])
    seed_everything(0, "test")
    model = build_causal_lm(ModelSpec(n_layer=1, n_embd=8, n_head=2), tok)
    u = torch.rand((10, 5), generator=torch_generator(0, "test"))
    whole, lp = sample(model, tok, "a b", 10, max_new_tokens=5, uniforms=u)
    parts = [
        sample(model, tok, "a b", len(r), max_new_tokens=5, uniforms=r) for r in (u[:3], u[3:])
    ]
    assert whole == parts[0][0] + parts[1][0]
    assert np.allclose(lp, np.concatenate([parts[0][1], parts[1][1]]))


def test_a_sequence_longer_than_the_model_is_a_clear_error():
    from rewardlab.errors import RewardLabError
    from rewardlab.models import positions_for

    assert positions_for(10, 12) == 64 and positions_for(80, 82) == 192  # 1 + 80 + 82 + 1 = 164
    tok = build_tokenizer(["a"])
    model = build_causal_lm(ModelSpec(n_layer=1, n_embd=8, n_head=2), tok)  # 64 positions
    with pytest.raises(RewardLabError, match=r"70 tokens does not fit the model's 64 positions"):
        sample(model, tok, " ".join(["a"] * 60), 1, max_new_tokens=9)
    with pytest.raises(RewardLabError, match=r"does not fit the model's 64 positions"):
        token_logprobs(model, tok, ["a"], [" ".join(["a"] * 70)])


def test_device_auto_is_the_cpu_without_a_gpu():
    import torch

    from rewardlab.errors import RewardLabError
    from rewardlab.models import resolve_device

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(RewardLabError, match="no GPU"):
        resolve_device("cuda")


def test_a_pool_of_many_prompts_is_the_same_at_any_batch_size_and_its_logprobs_are_exact():
    from rewardlab.policy import sample_rows
    from rewardlab.seeding import torch_generator

    task = load_task("topics")
    model, tok = small_policy(task)
    # prompts of different token lengths, so batches mix left-padded rows
    prompts = ["write about river :", "write about river lamp storm :", "write about lamp storm :"]
    rows = [p for p in prompts for _ in range(6)]
    u = torch.rand((len(rows), 7), generator=torch_generator(0, "test"))
    by_size = {b: sample_rows(model, tok, rows, u, max_new_tokens=7, batch_size=b)
               for b in (1, 7, 1024)}  # fmt: skip
    texts, logp = by_size[1]
    for b in (7, 1024):
        assert by_size[b][0] == texts
        assert np.allclose(by_size[b][1], logp, atol=1e-5)
    # each row alone, unpadded, through the single-prompt sampler: the same completion
    for j in (0, 7, 17):
        alone, _ = sample(model, tok, rows[j], 1, max_new_tokens=7, uniforms=u[j : j + 1])
        assert alone == [texts[j]]
    lp, mask = token_logprobs(model, tok, rows, texts, max_new_tokens=7)  # a fresh forward pass
    assert np.allclose((lp * mask).sum(-1).detach().numpy(), logp, atol=1e-4)
    assert len(set(texts)) > 6  # rows differ: the uniforms, not the batch, decide


def test_init_log_probs_score_the_sampled_ids_even_a_spelling_the_tokenizer_would_not_make(
    tmp_path,
):
    """A random GPT-2 with a byte-level BPE tokenizer samples token sequences that tokenizing
    their text again does not give back; `sequence_logprobs` scores the sampled ids, checked
    against a plain forward pass over them, where re-tokenizing (`token_logprobs`) scores
    another sequence."""
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardlab.policy import policy_logits, sample_rows, sequence_logprobs
    from rewardlab.sequences import encode_prompt

    spec = importlib.util.spec_from_file_location("local_models", "examples/local_models.py")
    lm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lm)
    folder = lm.bpe_policy(tmp_path / "policy", lm.corpus("topics", 300), n_embd=32, n_layer=1)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    prompts = ["write about horse garden :"] * 64
    ids: list = []
    texts, logp = sample_rows(model, tok, prompts, torch.rand((64, 12), generator=torch.Generator().manual_seed(0)),
                              max_new_tokens=12, ids_out=ids)  # fmt: skip
    got = sequence_logprobs(model, tok, prompts, ids, batch_size=7)
    np.testing.assert_allclose(got, logp, rtol=1e-4, atol=1e-4)  # the sampler's own log-probs
    p_ids = encode_prompt(tok, prompts[0])
    odd = 0
    for k, (text, c) in enumerate(zip(texts, ids, strict=True)):
        seq = torch.tensor([p_ids + c])
        with torch.no_grad():
            lp = torch.log_softmax(policy_logits(model(seq).logits[0, :-1].float(), tok), -1)
        by_hand = float(lp[len(p_ids) - 1 :].gather(-1, seq[0, len(p_ids) :, None]).sum())
        assert got[k] == pytest.approx(by_hand, abs=1e-4)
        body = c[:-1] if c and c[-1] == tok.eos_token_id else c
        if tok(text, add_special_tokens=False)["input_ids"] != body:
            odd += 1
            with torch.no_grad():
                retok, mask = token_logprobs(model, tok, [prompts[k]], [text], 12)
            assert float((retok * mask).sum()) != pytest.approx(by_hand, abs=1e-3)
    assert odd > 0, "no sample spelled its text differently from the tokenizer"
