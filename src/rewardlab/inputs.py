"""The inputs a study names (task, reward function or program, preference file, model folder,
label database): relative paths in a study file resolved from that file's folder, and every
named file checked before any stage is built.

A field names an input when it is declared with `specs.input_field`; its kind (``file``,
``folder``, ``task``, ``module``, ``program``, ``database``) says what may stand there.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rewardlab.common.config_io import kind_tag, members
from rewardlab.errors import RewardLabError
from rewardlab.specs import INPUT

NAMES = ("task", "module")  # kinds whose value may be a name rather than a path


def _what(field: Any) -> str | None:
    extra = field.json_schema_extra
    return extra.get(INPUT) if isinstance(extra, dict) else None


def looks_like_path(value: str) -> bool:
    """A task or module value that names a file (``.py`` or a folder in it), not a name."""
    return value.endswith(".py") or "/" in value


def rebase(data: dict, model: type[BaseModel], base: Path) -> dict:
    """Rewrite, in place, every relative input path in the raw study mapping `data` (laid out as
    `model`) as ``base / path`` made absolute; names (a built-in task, a module, a
    ``builtin:`` program) and absolute paths are left as they are. Returns `data`."""
    for name, field in model.model_fields.items():
        if not isinstance(data, dict) or name not in data:
            continue
        value, what = data[name], _what(field)
        if what is not None:
            if isinstance(value, str) and _is_relative_path(value, what):
                data[name] = str((base / Path(value).expanduser()).absolute())
            continue
        for sub, item in _items(field.annotation, value):
            rebase(item, sub, base)
    return data


def _is_relative_path(value: str, what: str) -> bool:
    if what in NAMES and not looks_like_path(value):
        return False
    if what == "program" and value.startswith("builtin:"):
        return False
    return not Path(value).expanduser().is_absolute()


def _items(annotation: Any, value: Any):
    """(model, mapping) for each mapping in `value` (one, or a list's) laid out as a config model
    in `annotation` (a union's member chosen by the mapping's `kind`)."""
    models = [m for m in members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, dict) or not models:
            continue
        if len(models) == 1:
            yield models[0], item
        else:
            m = next((m for m in models if kind_tag(m) == item.get("kind")), None)
            if m is not None:
                yield m, item


def problems(cfg: BaseModel, where: str = "") -> list[str]:
    """One line per input of `cfg` (a validated config) that is not there: a missing file or
    folder, a task or module that is neither a file nor importable (a database is not checked:
    the labelling app creates it)."""
    out = []
    for name in type(cfg).model_fields:
        value, loc = getattr(cfg, name), f"{where}{name}"
        what = _what(type(cfg).model_fields[name])
        if what is not None:
            if isinstance(value, str):
                out += [f"{loc}: {p}" for p in _missing(value, what)]
        elif isinstance(value, BaseModel):
            out += problems(value, f"{loc}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    out += problems(item, f"{loc}.{i}.")
    return out


def _missing(value: str, what: str) -> list[str]:
    path = Path(value).expanduser()
    if what == "folder":
        return [] if path.is_dir() else [f"model folder {value} does not exist"]
    if what == "database" or (what == "program" and value.startswith("builtin:")):
        return []  # the labelling app creates a database; a built-in name is checked on loading
    if what == "task":
        from rewardlab.tasks import BUILTIN

        if value in BUILTIN or (value.endswith(".py") and path.is_file()):
            return []
        if looks_like_path(value) or not _importable(value):
            return [
                f"{value!r}: not a built-in task ({', '.join(BUILTIN)}), nor a .py file or an "
                "importable module that exists"
            ]
        return []
    if what in ("file", "program") or looks_like_path(value):
        return [] if path.is_file() else [f"file {value} does not exist"]
    if what == "module" and not _importable(value):
        return [f"{value!r} is neither a file nor an importable module"]
    return []


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check(cfg: BaseModel, source: str = "the study") -> None:
    """Raise one `RewardLabError` listing every input of `cfg` that is not there (`problems`),
    naming `source`."""
    found = problems(cfg)
    if found:
        raise RewardLabError(
            f"{source} names inputs that are not there (a relative path in a study file is "
            "relative to that file's folder): " + "; ".join(found)
        )
