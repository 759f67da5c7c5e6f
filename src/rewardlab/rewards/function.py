"""A user's reward function from a Python file or module: ``reward(prompts, completions, **kw)``.

The function has TRL's reward signature; it receives the dataset's columns (the task's
per-prompt columns, such as a reference answer) and, under a TRL trainer, TRL's keyword
arguments (``completion_ids``, ``trainer_state``, ...). Code the lab did not write runs in a child
process that a timeout can stop (`rewards.guard`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from rewardlab.errors import RewardLabError
from rewardlab.rewards.base import Reward, RewardBase
from rewardlab.specs import input_field
from rewardlab.userfiles import import_user, source_digest

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext

STAGES = ()  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(RewardBase):
    """A reward function a user brings (a .py file or an importable module)."""

    kind: Literal["function"] = Field("function", description="reward source: a user's function")
    path: str = input_field(..., "module", "a .py file, or an importable module name")
    function: str = Field("reward", description="name of the function in that file or module")
    params: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments bound to every call"
    )

    def cache_key(self) -> dict:
        """The config, and the content of the file or module `path` and of the user's modules it
        imports (an edit of any of them is a new reward)."""
        return {**self.model_dump(mode="json"), "sha256": source_digest(self.path)}


class FunctionReward:
    """``FunctionReward(path, function, params)(prompts, completions, **kw)``: the user's function
    called with `params` bound; importable by path, so a child process can load it again."""

    def __init__(self, path: str, function: str = "reward", params: dict | None = None):
        self.path, self.function, self.params = path, function, dict(params or {})
        self.fn = load_function(path, function)
        self.__name__ = f"function:{Path(path).stem}.{function}"

    def __call__(self, prompts, completions, **kw) -> list:
        return self.fn(prompts, completions, **{**kw, **self.params})

    def __reduce__(self):  # pickled as its recipe: the child imports the file itself
        return (FunctionReward, (self.path, self.function, self.params))


def load_function(path: str, function: str = "reward"):
    """Import `function` from the file or module `path`."""
    fn = getattr(import_user(path, "reward function"), function, None)
    if not callable(fn):
        raise RewardLabError(
            f"reward function {function!r} of {path!r}: no callable named {function!r} in it"
        )
    return fn


def build(cfg: Config, ctx: StudyContext) -> list[Reward]:
    """The user's function, run isolated; its identity includes the file's content."""
    fn = FunctionReward(cfg.path, cfg.function, cfg.params)
    meta = {"source": cfg.path, "function": cfg.function}
    return [Reward(cfg.name, "function", fn, key=cfg.cache_key(), meta=meta, isolate=True)]
