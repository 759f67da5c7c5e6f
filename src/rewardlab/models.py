"""Tiny Hugging Face causal LMs and scalar-head reward models built from a size spec, or loaded
from a local model folder; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers is imported where a model is built, so a config stays light
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from rewardlab.common.lazy import torch
from rewardlab.errors import RewardLabError
from rewardlab.specs import ModelSpec

MIN_POSITIONS = 64  # models built here have at least this many positions


def positions_for(max_prompt_tokens: int, max_new_tokens: int) -> int:
    """Positions a model built for a task needs: ``<bos>`` + prompt + completion + ``<eos>``,
    rounded up to a multiple of 64 (at least `MIN_POSITIONS`)."""
    need = 1 + max_prompt_tokens + max_new_tokens + 1
    return max(MIN_POSITIONS, 64 * -(-need // 64))


def resolve_device(setting: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without one is an error."""
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise RewardLabError("device: cuda was asked for, but torch sees no GPU")
    return setting


def check_positions(model: torch.nn.Module, length: int, what: str) -> None:
    """A clear error, instead of an IndexError deep in the model, when a sequence of `length`
    tokens does not fit the model's positions."""
    cfg = getattr(model, "config", None)
    limit = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
    if limit is not None and length > limit:
        raise RewardLabError(
            f"{what}: a sequence of {length} tokens does not fit the model's {limit} positions "
            "(a task's prompts or completions are longer than the model was built for)"
        )


def to_device(model: torch.nn.Module, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`tensors` moved to the device of `model`'s parameters."""
    dev = next(model.parameters()).device
    return tuple(t.to(dev) for t in tensors)


def model_config(
    spec: ModelSpec, tok: PreTrainedTokenizerBase, positions: int = MIN_POSITIONS, **extra
) -> PretrainedConfig:
    """A transformers config for `spec` over the vocabulary of `tok`, with `positions` positions."""
    from transformers import GPT2Config, LlamaConfig

    ids = dict(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    if spec.arch == "gpt2":
        return GPT2Config(
            vocab_size=len(tok),
            n_positions=positions,
            n_embd=spec.n_embd,
            n_layer=spec.n_layer,
            n_head=spec.n_head,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            activation_function="gelu_pytorch_tanh",  # GPT-2's tanh GELU, as one fused op
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
        max_position_embeddings=positions,
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


def build_causal_lm(
    spec: ModelSpec, tok: PreTrainedTokenizerBase, positions: int = MIN_POSITIONS
) -> PreTrainedModel:
    """A freshly initialised causal LM (seed torch first), or the one in `spec.path`."""
    from transformers import AutoModelForCausalLM

    if spec.path:
        return _load_local(AutoModelForCausalLM, spec.path, "policy model")
    return AutoModelForCausalLM.from_config(model_config(spec, tok, positions))


def build_reward_model(
    spec: ModelSpec,
    tok: PreTrainedTokenizerBase,
    init_from: str | Path | None = None,
    positions: int = MIN_POSITIONS,
) -> PreTrainedModel:
    """A transformer with a one-output linear head on the last non-pad token.

    `init_from` (a causal-LM folder) copies its body, as RLHF starts the reward model from the
    policy; the scalar head is newly initialised either way.
    """
    from transformers import AutoModelForSequenceClassification

    if init_from is not None:
        return _load_local(
            AutoModelForSequenceClassification, str(init_from), "policy model", num_labels=1
        )
    if spec.path:
        return _load_local(
            AutoModelForSequenceClassification, spec.path, "reward model", num_labels=1
        )
    return AutoModelForSequenceClassification.from_config(
        model_config(spec, tok, positions, num_labels=1)
    )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved beside a model (built by the lab or shipped with a local model)."""
    from transformers import AutoTokenizer

    tok = _load_local(AutoTokenizer, str(path), "tokenizer")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters, embeddings included (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())
