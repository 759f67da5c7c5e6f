"""The wiring of one study: base policy -> pools -> preferences -> rewards (each kind builds its
own stages) -> scores of the pool -> optimizers, each a cached stage, gathered into a run folder.

Every stage is a plain function of its inputs (config slices, upstream stages, the seed) writing
files into `out`, kept beside its config in the module of its job (`policy`, `pool`,
`preferences`, `rewards.scores`, each reward kind and optimizer); `Cache.run` keys it on exactly
those inputs. This module owns the run folder and passes one `context.StudyContext` along.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from rewardlab.cache import Cache, StageResult, copy_tree, exclusive_lock
from rewardlab.common.io import read_parquet, write_atomic
from rewardlab.common.lazy import torch
from rewardlab.config import StudyConfig, dump_config
from rewardlab.context import StudyContext
from rewardlab.errors import RewardLabError
from rewardlab.inputs import check
from rewardlab.models import resolve_device
from rewardlab.offline import offline_scores
from rewardlab.optimize import KINDS as OPTIMIZERS
from rewardlab.optimize.curves import SAMPLE
from rewardlab.policy import stage_policy
from rewardlab.pool import stage_pool
from rewardlab.preferences import stage_file_preferences, stage_preferences
from rewardlab.progress import quiet_libraries
from rewardlab.provenance import write_provenance
from rewardlab.report.build import build_report, write_results
from rewardlab.report.tracking import track
from rewardlab.rewards import KINDS, RULE, Reward
from rewardlab.rewards import rule as rule_kind
from rewardlab.rewards.scores import stage_scores
from rewardlab.specs import module_of

# every stage a study can build, in the order a study builds them: the data stages, the reward
# kinds' and the optimizers' own (each module's ``STAGES``), the pool's scores between them
STAGES = tuple(dict.fromkeys(
    ["policy", "pool", "preferences", *(s for m in KINDS.values() for s in m.STAGES), "scores",
     *(s for m in OPTIMIZERS.values() for s in m.STAGES)]
))  # fmt: skip


@dataclass
class Study:
    """A finished study: the run folder, the resolved config and every stage it used; its
    tables as DataFrames (`curves` and `measurements` read from the folder on use). A study of
    several seeds (`rewardlab.seeds`) has every seed's summary rows and `verdicts` over seeds;
    its stages are in each seed's folder."""

    run_dir: Path
    config: StudyConfig
    stages: dict[str, StageResult] = field(default_factory=dict)
    reward_models: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    verdicts: pd.DataFrame | None = None  # several seeds: each (optimizer, reward) over seeds

    @property
    def curves(self) -> pd.DataFrame:
        """``curves.csv``: one row per (optimizer, reward, seed, step)."""
        return pd.read_csv(self.run_dir / "curves.csv")

    @property
    def measurements(self) -> pd.DataFrame:
        """``measurements.csv``: every measurement of a trained optimizer (empty without one)."""
        path = self.run_dir / "measurements.csv"
        return pd.read_csv(path) if path.is_file() else pd.DataFrame()

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"


OWNER_LOCK = ".owner.lock"  # held by the one process running a study in a run folder
OWNER_WAIT_S = 30.0  # how long a second process waits for it (a dying holder cleaning up)


