"""The wiring of one study: base policy -> pools -> preferences -> rewards (each kind builds its
own stages) -> scores of the pool -> optimizers, each a cached stage, gathered into a run folder.

Every stage is a plain function of its inputs (config slices, upstream stages, the seed) writing
files into `out`; `Cache.run` keys it on exactly those inputs.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from rewardlab.cache import Cache, StageResult, copy_tree, exclusive_lock
from rewardlab.common.io import read_parquet, write_atomic
from rewardlab.config import PolicyConfig, PreferenceConfig, StudyConfig, TaskConfig, dump_config
from rewardlab.errors import RewardLabError
from rewardlab.inputs import check
from rewardlab.label.agreement import agreement
from rewardlab.models import (
    build_causal_lm,
    count_params,
    load_tokenizer,
    positions_for,
    resolve_device,
)
from rewardlab.optimize import KINDS as OPTIMIZERS
from rewardlab.optimize.base import OptimizerContext
from rewardlab.optimize.curves import trained_rows
from rewardlab.optimize.measurement import max_tokens
from rewardlab.policy import sample_rows, train_sft
from rewardlab.preferences import make_pairs, read_preference_file
from rewardlab.progress import bar
from rewardlab.report.build import build_report, write_results
from rewardlab.report.tracking import track
from rewardlab.rewards import KINDS, RULE, Reward, RewardContext
from rewardlab.rewards.base import columns_for
from rewardlab.rewards.guard import GuardedReward
from rewardlab.rewards.rule import Config as RuleConfig
from rewardlab.rewards.rule import build as rule_build
from rewardlab.seeding import prompt_uniforms, rng, seed_everything
from rewardlab.specs import ModelSpec, SamplingConfig
from rewardlab.tasks import Task, build_tokenizer, checked_gold


def split_prompts(task: Task, split: str, n: int, seed: int) -> list[str]:
    """`n` prompts of the stream (seed, "prompts", split); the splits sft, preferences, bon
    (held out: the pool and every measurement) and rl never share a stream."""
    return task.prompts(n, rng(seed, "prompts", split))


# ---------------------------------------------------------------- stages


def stage_policy(
    cfg: PolicyConfig, task_cfg: TaskConfig, seed: int, device: str, out: Path
) -> None:
    """Train the base policy on the task's demonstrations (or take a local model folder)."""
    task = task_cfg.load()
    g = seed_everything(seed, "policy")
    t0 = time.perf_counter()
    tok = load_tokenizer(cfg.model.path) if cfg.model.path else build_tokenizer(task.vocab)
    prompts = split_prompts(task, "sft", cfg.train_prompts, seed)
    demos = task.demonstrations(prompts, task_cfg.demo_noise, g)
    checked_gold(task, prompts[:8], demos[:8])  # the task's contract, checked before training
    longest = max(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    model = build_causal_lm(cfg.model, tok, positions_for(longest, task.max_new_tokens)).to(device)
    losses = train_sft(
        model, tok, prompts, demos, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, rng=g
    )
    model.cpu().save_pretrained(out)
    tok.save_pretrained(out)
    metrics = dict(
        params=count_params(model),
        demo_gold_mean=float(np.mean(checked_gold(task, prompts, demos))),
        sft_first_loss=losses[0] if losses else None,
        sft_final_loss=float(np.mean(losses[-20:])) if losses else None,
        steps=len(losses),
        seconds=time.perf_counter() - t0,
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))


def stage_pool(
    sampling: SamplingConfig,
    task_cfg: TaskConfig,
    policy: StageResult,
    split: str,
    n_prompts: int,
    n_samples: int,
    seed: int,
    out: Path,
) -> None:
    """Sample `n_samples` completions for each of `n_prompts` prompts of `split`; score gold.

    Writes ``pool.parquet``: prompt_id, prompt, sample_id, completion, logp (sum of sampled
    token log-probabilities), gold. The uniforms of prompt i's samples come from the stream
    (seed, "pool", split, i), one row per sample, and all rows are sampled together
    (`policy.sample_rows`, `sampling.batch_size` rows a pass), so a pool does not depend on the
    batch size.
    """
    task = task_cfg.load()
    seed_everything(seed, "pool", split)
    tok = load_tokenizer(policy.path)
    model = build_causal_lm(ModelSpec(path=str(policy.path)), tok)
    prompts = split_prompts(task, split, n_prompts, seed)
    limit = max_tokens(sampling, task)
    u = prompt_uniforms(seed, "pool", split, prompts=len(prompts), samples=n_samples, width=limit)
    rows = [p for p in prompts for _ in range(n_samples)]
    comps, logp = sample_rows(model, tok, rows, u, max_new_tokens=limit, desc=f"sample {split} pool",
                              temperature=sampling.temperature, batch_size=sampling.batch_size)  # fmt: skip
    df = pd.DataFrame(dict(prompt_id=np.repeat(np.arange(len(prompts)), n_samples), prompt=rows,
                           sample_id=np.tile(np.arange(n_samples), len(prompts)),
                           completion=comps, logp=logp))  # fmt: skip
    df["gold"] = checked_gold(task, df["prompt"].tolist(), df["completion"].tolist())
    df.to_parquet(out / "pool.parquet", index=False)


