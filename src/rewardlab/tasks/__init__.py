"""Tasks: the built-in ones by name, a user's own from a Python file or module, the task's config,
and the prompt streams every stage draws from.

A user's task file defines ``make_task(**params) -> Task`` (see docs/TASKS.md for a worked example).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from rewardlab.errors import RewardLabError
from rewardlab.seeding import rng
from rewardlab.specs import Strict, input_field
from rewardlab.tasks.arithmetic import Arithmetic
from rewardlab.tasks.base import Task, build_tokenizer, checked_gold
from rewardlab.tasks.neural import NeuralGold
from rewardlab.tasks.sorting import Sorting
from rewardlab.tasks.topics import Topics
from rewardlab.userfiles import import_user, source_digest

BUILTIN = {"arithmetic": Arithmetic, "neural": NeuralGold, "sorting": Sorting, "topics": Topics}

__all__ = [
    "BUILTIN",
    "Task",
    "TaskConfig",
    "build_tokenizer",
    "checked_gold",
    "load_task",
    "split_prompts",
]


class TaskConfig(Strict):
    """The task: its prompts, demonstrations and gold rule."""

    name: str = input_field("topics", "task", "built-in task, path to a .py file, or module name")
    params: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the task"
    )
    demo_noise: float = Field(
        0.3, ge=0, le=1, description="noise of the demonstrations the base policy learns from"
    )

    def load(self) -> Task:
        """The task object (`load_task`, loaded once per process)."""
        return load_task(self.name, self.params)

    def cache_key(self) -> dict:
        """The config, and the content of a user's task file or module and of the user's modules
        it imports (an edited task is a new task); a built-in task's key is its config, and a
        task whose gold is a network (``content_digest()``, `tasks.neural`) adds its weights'
        hash."""
        d = self.model_dump(mode="json")
        if self.name not in BUILTIN:
            d["sha256"] = source_digest(self.name)
        elif hasattr(BUILTIN[self.name], "content_digest"):  # a gold that is a network: its weights
            d["gold_sha256"] = self.load().content_digest()
        return d


def split_prompts(task: Task, split: str, n: int, seed: int) -> list[str]:
    """`n` prompts of the stream (seed, "prompts", split); the splits sft, preferences, bon
    (held out: the pool and every measurement) and rl never share a stream."""
    return task.prompts(n, rng(seed, "prompts", split))


_LOADED: dict[str, Task] = {}


def load_task(name: str, params: dict | None = None) -> Task:
    """A built-in task by name, or a user's from a ``.py`` path or an importable module name
    (loaded once per process for the same name, parameters and file content).

    Raises:
        RewardLabError: an unknown task, a file that fails to import, a module without
            ``make_task``, bad parameters, or an object that lacks the Task attributes.
    """
    params = dict(params or {})
    digest = None if name in BUILTIN else source_digest(name)
    memo = json.dumps([name, params, digest], sort_keys=True, default=str)
    if memo not in _LOADED:
        _LOADED[memo] = _load(name, params)
    return _LOADED[memo]


def _load(name: str, params: dict) -> Task:
    if name in BUILTIN:
        factory = BUILTIN[name]
    else:
        builtin = ", ".join(BUILTIN)
        if "/" in name and not name.endswith(".py"):
            raise RewardLabError(
                f"unknown task {name!r}: not a built-in task ({builtin}), and a task file must "
                "end in .py"
            )
        module = import_user(name, "task", f" is not a built-in task ({builtin}) and")
        factory = getattr(module, "make_task", None)
        if factory is None:
            raise RewardLabError(f"task {name!r} defines no make_task(**params) function")
    try:
        task = factory(**params)
    except TypeError as exc:
        raise RewardLabError(
            f"task {name!r} does not accept the parameters {params}: {exc}"
        ) from None
    except Exception as exc:
        raise RewardLabError(
            f"task {name!r}: make_task(**{params}) raised {type(exc).__name__}: {exc}"
        ) from None
    missing = [
        a
        for a in (
            "name",
            "vocab",
            "max_new_tokens",
            "gold_range",
            "prompts",
            "demonstrations",
            "gold",
        )
        if not hasattr(task, a)
    ]
    if missing:
        raise RewardLabError(f"task {name!r} lacks {', '.join(missing)} (see docs/TASKS.md)")
    return task
