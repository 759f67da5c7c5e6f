"""Reading configs: YAML mappings, dotted ``key=value`` overrides, and validation errors that name
each bad key; the typing helpers that walk a config model's fields (only `rewardlab.errors` is
imported from the package, so every layer can use it)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from rewardlab.errors import RewardLabError


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


def union_tags(model: Any, seen: set | None = None) -> set[str]:
    """Every `kind` tag of a union member anywhere in `model`'s fields (nested models too)."""
    seen = set() if seen is None else seen
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or model in seen:
        return set()
    seen.add(model)
    tags = set()
    for f in model.model_fields.values():
        ms = [m for m in members(f.annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
        if len(ms) > 1:
            tags |= {t for t in map(kind_tag, ms) if t}
        for m in ms:
            tags |= union_tags(m, seen)
    return tags


def set_key(data: dict, dotted: str, value: Any, source: str) -> None:
    """Set ``data[a][b]... = value`` for the dotted key ``a.b...`` (list items by index), making
    missing mappings on the way; a key through a value that is neither a mapping nor a list, an
    empty key part or a list index that is not there is a `RewardLabError` naming `source`."""
    keys = dotted.split(".")
    if not all(keys):
        raise RewardLabError(f"{source}: key {dotted!r} has an empty part")
    cur: Any = data
    for i, k in enumerate(keys):
        where = ".".join(keys[:i]) or "the top level"
        if isinstance(cur, list):
            if not (k.isdigit() and int(k) < len(cur)):
                raise RewardLabError(
                    f"{source}: {where} is a list of {len(cur)} items; {k!r} is not one of its "
                    f"indices (0 to {len(cur) - 1})"
                )
            k = int(k)
        elif not isinstance(cur, dict):
            raise RewardLabError(
                f"{source}: {where} is a value ({cur!r}), not a mapping, so it has no key {k!r}"
            )
        if i == len(keys) - 1:
            cur[k] = value
        elif isinstance(cur, dict):
            cur = cur.setdefault(k, {})
        else:
            cur = cur[k]


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """``["a.b=3", "task.name=sorting"]`` -> ``[("a.b", 3), ("task.name", "sorting")]``."""
    out = []
    for item in overrides:
        if "=" not in item:
            raise RewardLabError(f"--set {item!r}: expected KEY=VALUE (for example seed=1)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise RewardLabError(
                f"--set {item!r}: the value {raw!r} is not valid YAML ({problem}); quote a "
                "string, close a list with ]"
            ) from None
        out.append((key.strip(), value))
    return out


def format_validation_error(err: ValidationError, source: str, model: type | None = None) -> str:
    """One paragraph naming each bad key (dotted path) and what is wrong with it; given the
    validated `model`, an unknown key names the closest known key at its place."""
    tags = union_tags(model)
    parts = []
    for e in err.errors():
        # a discriminated union puts the kind into the path (rewards.0.learned.lr): drop it
        path = [x for i, x in enumerate(e["loc"])
                if not (i and isinstance(e["loc"][i - 1], int) and x in tags)]  # fmt: skip
        loc = ".".join(str(x) for x in path) or "(top level)"
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(e["loc"][-1]), _keys_at(model, e["loc"]), 1, 0.6)
            hint = (
                f" (did you mean '{'.'.join([*loc.split('.')[:-1], close[0]])}'?)" if close else ""
            )
            parts.append(f"unknown key '{loc}'{hint}")
        else:
            got = repr(e.get("input"))
            shown = f" (got {got})" if len(got) <= 80 and e["loc"] else ""
            parts.append(f"'{loc}': {e['msg']}{shown}")
    return f"invalid config {source}: " + "; ".join(parts)


def _keys_at(model: type | None, loc: tuple) -> list[str]:
    """The field names of the model that holds the last key of `loc`, walking `model`'s fields
    (a list's items; a union member chosen by the `kind` tag in `loc`); [] when unknown."""
    cls = model
    for x in loc[:-1]:
        if cls is None:
            return []
        if isinstance(x, int):
            cls = inner_model(cls)
        elif isinstance(cls, type) and issubclass(cls, BaseModel) and x in cls.model_fields:
            cls = inner_model(cls.model_fields[x].annotation)
        else:  # a union member, named by its tag
            cls = next((m for m in members(cls) if kind_tag(m) == x), None)
    return list(cls.model_fields) if isinstance(cls, type) and issubclass(cls, BaseModel) else []


def read_yaml_mapping(path: Path, what: str) -> dict:
    """The mapping at the top of a YAML file; a missing file, bad YAML or another top-level type
    is a `RewardLabError` naming `what` and the path."""
    if not path.is_file():
        raise RewardLabError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RewardLabError(f"{what} {path} is not valid YAML: {exc}") from None
    if data is None:  # not the defaults in disguise: an empty file is a mistake
        raise RewardLabError(
            f"{what} {path} is empty; give its keys (studies/quick.yaml is a complete example)"
        )
    if not isinstance(data, dict):
        raise RewardLabError(f"{what} {path} must hold a mapping at the top level")
    return data
