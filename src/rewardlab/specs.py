"""Config pieces that stages, reward sources and optimizers share: the strict base model, the
model spec, sampling settings, the device, and where a finished run's measurements are sent."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Base of every config model: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


def kind_union(kinds: Mapping[str, ModuleType]) -> Any:
    """The discriminated union (on ``kind``) of the ``Config`` of every module in `kinds` (a kind
    mapping such as `rewards.KINDS`; two kinds of one module share its ``Config``)."""
    configs = tuple(dict.fromkeys(m.Config for m in kinds.values()))
    return Annotated[Union[configs], Field(discriminator="kind")]  # noqa: UP007


def module_of(cfg: BaseModel) -> ModuleType:
    """The module that defines `cfg`'s class: a reward kind's or optimizer's module, whose
    ``build`` or ``run`` the study calls (so a kind needs no list beyond its `KINDS` line)."""
    return sys.modules[type(cfg).__module__]


INPUT = "input"  # the json_schema_extra key that marks a field naming an input file (`inputs`)


def input_field(default: Any, what: str, description: str) -> Any:
    """A config field naming something the study reads: `what` is ``file``, ``folder``, ``task``
    (a built-in name, a .py file or a module), ``module`` (a .py file or a module), ``program`` (a
    .py file or ``builtin:NAME``) or ``database``. A relative path in a study file is relative to
    that file, and every such input is checked before any stage is built (`rewardlab.inputs`)."""
    return Field(default, description=description, json_schema_extra={INPUT: what})


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


class TrackingConfig(Strict):
    """Where a finished run's measurements are sent besides its CSV files."""

    tensorboard: bool = Field(
        False, description="write TensorBoard event files to <run>/tensorboard"
    )
    wandb: bool = Field(False, description="log the run to Weights & Biases")
    wandb_project: str = Field("rewardlab", description="the W&B project")
    wandb_mode: Literal["offline", "online"] = Field(
        "offline",
        description="offline: files under <run>/wandb, uploaded later by `wandb sync`; online: "
        "sent as logged (needs a login and a network)",
    )
