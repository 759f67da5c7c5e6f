"""Pydantic models for every stage of a study; YAML in, clear errors out.

Unknown keys are errors. `load_config` names the offending key and the file it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rewardlab.errors import RewardLabError


class Strict(BaseModel):
    """Base of every config model: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


class TaskConfig(Strict):
    name: str = Field("topics", description="built-in task, path to a .py file, or module name")
    params: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the task"
    )
    demo_noise: float = Field(
        0.3, ge=0, le=1, description="noise of the demonstrations the base policy learns from"
    )


class ModelSpec(Strict):
    """A transformer built from a size spec, or a local Hugging Face model folder (`path`)."""

    arch: Literal["gpt2", "llama"] = "gpt2"
    n_layer: int = Field(2, ge=1)
    n_embd: int = Field(64, ge=4)
    n_head: int = Field(4, ge=1)
    path: str | None = Field(None, description="local model folder; overrides the size spec")

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelSpec:
        if self.path is None and self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        return self


class PolicyConfig(Strict):
    model: ModelSpec = Field(default_factory=ModelSpec)
    train_prompts: int = Field(4000, ge=1, description="demonstrations used for SFT")
    epochs: int = Field(3, ge=0)
    lr: float = Field(3e-3, gt=0)
    batch_size: int = Field(64, ge=1)


class SamplingConfig(Strict):
    temperature: float = Field(1.0, gt=0)
    batch_size: int = Field(512, ge=1, description="completions sampled per forward pass")
    max_new_tokens: int | None = Field(None, ge=1, description="default: the task's bound")


class PreferenceConfig(Strict):
    prompts: int = Field(1000, ge=1, description="prompts whose samples are paired")
    samples_per_prompt: int = Field(4, ge=2, description="paired disjointly: k/2 pairs a prompt")
    label: Literal["deterministic", "bradley_terry"] = "deterministic"
    bt_scale: float = Field(
        10.0, gt=0, description="bradley_terry: P(a chosen) = sigmoid(bt_scale * (gold_a - gold_b))"
    )
    flip_rate: float = Field(0.0, ge=0, le=0.5, description="probability a label is flipped")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="prompts held out for accuracy")


class RewardModelConfig(Strict):
    name: str
    model: ModelSpec = Field(default_factory=ModelSpec)
    init_from_policy: bool = Field(False, description="start from the base policy's weights")
    train_pairs: int | None = Field(None, ge=1, description="use the first N training pairs")
    members: int = Field(1, ge=1, description="ensemble size; member i is trained with seed + i")
    uwo_lambda: float = Field(1.0, ge=0, description="uncertainty-weighted: mean - lambda * var")
    epochs: int = Field(3, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)


class BonConfig(Strict):
    prompts: int = Field(16, ge=1, description="held-out prompts of the best-of-n pool")
    n: int = Field(1024, ge=2, description="completions per prompt in the pool")
    n_boot: int = Field(1000, ge=0, description="bootstrap resamples of prompts for fit intervals")


class RLConfig(Strict):
    """RL with TRL's trainers against rewards of the study (Gao et al. 2022 use no KL penalty)."""

    rewards: list[str] = Field(
        default_factory=list,
        description="rewards to optimise: 'rule', a reward model's name, or 'name/mean|min|uwo'",
    )
    algorithm: Literal["grpo", "rloo"] = "grpo"
    steps: int = Field(100, ge=1, description="optimizer steps")
    lr: float = Field(1e-3, gt=0)
    beta: float = Field(0.0, ge=0, description="KL penalty coefficient of the trainer")
    prompts_per_step: int = Field(8, ge=1)
    generations: int = Field(8, ge=2, description="completions per prompt (the group)")
    temperature: float = Field(1.0, gt=0)
    measure_every: int = Field(10, ge=1, description="steps between measurements and checkpoints")
    measure_prompts: int = Field(32, ge=2, description="held-out prompts of each measurement")
    measure_samples: int = Field(8, ge=1, description="fresh samples per prompt per measurement")
    on_reward_error: Literal["stop", "skip"] = Field(
        "stop", description="a reward that raises or returns NaN: stop the run, or skip the sample"
    )
    reward_timeout_s: float = Field(
        120.0, gt=0, description="a reward call slower than this stops the run"
    )


class StudyConfig(Strict):
    study: str = "quick"
    seed: int = 0
    cache_dir: str = Field("runs/cache", description="stage artifacts shared by runs")
    task: TaskConfig = Field(default_factory=TaskConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    preferences: PreferenceConfig = Field(default_factory=PreferenceConfig)
    reward_models: list[RewardModelConfig] = Field(default_factory=list)
    bon: BonConfig = Field(default_factory=BonConfig)
    rl: RLConfig | None = Field(None, description="RL runs; none when absent")

    @field_validator("reward_models")
    @classmethod
    def _unique_names(cls, v: list[RewardModelConfig]) -> list[RewardModelConfig]:
        names = [r.name for r in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"reward model names must be unique; repeated: {sorted(dup)}")
        return v

    @model_validator(mode="after")
    def _rl_rewards_exist(self) -> StudyConfig:
        if self.rl is None:
            return self
        known = {"rule"}
        for r in self.reward_models:
            known |= (
                {r.name} if r.members == 1 else {f"{r.name}/{x}" for x in ("mean", "min", "uwo")}
            )
        unknown = [r for r in self.rl.rewards if r not in known]
        if unknown:
            raise ValueError(f"rl.rewards names unknown rewards {unknown}; known: {sorted(known)}")
        return self


def set_key(data: dict, dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    cur: Any = data
    for i, k in enumerate(keys[:-1]):
        if isinstance(cur, list):
            try:
                cur = cur[int(k)]
            except (ValueError, IndexError):
                raise RewardLabError(
                    f"{source}: no list item {k!r} in {'.'.join(keys[:i])}"
                ) from None
        else:
            cur = cur.setdefault(k, {})
    last = keys[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """``["a.b=3", "task.name=sorting"]`` -> ``[("a.b", 3), ("task.name", "sorting")]``."""
    out = []
    for item in overrides:
        if "=" not in item:
            raise RewardLabError(f"--set {item!r}: expected KEY=VALUE (for example seed=1)")
        key, raw = item.split("=", 1)
        out.append((key.strip(), yaml.safe_load(raw) if raw else ""))
    return out


def format_validation_error(err: ValidationError, source: str) -> str:
    """One paragraph naming each bad key (dotted path) and what is wrong with it."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
        else:
            parts.append(f"'{loc}': {e['msg']} (got {e.get('input')!r})")
    return f"invalid config {source}: " + "; ".join(parts)


def read_yaml_mapping(path: Path, what: str) -> dict:
    """The mapping at the top of a YAML file; a missing file, bad YAML or another top-level type
    is a `RewardLabError` naming `what` and the path."""
    if not path.is_file():
        raise RewardLabError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RewardLabError(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RewardLabError(f"{what} {path} must hold a mapping at the top level")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> StudyConfig:
    """Read a study YAML (or the defaults when `path` is None), apply ``key=value`` overrides."""
    source = str(path) if path else "(defaults)"
    data = read_yaml_mapping(Path(path), "config file") if path is not None else {}
    for key, value in parse_overrides(overrides or []):
        set_key(data, key, value, source)
    if overrides:
        source += " with --set " + " ".join(overrides)
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as err:
        raise RewardLabError(format_validation_error(err, source)) from None


def dump_config(cfg: StudyConfig) -> str:
    """The fully resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
