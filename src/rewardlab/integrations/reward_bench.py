"""An outside reward model (a local Hugging Face sequence classifier with its own tokenizer)
judged on a run's gold-labelled pairs, in the style of RewardBench (Lambert et al. 2024):
accuracy overall and by gold margin.

For each pair (x, y_a, y_b) with gold scores g_a != g_b, the model scores r(x, y) = logit 0 of
its single output; it is right when the completion with the higher gold gets the higher score:
accuracy = mean[(r_a − r_b)(g_a − g_b) > 0]. The margin of a pair is |g_a − g_b| / (hi − lo), the
task's gold range, binned as the lab's own reward models are (`learned.MARGIN_EDGES`); the
accuracy against the pairs' labels (chosen over rejected, which may be flipped) is given too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rewardlab.errors import RewardLabError
from rewardlab.rewards.learned import MARGIN_EDGES, accuracy_by_margin

TEMPLATES = ("auto", "plain", "chat")


def load_sequence_classifier(folder: str | Path, device: str = "cpu"):
    """(model, tokenizer) of a local sequence-classification reward model with one output.

    Raises:
        RewardLabError: no such folder, no config, not a sequence classifier, or not one output.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise RewardLabError(f"{folder} is not a Hugging Face model folder (no config.json)")
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except Exception as exc:
        raise RewardLabError(f"{folder}: unreadable config.json ({exc})") from None
    arch = config.architectures or []
    if not any(a.endswith("ForSequenceClassification") for a in arch):
        raise RewardLabError(
            f"{folder} is not a sequence classifier (architectures: {', '.join(arch) or 'none'}); "
            "a reward model is a *ForSequenceClassification model with one output (put a head "
            "on a backbone with AutoModelForSequenceClassification.from_pretrained(folder, "
            "num_labels=1) and train it)"
        )
    if config.num_labels != 1:
        raise RewardLabError(
            f"{folder} has num_labels={config.num_labels}; a reward model has one output"
        )
    try:
        model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:
        raise RewardLabError(f"{folder}: could not load ({type(exc).__name__}: {exc})") from None
    if tok.pad_token is None:  # decoder models often have none: pad with eos, as TRL does
        tok.pad_token = tok.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model.to(device).eval(), tok


def texts(tok, prompts, completions, template: str = "auto") -> list[str]:
    """The model's input for each (prompt, completion): the tokenizer's chat template over a
    user and an assistant message (``chat``, or ``auto`` when it has one), else ``prompt`` +
    space + ``completion`` (``plain``)."""
    if template not in TEMPLATES:
        raise RewardLabError(f"template {template!r}: one of {', '.join(TEMPLATES)}")
    chat = template == "chat" or (template == "auto" and getattr(tok, "chat_template", None))
    if chat:
        return [tok.apply_chat_template([{"role": "user", "content": p},
                                         {"role": "assistant", "content": c}], tokenize=False)
                for p, c in zip(prompts, completions, strict=True)]  # fmt: skip
    return [f"{p} {c}" for p, c in zip(prompts, completions, strict=True)]


def score(model, tok, inputs: list[str], batch_size: int = 32, max_length: int = 512) -> np.ndarray:
    """Logit 0 of each input, in padded batches, without gradients."""
    out = []
    dev = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            enc = tok(inputs[i : i + batch_size], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt").to(dev)  # fmt: skip
            out.append(model(**enc).logits[:, 0].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def evaluate(
    model, tok, pairs: pd.DataFrame, gold_width: float, template: str = "auto",
    batch_size: int = 32,
) -> dict:  # fmt: skip
    """Accuracy of `model` on `pairs` (prompt, chosen, rejected, gold_chosen, gold_rejected):
    ``accuracy`` against gold, ``label_accuracy`` against chosen/rejected, ``pairs`` (gold ties
    left out), and `accuracy_by_margin`'s ``acc_margin_*``/``n_margin_*``."""
    need = {"prompt", "chosen", "rejected", "gold_chosen", "gold_rejected"} - set(pairs.columns)
    if need:
        raise RewardLabError(f"the pairs lack the column(s) {', '.join(sorted(need))}")
    pairs = pairs[pairs.gold_chosen != pairs.gold_rejected]
    p = pairs.prompt.tolist()
    rc = score(model, tok, texts(tok, p, pairs.chosen.tolist(), template), batch_size)
    rr = score(model, tok, texts(tok, p, pairs.rejected.tolist(), template), batch_size)
    gc, gr = pairs.gold_chosen.to_numpy(float), pairs.gold_rejected.to_numpy(float)
    hi_r, lo_r = np.where(gc > gr, rc, rr), np.where(gc > gr, rr, rc)  # by gold, not by label
    return dict(pairs=len(pairs), accuracy=float((hi_r > lo_r).mean()) if len(pairs) else np.nan,
                label_accuracy=float((rc > rr).mean()) if len(pairs) else np.nan,
                **accuracy_by_margin(hi_r, lo_r, np.abs(gc - gr) / gold_width, MARGIN_EDGES))  # fmt: skip
