"""The study config: pydantic models for every stage, YAML in, clear errors out.

Unknown keys are errors. `load_config` names the offending key and the file it came from.
Reward sources and optimizers bring their own config models (`rewards.RewardSpec`,
`optimize.OptimizerSpec`, unions on `kind`).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from rewardlab.errors import RewardLabError
from rewardlab.inputs import rebase
from rewardlab.optimize import KINDS as OPTIMIZER_KINDS
from rewardlab.optimize import OptimizerSpec
from rewardlab.report.tracking import TrackingConfig
from rewardlab.rewards import KINDS as REWARD_KINDS
from rewardlab.rewards import RULE, RewardSpec
from rewardlab.specs import (
    Device,
    ModelSpec,
    SamplingConfig,
    Strict,
    inner_model,
    input_field,
    kind_tag,
    members,
    spec_key,
)
from rewardlab.userfiles import file_sha256, source_digest


class TaskConfig(Strict):
    """The task: its prompts, demonstrations and gold rule."""

    name: str = input_field("topics", "task", "built-in task, path to a .py file, or module name")
    params: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the task"
    )
    demo_noise: float = Field(
        0.3, ge=0, le=1, description="noise of the demonstrations the base policy learns from"
    )

    def load(self):
        """The task object (`tasks.load_task`, loaded once per process)."""
        from rewardlab.tasks import load_task

        return load_task(self.name, self.params)

    def cache_key(self) -> dict:
        """The config, and the content of a user's task file or module and of the user's modules
        it imports (an edited task is a new task); a built-in task's key is its config."""
        from rewardlab.tasks import BUILTIN

        d = self.model_dump(mode="json")
        if self.name not in BUILTIN:
            d["sha256"] = source_digest(self.name)
        return d


class PolicyConfig(Strict):
    """The base policy: a model trained by SFT on the task's demonstrations."""

    model: ModelSpec = Field(default_factory=ModelSpec, description="size spec or local folder")
    train_prompts: int = Field(4000, ge=1, description="demonstrations used for SFT")
    epochs: int = Field(3, ge=0, description="SFT passes over the demonstrations (0: as built)")
    lr: float = Field(3e-3, gt=0, description="peak AdamW learning rate (warm-up, cosine decay)")
    batch_size: int = Field(64, ge=1, description="demonstrations per optimizer step")

    def cache_key(self) -> dict:
        """The config, with a local model folder keyed by its content."""
        return spec_key(self)


class PreferenceConfig(Strict):
    """Preference pairs from the base policy's samples, labelled by the gold rule, or read from
    a local file."""

    file: str | None = input_field(
        None, "file", "a local preference file (.parquet, .jsonl or .json lines) with prompt, "
        "chosen, rejected (TRL's layout, standard or conversational; an optional split column of "
        "train/test), used instead of gold-labelled pool pairs; its content is in the cache key",
    )  # fmt: skip

    prompts: int = Field(1000, ge=1, description="prompts whose samples are paired")
    samples_per_prompt: int = Field(4, ge=2, description="paired disjointly: k/2 pairs a prompt")
    label: Literal["deterministic", "bradley_terry"] = Field(
        "deterministic", description="higher gold wins, or a Bradley-Terry draw (bt_scale)"
    )
    bt_scale: float = Field(
        10.0, gt=0, description="bradley_terry: P(a chosen) = sigmoid(bt_scale * (gold_a - gold_b))"
    )
    flip_rate: float = Field(0.0, ge=0, le=0.5, description="probability a label is flipped")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="prompts held out for accuracy")
    min_margin: float = Field(
        0.0,
        ge=0,
        description="pairs whose gold differs by less than this (gold units) are dropped as "
        "near-ties, as exact ties always are",
    )

    def cache_key(self) -> dict:
        """The config, and the preference file's content when there is one (without a file,
        the key is what it was before files could be given)."""
        d = self.model_dump(mode="json", exclude={"file"})
        if self.file is not None:
            d.update(file=self.file, file_sha256=file_sha256(self.file))
        return d


class PoolConfig(Strict):
    """The base policy's held-out pool: best-of-n picks from it, and every curve is normalised
    by it (0 = its mean, 1 = its standard deviation, per reward)."""

    prompts: int = Field(16, ge=1, description="held-out prompts of the pool")
    n: int = Field(1024, ge=2, description="completions per prompt in the pool")


TAGS = set(REWARD_KINDS) | set(OPTIMIZER_KINDS)  # the `kind`s of the config unions
MOVED = {  # keys of earlier study files, and how to write them now
    "reward_models": "list them under 'rewards:' with 'kind: learned' (or 'kind: ensemble' with "
    "members >= 2 and reducers: [mean, min, uwo]; the rewards are then <name>/<reducer>)",
    "bon": "'bon: {prompts, n}' is now 'pool: {prompts, n}', and best-of-n is an optimizer: "
    "'optimizers: [{kind: bon, n_boot: ...}]'",
    "rl": "'rl: {algorithm: grpo, rewards: [...], ...}' is now an item of 'optimizers:' "
    "with 'kind: grpo' (or rloo) and the same fields",
}