def default_run_dir(cfg: StudyConfig) -> Path:
    """A new folder ``runs/<study>__s<seed>__<YYYYmmdd-HHMMSS>__<6 hex digits>``, created here
    so that two runs started in the same second never share it."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    seeds = "-".join(map(str, cfg.seeds)) if cfg.seeds else cfg.seed
    while True:
        path = Path("runs") / f"{cfg.study}__s{seeds}__{stamp}__{secrets.token_hex(3)}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue


def claim_run_dir(cfg: StudyConfig, run_dir: Path) -> None:
    """Use `run_dir` for `cfg`: it may be new or empty, or hold the same study (a resume: its
    ``config.yaml`` equals `cfg`'s); anything else is refused, so no run overwrites another's.

    Raises:
        RewardLabError: `run_dir` is a file, or a non-empty folder of another study or of none.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise RewardLabError(f"--out {run_dir} is a file, not a folder; give a folder")
    if run_dir.is_dir() and any(p.name != OWNER_LOCK for p in run_dir.iterdir()):
        cfg_file = run_dir / "config.yaml"
        if not cfg_file.is_file():
            raise RewardLabError(
                f"--out {run_dir} is not empty and holds no study (no config.yaml); give a new "
                "or empty folder"
            )
        if cfg_file.read_text() != dump_config(cfg):
            raise RewardLabError(
                f"--out {run_dir} holds another study (its config.yaml differs from this one's); "
                "give a new folder, or the same config to resume it"
            )
    run_dir.mkdir(parents=True, exist_ok=True)


def stage_context() -> dict:
    """What every stage of a study depends on besides its inputs (`Cache`'s `context`): torch's
    thread count, which changes the last bits of every model trained on the CPU."""
    return {"threads": torch.get_num_threads()}


def run_study(
    cfg: StudyConfig,
    run_dir: Path | None = None,
    log: Callable[[str], None] = print,
    rebuild: Collection[str] = (),
) -> Study:
    """Run (or resume) every stage of `cfg`; mirror their folders into `run_dir`. Stages named in
    `rebuild` (of `STAGES`) are built anew, and so is every stage after the first of them. One
    process at a time runs in a run folder.

    The run folder holds ``config.yaml`` (fully resolved), ``stages/<label>/`` (copies of the
    cached artifacts that later changes to the cache do not reach), ``rewards.csv`` (every
    reward: kind, parameters, what it was trained on), ``reward_models.csv`` (accuracy and size
    of every trained member), ``offline.csv`` (each reward's offline scores against gold on the
    base pool, `rewardlab.offline`), the curves and reports. With ``cfg.seeds`` the seeds run
    side by side, each in its own run folder ``seeds/s<seed>/``: `rewardlab.seeds.run_seeds`
    runs them, and this function refuses them.
    """
    if cfg.seeds:
        raise RewardLabError(
            "a config with 'seeds' runs through rewardlab.seeds.run_seeds (rewardlab run --seeds, "
            "or rewardlab.run); run_study runs one seed"
        )
    unknown = sorted(set(rebuild) - set(STAGES))
    if unknown:
        raise RewardLabError(
            f"--rebuild {', '.join(unknown)}: not a stage; the stages are {', '.join(STAGES)}"
        )
    check(cfg)  # every file the study names, before a folder or a stage is made
    cfg.task.load()  # a task file that fails to import fails here too
    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
    claim_run_dir(cfg, run_dir)
    quiet_libraries()
    with exclusive_lock(run_dir / OWNER_LOCK, timeout_s=OWNER_WAIT_S, what=f"run folder {run_dir}"):
        cache = Cache(cfg.cache_dir, log=log, rebuild=rebuild, context=stage_context())
        return _run_study(cfg, run_dir, cache, log)


def _run_study(cfg: StudyConfig, run_dir: Path, cache: Cache, log: Callable[[str], None]) -> Study:
    t0 = time.perf_counter()
    config_text = dump_config(cfg)
    write_atomic(run_dir / "config.yaml", config_text)
    study = Study(run_dir, cfg)
    ctx = build_rewards(cfg, cache, resolve_device(cfg.device), log)
    study.reward_models = _member_table(ctx.stages)
    if len(study.reward_models):
        study.reward_models.to_csv(run_dir / "reward_models.csv", index=False)
    reward_table(ctx.rewards).to_csv(run_dir / "rewards.csv", index=False)
    ctx.scores = _score_pool(cfg, ctx)
    scored = [n for n in ctx.rewards if n != RULE and n in ctx.scores.columns]
    if scored:  # how each reward judges the pool against gold, before anything is optimised
        offline_scores(ctx.scores, scored).to_csv(run_dir / "offline.csv", index=False)
    results = []
    for o in cfg.optimizers:
        module = module_of(o)
        if module.FAMILY == SAMPLE:  # cheap (seconds): recomputed every run
            log(f"[{o.kind}] curves and fits")
        results.append(module.run(o, ctx))
    results.sort(key=lambda r: r.family != SAMPLE)  # the sample-based first, each in config order
    study.stages.update(ctx.stages)
    for label, res in study.stages.items():
        copy_tree(res.path, run_dir / "stages" / label)
    write_results(run_dir, results)
    study.summary = build_report(run_dir)
    for line in track(run_dir, cfg.tracking, cfg.model_dump(mode="json")):
        log(f"[tracking] {line}")
    write_provenance(run_dir, config_text=config_text, seeds=[cfg.seed],
                     seconds=time.perf_counter() - t0)  # fmt: skip
    return study


def _score_pool(cfg: StudyConfig, ctx: StudyContext) -> pd.DataFrame:
    """The base policy's held-out pool (stage ``pool-bon``) scored by every reward that can be
    asked of it (stage ``scores``; the rule's column is ``gold``)."""
    pool = ctx.stage("pool-bon", "pool", stage_pool, shown_as="for best-of-n and normalisation",
                     sampling=cfg.sampling, task_cfg=cfg.task, policy=ctx.policy, split="bon",
                     n_prompts=cfg.pool.prompts, n_samples=cfg.pool.n, seed=cfg.seed)  # fmt: skip
    scored = [r for n, r in ctx.rewards.items() if n != RULE and r.pool]
    if not scored:
        return read_parquet(pool.path / "pool.parquet")
    sc = ctx.stage("scores", "scores", stage_scores, rewards=scored, pool=pool, task_cfg=cfg.task)
    return read_parquet(sc.path / "scores.parquet")


def build_rewards(
    cfg: StudyConfig, cache: Cache, device: str, log: Callable[[str], None] = print
) -> StudyContext:
    """The study's context: its base policy, preference pool and pairs, and every reward it lists
    (the rule always among them, `ctx.rewards`), built through `cache`; ``ctx.stages`` holds every
    stage used, under its run-folder label."""
    seed, pc = cfg.seed, cfg.preferences
    pol = cache.run(
        "policy", stage_policy, cfg=cfg.policy, task_cfg=cfg.task, seed=seed, device=device
    )
    if pc.file is not None:  # outside pairs, not the pool's
        prefs = cache.run(
            "preferences", stage_file_preferences, cfg=pc, task_cfg=cfg.task, seed=seed
        )
        used = {"policy": pol, "preferences": prefs}
    else:
        pref_pool = cache.run("pool", stage_pool, sampling=cfg.sampling, task_cfg=cfg.task,
                              policy=pol, split="preferences", n_prompts=pc.prompts,
                              n_samples=pc.samples_per_prompt, seed=seed,
                              shown_as="for preference pairs")  # fmt: skip
        prefs = cache.run("preferences", stage_preferences, cfg=pc, pool=pref_pool, seed=seed)
        used = {"policy": pol, "pool-preferences": pref_pool, "preferences": prefs}
    ctx = StudyContext(cfg.task.load(), cfg.task, seed, cache, pol, prefs, pc, cfg.sampling,
                       device=device, log=log, stages=used)  # fmt: skip
    for spec in cfg.rewards:
        for r in module_of(spec).build(spec, ctx):
            ctx.rewards[r.name] = r
    ctx.rewards.setdefault(RULE, rule_kind.build(rule_kind.Config(), ctx)[0])
    return ctx


def reward_table(rewards: dict[str, Reward]) -> pd.DataFrame:
    """``rewards.csv``: one row per reward (name, kind, parameters, isolation) and its metadata."""
    rows = [dict(reward=r.name, kind=r.kind, params=r.params, isolated=r.isolate, **r.meta)
            for r in rewards.values()]  # fmt: skip
    df = pd.DataFrame(rows)
    if "base" not in df:
        df["base"] = df.reward
    if "reducer" not in df:
        df["reducer"] = None
    df["base"] = df.base.fillna(df.reward)
    return df


def _member_table(stages: dict[str, StageResult]) -> pd.DataFrame:
    """``reward_models.csv``: the metrics of every trained reward-model member."""
    rows = []
    for label, res in stages.items():
        if res.name == "reward_model":
            met = json.loads((res.path / "metrics.json").read_text())
            rows.append({"stage": label, **{k: v for k, v in met.items() if k != "history"}})
    return pd.DataFrame(rows)