def stage_preferences(cfg: PreferenceConfig, pool: StageResult, seed: int, out: Path) -> None:
    """Label pairs of the pool by gold (stream (seed, "preferences")); write
    ``preferences.parquet`` and counts."""
    df = read_parquet(pool.path / "pool.parquet")
    prefs = make_pairs(df, cfg, rng(seed, "preferences"))
    prefs.to_parquet(out / "preferences.parquet", index=False)
    counts = prefs["split"].value_counts().to_dict()
    flipped = float((prefs["gold_chosen"] < prefs["gold_rejected"]).mean()) if len(prefs) else 0.0
    (out / "metrics.json").write_text(json.dumps(dict(pairs=counts, label_noise=flipped), indent=1))


LABELLERS_FILE = "labellers.csv"  # a preference file's labellers and their agreement with gold


def stage_file_preferences(
    cfg: PreferenceConfig, task_cfg: TaskConfig, seed: int, out: Path
) -> None:
    """Pairs read from the local file `cfg.file` (`preferences.read_preference_file`), split by
    prompt with the stream (seed, "preferences") unless it has a split column, gold-scored by the
    task so that accuracy by gold margin can be reported; ``preferences.parquet`` and counts, and
    for a file with a ``labeller`` column ``labellers.csv`` and ``labeller_pairs.csv``
    (`label.agreement`)."""
    prefs = read_preference_file(cfg.file, cfg.test_fraction, rng(seed, "preferences"))
    task = task_cfg.load()
    p = prefs.prompt.tolist()
    prefs.insert(3, "gold_chosen", checked_gold(task, p, prefs.chosen.tolist()))
    prefs.insert(4, "gold_rejected", checked_gold(task, p, prefs.rejected.tolist()))
    prefs.to_parquet(out / "preferences.parquet", index=False)
    if "labeller" in prefs:  # people's labels: how far each agrees with gold and with the others
        as_labels = [dict(kind="comparison", labeller=r.labeller, prompt=r.prompt, a=r.chosen,
                          b=r.rejected, choice="a", gold_a=r.gold_chosen, gold_b=r.gold_rejected)
                     for r in prefs.itertuples()]  # fmt: skip
        per, pairs = agreement(as_labels)
        per.to_csv(out / LABELLERS_FILE, index=False)
        pairs.to_csv(out / "labeller_pairs.csv", index=False)
    counts = prefs["split"].value_counts().to_dict()
    against = float((prefs.gold_chosen < prefs.gold_rejected).mean())
    (out / "metrics.json").write_text(
        json.dumps(dict(pairs=counts, label_noise=against, file=str(cfg.file)), indent=1)
    )


def stage_scores(rewards: list[Reward], pool: StageResult, task_cfg: TaskConfig, out: Path) -> None:
    """Score every completion of the pool with every reward (the rule's column is `gold`).

    Writes ``scores.parquet``: the pool's columns plus one column per reward. Each reward gets
    the task's per-prompt columns as keyword arguments, as under a TRL trainer; a reward that
    raises, returns a non-finite score or hangs stops with its name and the sample.
    """
    df = read_parquet(pool.path / "pool.parquet")
    p, c = df["prompt"].tolist(), df["completion"].tolist()
    prompts = df.groupby("prompt_id", sort=True)["prompt"].first()
    cols = columns_for(task_cfg.load(), prompts.tolist())  # per prompt -> per sample
    kw = {k: pd.Series(v, index=prompts.index)[df.prompt_id].tolist() for k, v in cols.items()}
    for r in bar(rewards, desc="score pool"):
        guarded = GuardedReward(r.fn, r.name, "stop", isolate=r.isolate)
        try:
            df[r.name] = np.asarray(guarded(p, c, **kw), dtype=float)
        finally:
            guarded.close()
    df.to_parquet(out / "scores.parquet", index=False)


# ---------------------------------------------------------------- the study


