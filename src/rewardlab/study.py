"""The stage graph of one study: base policy -> sample pools -> preferences -> reward models ->
scores, each a cached stage, gathered into a run folder.

Every stage is a plain function from (its slice of the config, its input folders) to files in an
output folder; `run_study` wires them through the cache.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rewardlab.cache import Cache, StageResult, link_tree, write_atomic
from rewardlab.config import (
    ModelSpec,
    PolicyConfig,
    PreferenceConfig,
    RewardModelConfig,
    SamplingConfig,
    StudyConfig,
    dump_config,
)
from rewardlab.errors import RewardLabError
from rewardlab.measure import fit_rl
from rewardlab.models import build_causal_lm, build_reward_model, count_params, load_tokenizer
from rewardlab.optimize.best_of_n import CURVE_COLUMNS, RULE, run_best_of_n
from rewardlab.optimize.rl import train_rl
from rewardlab.policy import sample, train_sft
from rewardlab.preferences import make_pairs
from rewardlab.progress import bar
from rewardlab.report.build import build_report, write_results
from rewardlab.rewards import EnsembleReward, RuleReward
from rewardlab.rewards.ensemble import reduce_scores
from rewardlab.rewards.learned import NORM_FILE, LearnedReward, train_reward_model
from rewardlab.seeding import seed_everything
from rewardlab.tasks import Task, build_tokenizer, checked_gold, load_task

SPLITS = {"sft": 1, "preferences": 2, "bon": 3, "rl": 4}  # independent prompt streams per use
STAGE_VERSION = 2  # bump when a stage's output changes for the same config


def split_prompts(task: Task, split: str, n: int, seed: int) -> list[str]:
    """`n` prompts of the stream `split`, drawn from ``default_rng([seed, SPLITS[split]])``."""
    return task.prompts(n, np.random.default_rng([seed, SPLITS[split]]))


# ---------------------------------------------------------------- stages


def stage_policy(cfg: PolicyConfig, task: Task, demo_noise: float, seed: int, out: Path) -> None:
    """Train the base policy on the task's demonstrations (or take a local model folder)."""
    rng = seed_everything(seed)
    t0 = time.perf_counter()
    if cfg.model.path:
        tok = load_tokenizer(cfg.model.path)
    else:
        tok = build_tokenizer(task.vocab)
    model = build_causal_lm(cfg.model, tok)
    prompts = split_prompts(task, "sft", cfg.train_prompts, seed)
    demos = task.demonstrations(prompts, demo_noise, rng)
    losses = train_sft(
        model, tok, prompts, demos, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, rng=rng
    )
    model.save_pretrained(out)
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
    cfg: SamplingConfig,
    task: Task,
    policy_dir: Path,
    split: str,
    n_prompts: int,
    n_samples: int,
    seed: int,
    out: Path,
) -> None:
    """Sample `n_samples` completions for each of `n_prompts` prompts of `split`; score gold.

    Writes ``pool.parquet``: prompt_id, prompt, sample_id, completion, logp (sum of sampled
    token log-probabilities), gold. Prompt i is sampled with its own torch generator, seeded by
    (seed, split, i), so a pool does not depend on the batch size.
    """
    seed_everything(seed)
    tok = load_tokenizer(policy_dir)
    model = build_causal_lm(ModelSpec(path=str(policy_dir)), tok)
    prompts = split_prompts(task, split, n_prompts, seed)
    max_new = cfg.max_new_tokens or task.max_new_tokens
    frames = []
    for i, p in enumerate(bar(prompts, desc=f"sample {split} pool")):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + SPLITS[split] * 100_003 + i)
        comps, logps = [], []
        for start in range(0, n_samples, cfg.batch_size):
            c, lp = sample(
                model,
                tok,
                p,
                min(cfg.batch_size, n_samples - start),
                max_new_tokens=max_new,
                temperature=cfg.temperature,
                generator=gen,
            )
            comps += c
            logps.append(lp)
        frames.append(
            pd.DataFrame(
                dict(
                    prompt_id=i,
                    prompt=p,
                    sample_id=np.arange(n_samples),
                    completion=comps,
                    logp=np.concatenate(logps),
                )
            )
        )
    pool = pd.concat(frames, ignore_index=True)
    pool["gold"] = checked_gold(task, pool["prompt"].tolist(), pool["completion"].tolist())
    pool.to_parquet(out / "pool.parquet", index=False)


