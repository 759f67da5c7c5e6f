"""RL against any reward of the study with TRL's online trainers (kinds `grpo`, `rloo`), gold
tracked all the way by the shared measurement.

The trainer optimises the reward it is given; `measurement.Measure` measures, every
`measure_every` steps and independently of what the trainer logs, on held-out prompts with fresh
samples: KL(pi || pi_init), gold and proxy. Trainer checkpoints are kept at each measurement, so
the peak-gold policy can be recovered and a killed run resumes from its last checkpoint.
Gao et al. 2022 use no KL penalty (beta = 0), the default.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
from pydantic import Field, model_validator

from rewardlab.cache import StageResult
from rewardlab.detect import DETECTORS, ONLINE
from rewardlab.errors import RewardLabError
from rewardlab.optimize.curves import CURVE_FILE, TRAINED, OptimizerResult, Trained, trained_result
from rewardlab.pool import max_tokens
from rewardlab.progress import progress_shown
from rewardlab.rewards.base import Reward, columns_for
from rewardlab.rewards.guard import GuardedReward
from rewardlab.seeding import seed_everything
from rewardlab.specs import SamplingConfig, Strict

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext

FAMILY = TRAINED
# transformers deprecates `gradient_checkpointing` in favour of a new name that TRL does not use yet
warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)

STAGES = ("rl",)  # the cache stages it builds (`rewardlab run --rebuild` names them)


class EarlyStop(Strict):
    """Stop RL when a detector of `rewardlab.detect` alarms on the measurements so far."""

    detector: Literal[ONLINE] = Field(description="the detector: " + ", ".join(ONLINE))
    threshold: float | None = Field(
        None, description="its alarm threshold; null: the detector's default ("
        + ", ".join(f"{k} {v[1]:g}" for k, v in DETECTORS.items()) + ")",
    )  # fmt: skip

    def rule(self) -> tuple[str, float]:
        """(detector, threshold), the default threshold filled in."""
        default = DETECTORS[self.detector][1]
        return self.detector, default if self.threshold is None else self.threshold


class Config(Strict):
    """GRPO or RLOO (TRL) against rewards of the study, from the base policy."""

    kind: Literal["grpo", "rloo"] = Field("grpo", description="TRL trainer: grpo or rloo")
    rewards: list[str] = Field(
        default_factory=list, description="names of the rewards to optimise, one run each"
    )
    steps: int = Field(100, ge=1, description="optimizer steps (the cap, when kl_budget is set)")
    kl_budget: float | None = Field(
        None, gt=0, description="stop at the first measurement whose KL(pi || pi_init) (k1, nats) "
        "reaches this; null: run all the steps",
    )  # fmt: skip
    monitor: str | None = Field(
        None, description="a second reward of the study scored on every measurement's samples "
        "beside the proxy (e.g. a reward model trained on other pairs): the divergence "
        "detector's input; null: none",
    )  # fmt: skip
    early_stop: EarlyStop | None = Field(
        None, description="stop at the first measurement at which this detector alarms "
        "(why: stop.json in the stage); null: never",
    )  # fmt: skip
    lr: float = Field(1e-3, gt=0, description="constant learning rate")
    beta: float = Field(0.0, ge=0, description="KL penalty coefficient of the trainer")
    prompts_per_step: int = Field(8, ge=1, description="prompts in each step's batch")
    generations: int = Field(8, ge=2, description="completions per prompt (the group)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the trainer")
    measure_every: int = Field(10, ge=1, description="steps between measurements and checkpoints")
    measure_prompts: int = Field(32, ge=2, description="held-out prompts of each measurement")
    measure_samples: int = Field(8, ge=1, description="fresh samples per prompt per measurement")
    on_reward_error: Literal["stop", "skip"] = Field(
        "stop", description="a reward that raises or returns NaN: stop the run, or skip the sample"
    )
    reward_timeout_s: float = Field(
        120.0, gt=0, description="a reward run in its own process slower than this stops the run"
    )
    refresh_every: int | None = Field(
        None, ge=1, description="retrain the (learned) reward every this many steps on its data "
        "plus the current policy's samples (optimize.refresh); null: never",
    )  # fmt: skip
    refresh_prompts: int = Field(16, ge=1, description="prompts sampled at each refresh")
    refresh_samples: int = Field(4, ge=2, description="samples per prompt at each refresh")

    def cache_key(self) -> dict:
        """The fields that key the stage; an unset KL budget, early stop or monitor keys as
        before they existed."""
        d = self.model_dump(mode="json")
        for k in ("kl_budget", "early_stop", "monitor"):
            if d[k] is None:
                del d[k]
        return d

    @model_validator(mode="after")
    def _refresh_fits(self) -> Config:
        if self.refresh_every is not None and self.refresh_every >= self.steps:
            raise ValueError(
                f"refresh_every={self.refresh_every} is not shorter than the run (steps="
                f"{self.steps}): the reward would never be refreshed"
            )
        return self


def stage_rl(
    cfg: Config,
    reward: Reward,
    policy: StageResult,
    task_cfg,
    sampling: SamplingConfig,
    train_prompts: list[str],
    eval_prompts: list[str],
    seed: int,
    device: str,
    work: Path,
    out: Path,
    refresh_prompts: list[str] | None = None,
    monitor: Reward | None = None,
) -> None:
    """Run GRPO or RLOO on the base policy against `reward` (`monitor` scored beside it at each
    measurement, and an ensemble's members' disagreement); state in `work` (resumable); the
    artifact in `out` (`trainer.train_and_keep`) plus rewards.json (calls, skipped samples), and
    with `cfg.refresh_every` the reward refreshed on `refresh_prompts` (`optimize.refresh`).

    The training dataset holds the prompts and the task's per-prompt columns, which TRL hands to
    the reward as keyword arguments with its own (``completion_ids``, ``trainer_state``, ...).
    """
    from transformers import AutoModelForCausalLM

    from rewardlab.models import load_tokenizer
    from rewardlab.optimize.measurement import STOP_FILE, Measure
    from rewardlab.optimize.refresh import LOG_FILE, SAMPLES_FILE, Refresh
    from rewardlab.optimize.trainer import train_and_keep

    task = task_cfg.load()
    seed_everything(seed, "rl", cfg.kind, reward.name)
    show = progress_shown()
    work.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(policy.path)
    model = AutoModelForCausalLM.from_pretrained(policy.path, local_files_only=True)
    init = (
        AutoModelForCausalLM.from_pretrained(policy.path, local_files_only=True).to(device).eval()
    )
    guarded = GuardedReward(reward.fn, reward.name, cfg.on_reward_error, cfg.reward_timeout_s,
                            isolate=reward.isolate)  # fmt: skip
    proxy = guarded  # a reward people give is measured by its stand-in (none: no proxy)
    if not reward.pool:
        sub = reward.stand_in
        proxy = (
            GuardedReward(sub.fn, sub.name, "stop", cfg.reward_timeout_s, sub.isolate)
            if sub
            else None
        )
    watch = (GuardedReward(monitor.fn, monitor.name, "stop", cfg.reward_timeout_s, monitor.isolate)
             if monitor is not None else None)  # fmt: skip
    measure = Measure(
        cfg.measure_every, work / CURVE_FILE, init_model=init, tok=tok, task=task,
        sampling=sampling, prompts=eval_prompts, samples=cfg.measure_samples, reward=proxy,
        seed=seed, columns=columns_for(task, eval_prompts), stop_kl=cfg.kl_budget,
        alarm=cfg.early_stop.rule() if cfg.early_stop else None,
        monitor=watch,
        members=getattr(reward.fn, "members", None),  # an ensemble's: their disagreement
    )  # fmt: skip
    callbacks = [measure]  # measure first: a step's measurement uses the reward of that step
    if cfg.refresh_every:
        callbacks.append(Refresh(cfg.refresh_every, reward, guarded, work, tok=tok, task=task,
                                 prompts=refresh_prompts, samples=cfg.refresh_samples,
                                 limit=max_tokens(sampling, task),
                                 temperature=sampling.temperature, seed=seed))  # fmt: skip
    trainer = _trainer(cfg, model, tok, guarded, callbacks, task, sampling, train_prompts, seed,
                       device, work, show)  # fmt: skip
    try:
        train_and_keep(trainer, work, out, tok, desc=f"{cfg.kind} {reward.name}")
    finally:
        guarded.close()
        if watch is not None:
            watch.close()
    for f in (LOG_FILE, SAMPLES_FILE, STOP_FILE):
        if (work / f).is_file():
            shutil.copy2(work / f, out / f)
    report = getattr(reward.fn, "report", None)  # a human reward: its requests and waits
    (out / "rewards.json").write_text(json.dumps(
        {"reward": reward.name, "calls": guarded.calls, "skipped": guarded.skipped,
         **({"requests": report()} if report else {})}, indent=1))  # fmt: skip


def _trainer(cfg: Config, model, tok, reward_fn, callbacks, task, sampling: SamplingConfig,
             train_prompts: list[str], seed: int, device: str, work: Path, show: bool):  # fmt: skip
    """TRL's GRPO or RLOO trainer of `model` against `reward_fn` on `train_prompts` (with the
    task's per-prompt columns), logs quiet unless progress is `show`n."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    from rewardlab.optimize.trainer import common_args, quiet
    from rewardlab.policy import never_sampled

    TrlConfig, Trainer = (
        (GRPOConfig, GRPOTrainer) if cfg.kind == "grpo" else (RLOOConfig, RLOOTrainer)
    )
    args = TrlConfig(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=cfg.prompts_per_step * cfg.generations,
        num_generations=cfg.generations,
        max_completion_length=max_tokens(sampling, task),
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        beta=cfg.beta,
        temperature=cfg.temperature,
        max_steps=cfg.steps,
        logging_steps=cfg.measure_every,
        seed=seed,
        disable_tqdm=not show,
        generation_kwargs={"suppress_tokens": never_sampled(tok)},  # the policy never emits these
        **common_args(device),
    )
    dataset = Dataset.from_dict({"prompt": train_prompts, **columns_for(task, train_prompts)})
    trainer = Trainer(model=model, reward_funcs=reward_fn, args=args, train_dataset=dataset,
                      processing_class=tok, callbacks=callbacks)  # fmt: skip
    quiet(trainer, show)
    return trainer


