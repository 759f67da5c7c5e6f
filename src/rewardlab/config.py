"""The top of the house: `StudyConfig`, whose unions hold every reward kind's and optimizer
kind's config (derived from `rewards.KINDS` and `optimize.KINDS`), and reading and writing it.

Each stage's config lives beside its stage (`tasks.TaskConfig`, `policy.PolicyConfig`,
`preferences.PreferenceConfig`, `pool.PoolConfig`); unknown keys are errors, and `load_config`
names the offending key and the file it came from (`common.config_io`).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import Field, ValidationError, create_model, model_validator

from rewardlab.common.config_io import (
    format_validation_error,
    parse_overrides,
    read_yaml_mapping,
    set_key,
)
from rewardlab.errors import RewardLabError
from rewardlab.inputs import rebase
from rewardlab.optimize import KINDS as OPTIMIZER_KINDS
from rewardlab.policy import PolicyConfig
from rewardlab.pool import PoolConfig
from rewardlab.preferences import PreferenceConfig
from rewardlab.rewards import KINDS as REWARD_KINDS
from rewardlab.rewards.base import RULE
from rewardlab.specs import Device, SamplingConfig, Strict, TrackingConfig, kind_union
from rewardlab.tasks import TaskConfig

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
    seeds: list[int] | None = Field(
        None,
        min_length=1,
        description="run the study once per seed, side by side in one run folder "
        "(seeds/s<seed>/), with curves and verdicts over seeds; replaces 'seed' (rewardlab.seeds)",
    )
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
    rewards: list[kind_union(REWARD_KINDS)] = Field(
        default_factory=list,
        description=f"reward sources (kind: {', '.join(REWARD_KINDS)}); 'rule' is implied",
    )
    pool: PoolConfig = Field(default_factory=PoolConfig, description="the base policy's pool")
    optimizers: list[kind_union(OPTIMIZER_KINDS)] = Field(
        default_factory=lambda: [{"kind": "bon"}],
        validate_default=True,
        description=f"optimizers (kind: {', '.join(OPTIMIZER_KINDS)}), each at most once",
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

    @model_validator(mode="after")
    def _seeds_distinct(self) -> StudyConfig:
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct; got {self.seeds}")
        return self

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


def study_config(
    reward_kinds: dict[str, ModuleType], optimizer_kinds: dict[str, ModuleType]
) -> type[StudyConfig]:
    """A `StudyConfig` whose unions hold the given kinds instead of the package's (a kind kept in
    a user's or a test's own module); the study runs it like any other (`specs.module_of`)."""
    return create_model(
        "StudyConfig",
        __base__=StudyConfig,
        rewards=(list[kind_union(reward_kinds)], StudyConfig.model_fields["rewards"]),
        optimizers=(list[kind_union(optimizer_kinds)], StudyConfig.model_fields["optimizers"]),
    )


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


def validated(data: dict, source: str, model: type[StudyConfig] = StudyConfig) -> StudyConfig:
    """`data` as a `model` (a `StudyConfig`), or a `RewardLabError` naming `source` and every bad
    key."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise RewardLabError(format_validation_error(err, source, model)) from None


def dump_config(cfg: StudyConfig) -> str:
    """The fully resolved config as YAML (every default written out; ``seeds`` only when set,
    so a one-seed run's config reads as it did before seeds were a key)."""
    return yaml.safe_dump(config_json(cfg), sort_keys=False)


def config_json(cfg: StudyConfig) -> dict:
    """`cfg` as JSON-ready data: every field, ``seeds`` left out when it is not set."""
    return cfg.model_dump(mode="json", exclude={"seeds"} if cfg.seeds is None else None)