class StudyConfig(Strict):
    """One study: a task, a base policy, rewards, and optimizers run against them."""

    study: str = Field(
        "quick",
        description="name; the default run folder is runs/<study>__s<seed>__<time>__<suffix>",
    )
    seed: int = Field(0, description="every random stream of the study derives from it")
    cache_dir: str = Field("runs/cache", description="stage artifacts shared by runs")
    device: Device = Field("auto", description="auto: a GPU when torch sees one, else the CPU")
    task: TaskConfig = Field(default_factory=TaskConfig, description="the task")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="the base policy")
    sampling: SamplingConfig = Field(
        default_factory=SamplingConfig, description="sampling of pools and of every measurement"
    )
    preferences: PreferenceConfig = Field(
        default_factory=PreferenceConfig, description="gold-labelled preference pairs"
    )
    rewards: list[RewardSpec] = Field(
        default_factory=list,
        description="reward sources (kind: learned, ensemble, classifier, demos, likelihood_ratio, function, program, rule); 'rule' is implied",
    )
    pool: PoolConfig = Field(default_factory=PoolConfig, description="the base policy's pool")
    optimizers: list[OptimizerSpec] = Field(
        default_factory=lambda: [{"kind": "bon"}],
        validate_default=True,
        description="optimizers (kind: bon, grpo, rloo, dpo), each at most once",
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig,
        description="TensorBoard / W&B logging of the finished run's measurements (off)",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            old = [k for k in MOVED if k in data]
            if old:
                raise ValueError(
                    "this study file uses keys of an earlier rewardlab: "
                    + "; ".join(f"'{k}': {MOVED[k]}" for k in old)
                    + " (studies/quick.yaml shows the current layout)"
                )
        return data

    def reward_names(self) -> list[str]:
        """Every reward an optimizer can name: 'rule' and each source's (an ensemble's are
        <name>/<reducer>)."""
        return list(dict.fromkeys([RULE] + [n for r in self.rewards for n in r.names()]))

    @model_validator(mode="after")
    def _names_resolve(self) -> StudyConfig:
        sources = [r.name for r in self.rewards]
        dup = sorted({n for n in sources if sources.count(n) > 1})
        if dup:
            raise ValueError(f"reward names must be unique; repeated: {dup}")
        known = set(self.reward_names())
        kinds = [o.kind for o in self.optimizers]
        rep = sorted({k for k in kinds if kinds.count(k) > 1})
        if rep:
            raise ValueError(f"each optimizer kind may appear once; repeated: {rep}")
        for o in self.optimizers:
            names = list(getattr(o, "rewards", None) or []) + [getattr(o, "track", None) or RULE]
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(
                    f"optimizer {o.kind!r} names unknown rewards {unknown}; known: {sorted(known)}"
                )
        return self


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
    parts = []
    for e in err.errors():
        # a discriminated union puts the kind into the path (rewards.0.learned.lr): drop it
        path = [x for i, x in enumerate(e["loc"])
                if not (i and isinstance(e["loc"][i - 1], int) and x in TAGS)]  # fmt: skip
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


STUDIES = Path(__file__).resolve().parent / "studies"  # the packaged studies and sweeps


def packaged() -> list[str]:
    """The names of the studies and sweeps that ship with the package (``rewardlab run tiny``)."""
    return sorted(p.stem for p in STUDIES.glob("*.yaml"))


def find_study(name: str | Path, what: str = "config file") -> Path:
    """The YAML file `name`: a path, or else the name of a packaged study (`packaged`).

    Raises:
        RewardLabError: neither a file nor a packaged name (the packaged ones listed).
    """
    path = Path(name)
    if path.is_file():
        return path
    if str(name) in packaged():
        return STUDIES / f"{name}.yaml"
    raise RewardLabError(
        f"{what} {name} does not exist, and it is not the name of a packaged study or sweep "
        f"({', '.join(packaged())})"
    )


def read_study(path: Path, what: str = "config file") -> dict:
    """A study file's mapping (`read_yaml_mapping`) with the relative paths of the inputs it
    names made relative to the file's folder (`inputs.rebase`)."""
    return rebase(read_yaml_mapping(path, what), StudyConfig, path.parent)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> StudyConfig:
    """Read a study YAML (a path or a packaged study's name; the defaults when `path` is None),
    then apply ``key=value`` overrides (their paths are relative to the current folder)."""
    source = str(path) if path else "(defaults)"
    data = read_study(find_study(path)) if path is not None else {}
    for key, value in parse_overrides(overrides or []):
        set_key(data, key, value, f"{source}, --set {key}")
    if overrides:
        source += " with --set " + " ".join(overrides)
    return validated(data, source)


def run_config(run_dir: str | Path) -> StudyConfig:
    """A run folder's ``config.yaml``, as the run resolved it: its paths are taken as written
    (a run writes them absolute), not rebased on the run folder as a study file's would be.

    Raises:
        RewardLabError: no ``config.yaml``, or one that does not validate.
    """
    path = Path(run_dir) / "config.yaml"
    return validated(read_yaml_mapping(path, "run config"), str(path))


def validated(data: dict, source: str) -> StudyConfig:
    """`data` as a `StudyConfig`, or a `RewardLabError` naming `source` and every bad key."""
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as err:
        raise RewardLabError(format_validation_error(err, source, StudyConfig)) from None


def dump_config(cfg: StudyConfig) -> str:
    """The fully resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
