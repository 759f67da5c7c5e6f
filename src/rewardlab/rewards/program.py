"""A reward program (kind `program`): a Python file defining ``reward(prompts, completions, **kw)
-> list[float]``, written by a programmer or an LLM, scored in the sandbox (`rewardlab.sandbox`):
untrusted code never runs in the lab's process. The program's text is part of its cache key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from rewardlab.errors import RewardLabError
from rewardlab.rewards.base import Reward, RewardBase
from rewardlab.sandbox import score_program
from rewardlab.specs import input_field
from rewardlab.userfiles import source_digest

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext

STAGES = ()  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(RewardBase):
    """A reward program run in the sandbox."""

    kind: Literal["program"] = Field("program", description="reward source: a sandboxed program")
    path: str = input_field(
        ..., "program", "the .py file defining reward(prompts, completions, **kw), or "
        "builtin:NAME for a built-in partial rule (rewardlab/tasks/programs/NAME.py)",
    )  # fmt: skip
    timeout_s: float = Field(30.0, gt=0, description="wall-time limit of one batch")
    memory_mb: int = Field(1024, ge=64, description="address-space limit of the program")
    unsafe_no_sandbox: bool = Field(
        False, description="UNSAFE: run the program unconfined (only for code you trust)"
    )

    @field_validator("path")
    @classmethod
    def _known_builtin(cls, path: str) -> str:
        try:  # an unknown built-in name is an error now, not when the stage runs
            resolve(path)
        except RewardLabError as exc:
            raise ValueError(str(exc)) from None
        return path

    def file(self) -> Path:
        """The program's file (a built-in one resolved)."""
        return resolve(self.path)

    def cache_key(self) -> dict:
        """The config and the program's text (an edit is a new reward)."""
        return {**self.model_dump(mode="json"), "sha256": source_digest(str(self.file()))}


BUILTIN_DIR = Path(__file__).resolve().parents[1] / "tasks" / "programs"


def builtin_programs() -> list[str]:
    """The names of the built-in partial rules (``<task>_<what it checks>``)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.py"))


def resolve(path: str) -> Path:
    """``builtin:NAME`` -> the built-in program's file; any other path as given.

    Raises:
        RewardLabError: an unknown built-in name (the known ones listed).
    """
    if not path.startswith("builtin:"):
        return Path(path)
    name = path.split(":", 1)[1]
    if name not in builtin_programs():
        raise RewardLabError(
            f"no built-in reward program {name!r}; there are: {', '.join(builtin_programs())}"
        )
    return BUILTIN_DIR / f"{name}.py"


def _json_columns(kw: dict) -> dict:
    """The keyword arguments a program receives: the dataset's columns and plain values (TRL's
    tensors, trainer state and callables stay behind)."""
    out = {}
    for k, v in kw.items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


class ProgramReward:
    """``ProgramReward(path, timeout_s=..., memory_mb=...)(prompts, completions, **kw)``: the
    program's scores, one sandboxed process per batch; TRL's reward signature."""

    def __init__(self, path: str | Path, timeout_s: float = 30.0, memory_mb: int = 1024,
                 unsafe_no_sandbox: bool = False):  # fmt: skip
        self.path, self.timeout_s, self.memory_mb = Path(path), timeout_s, memory_mb
        self.unsafe = unsafe_no_sandbox
        self.__name__ = f"program:{self.path.stem}"

    def __call__(self, prompts, completions, **kw) -> list[float]:
        return score_program(self.path, list(prompts), list(completions), _json_columns(kw),
                             timeout_s=self.timeout_s, memory_mb=self.memory_mb,
                             unsafe_no_sandbox=self.unsafe)  # fmt: skip


def build(cfg: Config, ctx: StudyContext) -> list[Reward]:
    """The program as a reward; its identity is its text and limits."""
    fn = ProgramReward(cfg.file(), cfg.timeout_s, cfg.memory_mb, cfg.unsafe_no_sandbox)
    meta = {"source": cfg.path, "sandboxed": not cfg.unsafe_no_sandbox}
    return [Reward(cfg.name, "program", fn, key=cfg.cache_key(), meta=meta)]
