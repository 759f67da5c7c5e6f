"""The config reference, written from the pydantic models' own fields: every key of a study and
of a sweep with its type, default and description as Markdown (``docs/CONFIG.md``), and a
resolved study as YAML with each key's description beside it (``rewardlab config show``)."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from rewardlab.common.config_io import kind_tag, members

HEADER = """# Config reference

Every key of a study file (`rewardlab run STUDY`) and of a sweep file (`rewardlab sweep SWEEP`),
with its type, default and description. Written from the config models by
`rewardlab config reference > docs/CONFIG.md`; a test fails when this file and the models differ.
`rewardlab config show [STUDY] [--set KEY=VALUE ...]` prints one study's resolved config with
these descriptions beside its keys.

Keys are dotted as `--set` takes them: `policy.epochs=5`, `rewards.0.lr=1e-3` (list items by
index), `optimizers.1.steps=50`. A list of reward sources or optimizers holds one mapping per item,
and an item's `kind` decides which keys it has: each kind has its own table below. Unknown keys
are errors, with the closest known key suggested. Relative paths of the inputs a study file names
(task, reward function or program, preference file, model folder, label database) are relative
to that file's folder; paths given with `--set` are relative to the current folder.
"""


def type_name(tp: Any) -> str:
    """A field's annotation as a reader writes it: ``int``, ``float | None``, ``list[str]``,
    ``'a' | 'b'`` for a literal, the model's name for a nested config."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return type_name(args[0])
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        if all(isinstance(m, type) and issubclass(m, BaseModel) for m in args):
            return "one of the kinds below"
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        return (
            f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
        )
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def default_text(field: Any) -> str:
    """A field's default as YAML text; ``required`` when it has none; a nested config's
    defaults are in its own rows."""
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(its keys below)"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def _models(tp: Any) -> list[type[BaseModel]]:
    return [m for m in members(tp) if isinstance(m, type) and issubclass(m, BaseModel)]


def rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every field of `model` and of the configs nested
    in it (a single nested model's keys dotted under its own); lists of kinds are left to
    `sections`."""
    out = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        key, nested = f"{prefix}{name}", _models(field.annotation)
        out.append((key, type_name(field.annotation), default_text(field), field.description))
        if len(nested) == 1 and get_origin(field.annotation) is not list:
            out += rows(nested[0], f"{key}.")
        elif len(nested) == 1:
            out += rows(nested[0], f"{key}.N.")
    return out


def sections(model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """(title, model) for each kind of each list of kinds in `model` (rewards, optimizers)."""
    out = []
    for name, field in model.model_fields.items():
        kinds = _models(field.annotation)
        if len(kinds) > 1:
            out += [(f"{name}.N with kind: {kind_tag(m)}", m) for m in kinds]
    return out


def _table(items: list[tuple[str, str, str, str]]) -> str:
    def cell(s: str) -> str:
        return (
            (s or "")
            .replace("|", "\\|")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace("\n", " ")
        )

    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {cell(t)} | `{cell(d)}` | {cell(desc)} |" for k, t, d, desc in items]
    return "\n".join(lines)


def markdown() -> str:
    """The whole reference (``docs/CONFIG.md``)."""
    from rewardlab.config import StudyConfig
    from rewardlab.sweep import SweepConfig

    parts = [HEADER, "## A study\n", (StudyConfig.__doc__ or "").strip() + "\n",
             _table(rows(StudyConfig))]  # fmt: skip
    for title, m in sections(StudyConfig):
        parts += [
            f"\n### {title}\n",
            (m.__doc__ or "").strip() + "\n",
            _table(rows(m, title.split()[0] + ".")),
        ]
    parts += [
        "\n## A sweep\n",
        (SweepConfig.__doc__ or "").strip() + "\n",
        _table(rows(SweepConfig)),
    ]
    return "\n".join(parts) + "\n"


def show(cfg: BaseModel) -> str:
    """`cfg` as YAML that loads back to the same config, each key followed by its description
    as a comment."""
    return "\n".join(_show(cfg, 0)) + "\n"


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text.removesuffix("...").strip()


def _show(cfg: BaseModel, indent: int) -> list[str]:
    pad, lines = " " * indent, []
    for name, field in type(cfg).model_fields.items():
        if field.exclude:
            continue
        value, note = getattr(cfg, name), f"  # {field.description}" if field.description else ""
        if isinstance(value, BaseModel):
            lines += [f"{pad}{name}:{note}", *_show(value, indent + 2)]
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            lines.append(f"{pad}{name}:{note}")
            for item in value:
                inner = _show(item, indent + 4)
                lines += [f"{pad}  - {inner[0].lstrip()}", *inner[1:]]
        else:
            lines.append(f"{pad}{name}: {_scalar(_jsonable(value))}{note}")
    return lines


def _jsonable(value: Any) -> Any:
    """Plain YAML values for what a config holds (paths and enums as strings)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
