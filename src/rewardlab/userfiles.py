"""Importing a user's Python file or module: the one way user tasks and reward functions load."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from rewardlab.errors import RewardLabError


def import_user(name: str, what: str, module_hint: str = "") -> ModuleType:
    """Import `name`, a ``.py`` file or an importable module name, for a `what` ("task",
    "reward function"); each failure is a `RewardLabError` naming it. `module_hint` is put
    before the message of a module name that does not import."""
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise RewardLabError(f"{what} file {name!r} does not exist")
        tag = what.replace(" ", "_")
        spec = importlib.util.spec_from_file_location(f"rewardlab_user_{tag}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise RewardLabError(
                f"{what} file {name!r} failed to import: {type(exc).__name__}: {exc}"
            ) from None
        return module
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise RewardLabError(
            f"{what} {name!r}{module_hint}: importing it as a module failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