@dataclass
class Study:
    """A finished study: the run folder, the resolved config and every stage it used; its
    tables as DataFrames (`curves` and `measurements` read from the folder on use)."""

    run_dir: Path
    config: StudyConfig
    stages: dict[str, StageResult] = field(default_factory=dict)
    reward_models: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None

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
    while True:
        path = Path("runs") / f"{cfg.study}__s{cfg.seed}__{stamp}__{secrets.token_hex(3)}"
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


STAGES = ("policy", "pool", "preferences", "reward_model", "scores", "rl", "dpo")


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
    of every trained member), the curves and reports.
    """
    unknown = sorted(set(rebuild) - set(STAGES))
    if unknown:
        raise RewardLabError(
            f"--rebuild {', '.join(unknown)}: not a stage; the stages are {', '.join(STAGES)}"
        )
    check(cfg)  # every file the study names, before a folder or a stage is made
    cfg.task.load()  # a task file that fails to import fails here too
    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
    claim_run_dir(cfg, run_dir)
    with exclusive_lock(run_dir / OWNER_LOCK, timeout_s=OWNER_WAIT_S, what=f"run folder {run_dir}"):
        return _run_study(cfg, run_dir, Cache(cfg.cache_dir, log=log, rebuild=rebuild), log)


def _run_study(cfg: StudyConfig, run_dir: Path, cache: Cache, log: Callable[[str], None]) -> Study:
    write_atomic(run_dir / "config.yaml", dump_config(cfg))
    device = resolve_device(cfg.device)
    task = cfg.task.load()
    study = Study(run_dir, cfg)
    seed = cfg.seed

    rewards, rctx = build_rewards(cfg, cache, device, log)
    pol, prefs = rctx.policy, rctx.preferences
    study.stages.update(rctx.stages)
    study.reward_models = _member_table(rctx.stages)
    if len(study.reward_models):
        study.reward_models.to_csv(run_dir / "reward_models.csv", index=False)
    reward_table(rewards).to_csv(run_dir / "rewards.csv", index=False)

    bon_pool = cache.run("pool", stage_pool, sampling=cfg.sampling, task_cfg=cfg.task, policy=pol,
                         split="bon", n_prompts=cfg.pool.prompts, n_samples=cfg.pool.n, seed=seed,
                         shown_as="for best-of-n and normalisation")  # fmt: skip
    study.stages["pool-bon"] = bon_pool
    scored = [r for n, r in rewards.items() if n != RULE and r.pool]
    if scored:
        sc = cache.run("scores", stage_scores, rewards=scored, pool=bon_pool, task_cfg=cfg.task)
        study.stages["scores"] = sc
        scores = read_parquet(sc.path / "scores.parquet")
    else:
        scores = read_parquet(bon_pool.path / "pool.parquet")
    octx = OptimizerContext(
        task, cfg.task, seed, cache, pol, prefs, rewards, cfg.sampling,
        train_prompts=lambda n: split_prompts(task, "rl", n, seed),
        eval_prompts=lambda n: split_prompts(task, "bon", n, seed), scores=scores, device=device,
        split_prompts=lambda split, n: split_prompts(task, split, n, seed),
    )  # fmt: skip
    bon, trained = None, []
    for o in cfg.optimizers:
        module = OPTIMIZERS[o.kind]
        if module.FAMILY == "sample":  # cheap (seconds): recomputed every run
            log(f"[{o.kind}] curves and fits")
            bon = module.run(o, octx)
        else:
            trained += module.run(o, octx)
    study.stages.update(octx.stages)
    for label, res in study.stages.items():
        copy_tree(res.path, run_dir / "stages" / label)
    params = {n: r.params for n, r in rewards.items()}
    curves, detail, fits = trained_rows(trained, scores, params, seed)
    write_results(run_dir, bon, curves, detail, fits)
    study.summary = build_report(run_dir)
    for line in track(run_dir, cfg.tracking, cfg.model_dump(mode="json")):
        log(f"[tracking] {line}")
    return study


def build_rewards(
    cfg: StudyConfig, cache: Cache, device: str, log: Callable[[str], None] = print
) -> tuple[dict[str, Reward], RewardContext]:
    """The study's base policy, preference pool and pairs, and every reward it lists (the rule
    always among them), through `cache`; the context's ``stages`` holds every stage used, under
    its run-folder label."""
    task, seed, pc = cfg.task.load(), cfg.seed, cfg.preferences
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
    rctx = RewardContext(task, cfg.task, seed, cache, pol, prefs, device, log, preference_cfg=pc)
    rctx.stages.update(used)
    rewards = rctx.built
    for spec in cfg.rewards:
        for r in KINDS[spec.kind].build(spec, rctx):
            rewards[r.name] = r
    rewards.setdefault(RULE, rule_build(RuleConfig(), rctx)[0])
    return rewards, rctx


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