def stage_preferences(cfg: PreferenceConfig, pool_dir: Path, seed: int, out: Path) -> None:
    """Label pairs of the pool by gold; write ``preferences.parquet`` and counts."""
    pool = read_parquet(pool_dir / "pool.parquet")
    prefs = make_pairs(pool, cfg, np.random.default_rng([seed, 7]))
    prefs.to_parquet(out / "preferences.parquet", index=False)
    counts = prefs["split"].value_counts().to_dict()
    flipped = float((prefs["gold_chosen"] < prefs["gold_rejected"]).mean()) if len(prefs) else 0.0
    (out / "metrics.json").write_text(json.dumps(dict(pairs=counts, label_noise=flipped), indent=1))


def stage_reward_model(
    cfg: RewardModelConfig,
    member: int,
    task: Task,
    prefs_dir: Path,
    policy_dir: Path,
    seed: int,
    out: Path,
) -> None:
    """Train one member of reward model `cfg` with seed ``seed + member``."""
    rng = seed_everything(seed + member)
    prefs = read_parquet(prefs_dir / "preferences.parquet")
    train, test = prefs[prefs.split == "train"], prefs[prefs.split == "test"]
    if cfg.train_pairs is not None:
        if cfg.train_pairs > len(train):
            raise RewardLabError(
                f"reward model {cfg.name!r}: train_pairs={cfg.train_pairs} but the preference "
                f"data has only {len(train)} training pairs"
            )
        train = train.iloc[: cfg.train_pairs]
    tok = load_tokenizer(policy_dir) if (cfg.init_from_policy or cfg.model.path) else None
    tok = tok or build_tokenizer(task.vocab)
    model = build_reward_model(
        cfg.model, tok, init_from=policy_dir if cfg.init_from_policy else None
    )
    model.config.pad_token_id = tok.pad_token_id
    t0 = time.perf_counter()
    metrics = train_reward_model(
        model, tok, train, test, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, rng=rng
    )
    metrics.update(params=count_params(model), seconds=time.perf_counter() - t0, member=member)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / NORM_FILE).write_text(
        json.dumps({k: metrics[k] for k in ("norm_mean", "norm_std")}, indent=1)
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))


def stage_scores(
    rms: dict[str, list[Path]], uwo_lambda: dict[str, float], pool_dir: Path, out: Path
) -> None:
    """Score every completion of the pool with every reward model (standardised scores).

    Writes ``scores.parquet``: the pool's columns plus one column per reward: a single model's
    name, or for an ensemble ``name/mean``, ``name/min``, ``name/uwo`` (and each member).
    """
    pool = read_parquet(pool_dir / "pool.parquet")
    p, c = pool["prompt"].tolist(), pool["completion"].tolist()
    for name, members in bar(rms.items(), desc="score pool"):
        s = np.array([LearnedReward(m)(p, c) for m in members])  # (k, B)
        bad = np.argwhere(~np.isfinite(s))
        if len(bad):
            k, i = bad[0]
            raise RewardLabError(
                f"reward model {name!r} (member {k}, {members[k]}) gave a non-finite score "
                f"{s[k, i]} on sample {i} of the pool (prompt {p[i]!r}, completion {c[i]!r})"
            )
        if len(members) == 1:
            pool[name] = s[0]
            continue
        for i in range(len(members)):
            pool[f"{name}/m{i}"] = s[i]
        for red in ("mean", "min", "uwo"):
            pool[f"{name}/{red}"] = reduce_scores(s, red, uwo_lambda[name])
    pool.to_parquet(out / "scores.parquet", index=False)


