import numpy as np
import pandas as pd
import pytest
import torch

from rewardlab.models import build_reward_model, count_params
from rewardlab.rewards import LearnedReward, train_reward_model
from rewardlab.seeding import seed_everything
from rewardlab.specs import ModelSpec
from rewardlab.tasks import build_tokenizer


def synthetic_pairs(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Strings of 8 digits; the one with more 7s is preferred (a learnable rule)."""
    rows = []
    while len(rows) < n:
        a, b = rng.choice([7, 1, 2, 3], size=(2, 8), p=[0.3, 0.7 / 3, 0.7 / 3, 0.7 / 3])
        ka, kb = (a == 7).sum(), (b == 7).sum()
        if ka == kb:
            continue
        sa, sb = " ".join(map(str, a)), " ".join(map(str, b))
        c, r = (sa, sb) if ka > kb else (sb, sa)
        rows.append(
            dict(
                prompt="count :",
                chosen=c,
                rejected=r,
                gold_chosen=max(ka, kb),
                gold_rejected=min(ka, kb),
            )
        )
    return pd.DataFrame(rows)


def test_reward_model_learns_a_learnable_rule(tmp_path):
    rng = seed_everything(0, "test")
    tok = build_tokenizer([str(d) for d in range(10)] + ["count", ":"])
    model = build_reward_model(ModelSpec(n_layer=1, n_embd=32, n_head=4), tok)
    train, test = synthetic_pairs(3000, rng), synthetic_pairs(500, rng)
    m = train_reward_model(
        model, tok, train, test, epochs=4, lr=3e-3, batch_size=64, rng=rng, progress=False
    )
    assert m["test_accuracy"] > 0.95
    assert m["final_loss"] < 0.3
    # the saved model scores as a reward function with TRL's signature, standardised
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    (tmp_path / "reward_norm.json").write_text(
        f'{{"norm_mean": {m["norm_mean"]}, "norm_std": {m["norm_std"]}}}'
    )
    r = LearnedReward(tmp_path)
    hi, lo = r(["count :"] * 2, ["7 7 7 7 7 1 2 3", "1 2 3 1 2 3 1 2"])
    assert hi > lo
    # standardised by the training completions: over exactly those, mean 0 and std 1
    comps = train.chosen.tolist() + train.rejected.tolist()
    z = np.array(r(["count :"] * len(comps), comps))
    assert abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-4


def test_param_count_matches_a_hand_count():
    tok = build_tokenizer(["a", "b"])  # 6 tokens
    model = build_reward_model(ModelSpec(n_layer=1, n_embd=8, n_head=2), tok)
    V, d, T = 6, 8, 64
    emb = V * d + T * d
    block = 2 * (2 * d) + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    final_ln, head = 2 * d, d * 1
    assert count_params(model) == emb + block + final_ln + head


def test_bucketed_scores_equal_each_sequence_scored_alone():
    """Scoring sorts sequences by length into batches; every score must land on its own
    sequence and equal an unpadded forward pass of that sequence alone."""
    import torch

    from rewardlab.sequences import score_batched

    tok = build_tokenizer([str(d) for d in range(10)])
    seed_everything(0, "test")
    model = build_reward_model(ModelSpec(n_layer=1, n_embd=16, n_head=2), tok).eval()
    rng = np.random.default_rng(0)
    comps = [" ".join(map(str, rng.integers(0, 10, rng.integers(1, 12)))) for _ in range(40)]
    prompts = [f"{i % 3} :" for i in range(40)]
    got = score_batched(model, tok, prompts, comps, batch_size=7)
    with torch.no_grad():
        for p, c, g in zip(prompts, comps, got, strict=True):
            ids = tok(f"{p} {c}", add_special_tokens=False)["input_ids"]
            ids = torch.tensor([[tok.bos_token_id, *ids, tok.eos_token_id]])
            assert abs(model(input_ids=ids).logits[0, 0].item() - g) < 1e-5


def test_accuracy_by_margin_counts_by_hand():
    from rewardlab.rewards.learned import accuracy_by_margin

    rc = np.array([1.0, 0.0, 2.0, 3.0, 0.0, 5.0])
    rr = np.array([0.0, 1.0, 1.0, 4.0, 1.0, 0.0])  # right, wrong, right, wrong, wrong, right
    margin = np.array([0.01, 0.04, 0.07, 0.3, 1.0, 0.5])
    out = accuracy_by_margin(rc, rr, margin, edges=(0.0, 0.05, 0.1, 1.0))
    assert out["acc_margin_0.00_0.05"] == 0.5 and out["n_margin_0.00_0.05"] == 2
    assert out["acc_margin_0.05_0.10"] == 1.0 and out["n_margin_0.05_0.10"] == 1
    # the last bin is closed: margin 1.0 is in it
    assert out["acc_margin_0.10_1.00"] == pytest.approx(1 / 3) and out["n_margin_0.10_1.00"] == 3
    empty = accuracy_by_margin(rc, rr, margin, edges=(2.0, 3.0))
    assert np.isnan(empty["acc_margin_2.00_3.00"]) and empty["n_margin_2.00_3.00"] == 0


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience():
    """Random labels: the held-out loss cannot keep improving, so training stops `patience`
    epochs after its best epoch, and the kept weights score the held-out pairs with exactly the
    reported loss (recomputed here from the scores)."""
    import torch.nn.functional as F

    from rewardlab.sequences import score_batched

    rng = seed_everything(0, "test")
    tok = build_tokenizer([str(d) for d in range(10)] + ["count", ":"])
    model = build_reward_model(ModelSpec(n_layer=1, n_embd=16, n_head=2), tok)
    pairs = synthetic_pairs(300, rng)
    swap = rng.random(len(pairs)) < 0.5  # labels unrelated to the strings
    pairs.loc[swap, ["chosen", "rejected"]] = pairs.loc[swap, ["rejected", "chosen"]].to_numpy()
    m = train_reward_model(model, tok, pairs, pairs.iloc[:0], epochs=40, lr=1e-2, batch_size=16,
                           rng=rng, progress=False, patience=3, val_fraction=0.2)  # fmt: skip
    losses = [h["val_loss"] for h in m["history"]]
    assert m["val_pairs"] == 60 and m["train_pairs"] == 240
    assert m["best_epoch"] == int(np.argmin(losses)) + 1 and m["val_loss"] == min(losses)
    assert m["epochs_run"] == len(losses) < 40 and m["epochs_run"] == m["best_epoch"] + 3
    val = pairs.iloc[240:]
    p = val.prompt.tolist()
    r = score_batched(model, tok, p + p, val.chosen.tolist() + val.rejected.tolist())
    d = torch.from_numpy(r[:60] - r[60:])
    assert float(-F.logsigmoid(d).mean()) == pytest.approx(m["val_loss"], abs=1e-6)
