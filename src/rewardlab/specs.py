"""Config pieces that stages, reward sources and optimizers share: the strict base model, the
model spec, sampling settings and the device."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Base of every config model: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


class ModelSpec(Strict):
    """A transformer built from a size spec, or a local Hugging Face model folder (`path`)."""

    arch: Literal["gpt2", "llama"] = Field("gpt2", description="architecture of a model built here")
    n_layer: int = Field(2, ge=1, description="transformer blocks")
    n_embd: int = Field(64, ge=4, description="width of the residual stream")
    n_head: int = Field(4, ge=1, description="attention heads (must divide n_embd)")
    path: str | None = Field(None, description="local model folder; overrides the size spec")

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelSpec:
        if self.path is None and self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        return self


class SamplingConfig(Strict):
    """How the base policy is sampled for pools, and how every trained policy is measured."""

    temperature: float = Field(1.0, gt=0, description="softmax temperature of sampling")
    batch_size: int = Field(1024, ge=1, description="completions sampled per forward pass")
    max_new_tokens: int | None = Field(None, ge=1, description="default: the task's bound")


Device = Literal["auto", "cpu", "cuda"]