def run(cfg: Config, ctx: StudyContext) -> OptimizerResult:
    """One resumable stage per reward in `cfg.rewards`."""
    from rewardlab.optimize.refresh import LOG_FILE

    out = []
    train = ctx.prompts("rl", cfg.steps * cfg.prompts_per_step)
    held_out = ctx.prompts("bon", cfg.measure_prompts)
    extra = {}
    if cfg.refresh_every:
        extra["refresh_prompts"] = ctx.prompts("refresh", cfg.refresh_prompts)
        fixed = [n for n in cfg.rewards if ctx.rewards[n].refresh is None]
        if fixed:
            raise RewardLabError(
                f"{cfg.kind}: refresh_every is set, but {fixed} cannot be retrained (refresh "
                "works for kinds learned, classifier and demos)"
            )
    alarm = cfg.early_stop.detector if cfg.early_stop else None
    if alarm == "divergence" and cfg.monitor is None:
        raise RewardLabError(f"{cfg.kind}: early_stop on divergence needs a monitor reward")
    if alarm == "ensemble_disagreement":
        lone = [n for n in cfg.rewards if not getattr(ctx.rewards[n].fn, "members", None)]
        if lone:
            raise RewardLabError(f"{cfg.kind}: early_stop on ensemble_disagreement needs "
                                 f"ensemble rewards; {lone} are not")  # fmt: skip
    if cfg.monitor is not None:
        if cfg.monitor not in ctx.rewards or not ctx.rewards[cfg.monitor].pool:
            raise RewardLabError(f"{cfg.kind}: monitor {cfg.monitor!r} is not a reward of the "
                                 "study that scores samples")  # fmt: skip
        extra["monitor"] = ctx.rewards[cfg.monitor]
    for name in cfg.rewards:
        reward = ctx.rewards[name]
        label = f"{cfg.kind}-{name.replace('/', '-')}"
        res = ctx.stage(label, "rl", stage_rl, resumable=True,
                        cfg=cfg.model_copy(update={"rewards": []}),
                        reward=reward, policy=ctx.policy, task_cfg=ctx.task_cfg,
                        sampling=ctx.sampling, train_prompts=train, eval_prompts=held_out,
                        seed=ctx.seed, device=ctx.device, **extra)  # fmt: skip
        if (res.path / LOG_FILE).is_file():  # the refreshed models, named in the run folder
            for e in json.loads((res.path / LOG_FILE).read_text()):
                ctx.stages[f"{label}-refresh-{e['step']}"] = StageResult(
                    "reward_model", Path(e["path"]), e["stage"], False, 0.0
                )
        raw = pd.read_csv(res.path / CURVE_FILE)
        proxy = name if reward.pool else (reward.stand_in.name if reward.stand_in else None)
        out.append(Trained(cfg.kind, name, proxy, label, raw, beta=cfg.beta))
    return trained_result(out, ctx)
