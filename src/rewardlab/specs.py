"""Config pieces that stages, reward sources and optimizers share: the strict base model, the
model spec, sampling settings and the device."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Base of every config model: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


INPUT = "input"  # the json_schema_extra key that marks a field naming an input file (`inputs`)


def input_field(default: Any, what: str, description: str) -> Any:
    """A config field naming something the study reads: `what` is ``file``, ``folder``, ``task``
    (a built-in name, a .py file or a module), ``module`` (a .py file or a module), ``program`` (a
    .py file or ``builtin:NAME``) or ``database``. A relative path in a study file is relative to
    that file, and every such input is checked before any stage is built (`rewardlab.inputs`)."""
    return Field(default, description=description, json_schema_extra={INPUT: what})


def members(tp: Any) -> list:
    """The types inside `tp`: a union's members, an Annotated's type, a list's item type."""
    args = get_args(tp)
    if get_origin(tp) is Annotated:
        return members(args[0])
    return [m for a in args for m in (members(a) if get_args(a) else [a])] if args else [tp]


def inner_model(tp: Any) -> Any:
    """The one type behind `tp` (Optional, Annotated, a list of it), or `tp` itself."""
    ms = [m for m in members(tp) if m is not type(None)]
    return ms[0] if len(ms) == 1 else tp


def kind_tag(m: Any) -> str | None:
    """The `kind` literal of a config model in a discriminated union, or None."""
    f = getattr(m, "model_fields", {}).get("kind")
    return get_args(f.annotation)[0] if f is not None and get_args(f.annotation) else None


class ModelSpec(Strict):
    """A transformer built from a size spec, or a local Hugging Face model folder (`path`)."""

    arch: Literal["gpt2", "llama"] = Field("gpt2", description="architecture of a model built here")
    n_layer: int = Field(2, ge=1, description="transformer blocks")
    n_embd: int = Field(64, ge=4, description="width of the residual stream")
    n_head: int = Field(4, ge=1, description="attention heads (must divide n_embd)")
    path: str | None = input_field(None, "folder", "local model folder; overrides the size spec")

    def cache_key(self) -> dict:
        """The spec, and for a local folder the content of its files (`userfiles.folder_sha256`):
        a model replaced under the same path is a new model. A spec without a folder keys as its
        fields, as before folders were keyed by content."""
        from rewardlab.userfiles import folder_sha256

        d = self.model_dump(mode="json")
        if self.path is not None:
            d["path_sha256"] = folder_sha256(self.path)
        return d

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelSpec:
        if self.path is None and self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        return self


def spec_key(config: BaseModel, **dump) -> dict:
    """`config.model_dump(mode="json", **dump)` with each model-spec field left a `ModelSpec`: a
    valid config for the stage that receives it, and keyed by `cache.keyable` through
    `ModelSpec.cache_key`, so a local folder's content enters the key of what is built from it."""
    d = config.model_dump(mode="json", **dump)
    for name in d:
        value = getattr(config, name, None)
        if isinstance(value, ModelSpec):
            d[name] = value
    return d


class SamplingConfig(Strict):
    """How the base policy is sampled for pools, and how every trained policy is measured."""

    temperature: float = Field(1.0, gt=0, description="softmax temperature of sampling")
    batch_size: int = Field(1024, ge=1, description="completions sampled per forward pass")
    max_new_tokens: int | None = Field(None, ge=1, description="default: the task's bound")


Device = Literal["auto", "cpu", "cuda"]