# ---------------------------------------------------------------- helpers


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet artifact; a broken file is a `RewardLabError` naming it."""
    try:
        return pd.read_parquet(path)
    except Exception as exc:
        raise RewardLabError(
            f"artifact {path} is unreadable ({type(exc).__name__}: {exc}); delete its folder "
            "to recompute it"
        ) from None


# ---------------------------------------------------------------- the study


@dataclass
class Study:
    """A finished study: the run folder, the resolved config and every stage it used."""

    run_dir: Path
    config: StudyConfig
    stages: dict[str, StageResult] = field(default_factory=dict)
    reward_models: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None


def default_run_dir(cfg: StudyConfig) -> Path:
    """``runs/<study>-<YYYYmmdd-HHMMSS>``."""
    return Path("runs") / f"{cfg.study}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_study(
    cfg: StudyConfig, run_dir: Path | None = None, log: Callable[[str], None] = print
) -> Study:
    """Run (or resume) every stage of `cfg`; mirror their folders into `run_dir`.

    The run folder holds ``config.yaml`` (fully resolved), ``stages/<label>/`` (hard links to the
    cached artifacts) and ``reward_models.csv`` (accuracy and size of every reward model).
    """
    run_dir = Path(run_dir or default_run_dir(cfg))
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.yaml", dump_config(cfg))
    task = load_task(cfg.task.name, cfg.task.params)
    cache = Cache(cfg.cache_dir, log=log)
    study = Study(run_dir, cfg)
    v = {"version": STAGE_VERSION, "seed": cfg.seed}

    def run(label: str, name: str, key: dict, build: Callable[[Path], None]) -> StageResult:
        res = cache.stage(name, {**v, **key}, build)
        link_tree(res.path, run_dir / "stages" / label)
        study.stages[label] = res
        return res

    task_key = cfg.task.model_dump()
    pol = run(
        "policy",
        "policy",
        {"task": task_key, "policy": cfg.policy.model_dump()},
        lambda out: stage_policy(cfg.policy, task, cfg.task.demo_noise, cfg.seed, out),
    )
    pc = cfg.preferences
    samp = cfg.sampling.model_dump()
    pref_pool = run(
        "pool-preferences",
        "pool",
        {"policy": pol.hash, "task": task_key, "sampling": samp, "split": "preferences",
         "prompts": pc.prompts, "n": pc.samples_per_prompt},
        lambda out: stage_pool(
            cfg.sampling, task, pol.path, "preferences", pc.prompts, pc.samples_per_prompt,
            cfg.seed, out,
        ),
    )  # fmt: skip
    prefs = run(
        "preferences",
        "preferences",
        {"pool": pref_pool.hash, "preferences": pc.model_dump()},
        lambda out: stage_preferences(pc, pref_pool.path, cfg.seed, out),
    )
    rm_dirs: dict[str, list[Path]] = {}
    rows = []
    for rm in cfg.reward_models:
        key = rm.model_dump(exclude={"name", "members", "uwo_lambda"})
        if rm.init_from_policy:
            key["policy"] = pol.hash
        rm_dirs[rm.name] = []
        for m in range(rm.members):
            label = rm.name if rm.members == 1 else f"{rm.name}-m{m}"
            res = run(
                f"rm-{label}",
                "reward_model",
                {"preferences": prefs.hash, "task": task_key, "rm": key, "member": m},
                lambda out, rm=rm, m=m: stage_reward_model(
                    rm, m, task, prefs.path, pol.path, cfg.seed, out
                ),
            )
            rm_dirs[rm.name].append(res.path)
            met = json.loads((res.path / "metrics.json").read_text())
            rows.append({"reward": rm.name, "member": m, **met})
    study.reward_models = pd.DataFrame(rows)
    if rows:
        study.reward_models.to_csv(run_dir / "reward_models.csv", index=False)
    bon_pool = run(
        "pool-bon",
        "pool",
        {"policy": pol.hash, "task": task_key, "sampling": samp, "split": "bon",
         "prompts": cfg.bon.prompts, "n": cfg.bon.n},
        lambda out: stage_pool(
            cfg.sampling, task, pol.path, "bon", cfg.bon.prompts, cfg.bon.n, cfg.seed, out
        ),
    )  # fmt: skip
    if rm_dirs:
        run(
            "scores",
            "scores",
            {"pool": bon_pool.hash, "rms": {k: [p.name for p in v] for k, v in rm_dirs.items()},
             "uwo": {r.name: r.uwo_lambda for r in cfg.reward_models}},
            lambda out: stage_scores(
                rm_dirs, {r.name: r.uwo_lambda for r in cfg.reward_models}, bon_pool.path, out
            ),
        )  # fmt: skip
    # best-of-n of every reward (and the rule) on the held-out pool: cheap, so always recomputed
    scores = read_parquet(
        (study.stages.get("scores") or bon_pool).path
        / ("scores.parquet" if rm_dirs else "pool.parquet")
    )
    rewards = {}
    for rm in cfg.reward_models:
        params = int(study.reward_models.loc[study.reward_models.reward == rm.name, "params"].sum())
        names = [rm.name] if rm.members == 1 else [f"{rm.name}/{r}" for r in ("mean", "min", "uwo")]
        rewards.update({n: params for n in names})
    log("[best-of-n] curves and fits")
    bon = run_best_of_n(scores, rewards, seed=cfg.seed, n_boot=cfg.bon.n_boot)
    rl_curves, rl_fits = None, None
    if cfg.rl is not None and cfg.rl.rewards:
        rl_curves, rl_fits = _run_rl(cfg, task, cache, run, pol, rm_dirs, scores, rewards, run_dir)
    write_results(run_dir, bon, rl_curves, rl_fits)
    study.summary = build_report(run_dir)
    return study


def make_reward(name: str, task: Task, rm_dirs: dict[str, list[Path]], lambdas: dict[str, float]):
    """The reward function called `name` in a study: 'rule', a reward model, or 'rm/reducer'."""
    if name == RULE:
        return RuleReward(task)
    base, _, reducer = name.partition("/")
    members = [LearnedReward(p) for p in rm_dirs[base]]
    if not reducer:
        return members[0]
    return EnsembleReward(members, reducer, lambdas[base])


def _run_rl(cfg, task, cache, run, pol, rm_dirs, scores, params, run_dir):
    """One RL stage per reward in cfg.rl.rewards; rows for curves.csv and an RL fit per reward."""
    rl = cfg.rl
    train_prompts = split_prompts(task, "rl", rl.steps * rl.prompts_per_step, cfg.seed)
    eval_prompts = split_prompts(task, "bon", rl.measure_prompts, cfg.seed)  # held-out
    gold_ref = scores["gold"].to_numpy()
    lambdas = {r.name: r.uwo_lambda for r in cfg.reward_models}
    rows, details, fits = [], [], {}
    for name in rl.rewards:
        base = name.partition("/")[0]
        deps = "rule" if name == RULE else [p.name for p in rm_dirs[base]]
        key = {"version": STAGE_VERSION, "seed": cfg.seed, "policy": pol.hash, "task": cfg.task.model_dump(),
               "reward": name, "reward_stages": deps, "rl": rl.model_dump(exclude={"rewards"})}  # fmt: skip
        if name != RULE and "/uwo" in name:
            key["uwo_lambda"] = lambdas[base]
        reward = make_reward(name, task, rm_dirs, lambdas)
        work = cache.work_dir("rl", key)
        res = run(
            f"rl-{name.replace('/', '-')}",  # the label `checkpoint` paths below refer to
            "rl",
            key,  # already holds version and seed, as `run` would add them
            lambda out, reward=reward, name=name, work=work: train_rl(
                rl, task, pol.path, reward, name, train_prompts, eval_prompts, cfg.seed, work, out
            ),
        )
        c = pd.read_csv(res.path / "curve.csv").sort_values("step")
        proxy_ref = gold_ref if name == RULE else scores[name].to_numpy()
        g_sd, p_sd = gold_ref.std() or 1.0, proxy_ref.std() or 1.0
        c["gold"] = (c.gold_raw - gold_ref.mean()) / g_sd
        c["proxy"] = (c.proxy_raw - proxy_ref.mean()) / p_sd
        c["gold_se_norm"], c["proxy_se_norm"] = c.gold_se / g_sd, c.proxy_se / p_sd
        c["sqrt_kl"] = np.sqrt(c.kl.clip(lower=0))
        c["reward"] = name
        label = f"rl-{name.replace('/', '-')}"
        c["checkpoint"] = [  # the policy measured at each step, inside the run folder
            "stages/policy" if st == 0 else f"stages/{label}/checkpoints/step-{st:05d}"
            for st in c.step
        ]
        details.append(c)
        rows.append(
            pd.DataFrame(
                dict(optimizer="rl", reward=name, reward_params=params.get(name, 0), seed=cfg.seed,
                     step=c.step, kl=c.kl, sqrt_kl=c.sqrt_kl, proxy=c.proxy, gold=c.gold,
                     proxy_raw=c.proxy_raw, gold_raw=c.gold_raw)
            )
        )  # fmt: skip
        fits[name] = fit_rl(c.sqrt_kl.to_numpy(), c.gold.to_numpy(), n_boot=0)
    pd.concat(details, ignore_index=True).to_csv(run_dir / "rl_measurements.csv", index=False)
    return pd.concat(rows, ignore_index=True)[CURVE_COLUMNS], fits
