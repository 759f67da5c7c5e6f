"""Tiny Hugging Face causal LMs and scalar-head reward models built from a size spec, or loaded
from a local model folder; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rewardlab.config import ModelSpec
from rewardlab.errors import RewardLabError

MAX_POSITIONS = 64  # prompt + completion of every built-in task fit well inside this


def model_config(spec: ModelSpec, tok: PreTrainedTokenizerBase, **extra) -> PretrainedConfig:
    """A transformers config for `spec` over the vocabulary of `tok`."""
    ids = dict(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    if spec.arch == "gpt2":
        return GPT2Config(
            vocab_size=len(tok),
            n_positions=MAX_POSITIONS,
            n_embd=spec.n_embd,
            n_layer=spec.n_layer,
            n_head=spec.n_head,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **ids,
            **extra,
        )
    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=spec.n_embd,
        intermediate_size=4 * spec.n_embd,
        num_hidden_layers=spec.n_layer,
        num_attention_heads=spec.n_head,
        num_key_value_heads=spec.n_head,
        max_position_embeddings=MAX_POSITIONS,
        **ids,
        **extra,
    )


def _load_local(loader, path: str, what: str, **kw):
    if not Path(path).is_dir():
        raise RewardLabError(f"{what} folder {path!r} does not exist")
    try:
        return loader.from_pretrained(path, local_files_only=True, **kw)
    except Exception as exc:
        raise RewardLabError(
            f"could not load the {what} from {path!r}: {type(exc).__name__}: {exc}"
        ) from None


def build_causal_lm(spec: ModelSpec, tok: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A freshly initialised causal LM (seed torch first), or the one in `spec.path`."""
    if spec.path:
        return _load_local(AutoModelForCausalLM, spec.path, "policy model")
    return AutoModelForCausalLM.from_config(model_config(spec, tok))


def build_reward_model(
    spec: ModelSpec, tok: PreTrainedTokenizerBase, init_from: str | Path | None = None
) -> PreTrainedModel:
    """A transformer with a one-output linear head on the last non-pad token.

    `init_from` (a causal-LM folder) copies its body, as RLHF starts the reward model from the
    policy; the scalar head is newly initialised either way.
    """
    if init_from is not None:
        return _load_local(
            AutoModelForSequenceClassification, str(init_from), "policy model", num_labels=1
        )
    if spec.path:
        return _load_local(
            AutoModelForSequenceClassification, spec.path, "reward model", num_labels=1
        )
    return AutoModelForSequenceClassification.from_config(model_config(spec, tok, num_labels=1))


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved beside a model (built by the lab or shipped with a local model)."""
    tok = _load_local(AutoTokenizer, str(path), "tokenizer")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters, embeddings included (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())
