"""Direct alignment on the study's preference pairs with TRL's `DPOTrainer` (kind `dpo`):
DPO (Rafailov et al. 2023) or IPO (Azar et al. 2023) as its `loss_type`, gold and KL measured
along training by the shared measurement, as for RL.

DPO minimises  -log sigmoid(beta * [(log pi(y_c|x) - log pi_ref(y_c|x)) - (log pi(y_r|x) -
log pi_ref(y_r|x))]);  IPO the squared distance of that log-ratio difference from 1/(2 beta).
There is no separate proxy reward: DPO's implicit reward is beta * log pi/pi_ref, whose mean over
the policy's own samples is beta * KL. Rafailov et al. 2024 (*Scaling Laws for Reward Model
Overoptimization in Direct Alignment Algorithms*) find that gold rises then falls with KL, often
within the first epoch; `track` names a reward of the study to report as the proxy alongside.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
from pydantic import Field

from rewardlab.cache import StageResult
from rewardlab.optimize.curves import CURVE_FILE, TRAINED, OptimizerResult, Trained, trained_result
from rewardlab.preferences import split_pairs
from rewardlab.progress import progress_shown
from rewardlab.rewards.base import Reward, columns_for
from rewardlab.seeding import seed_everything
from rewardlab.specs import SamplingConfig, Strict

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext

FAMILY = TRAINED
ALGORITHMS = {"sigmoid": "dpo", "ipo": "ipo"}  # the `optimizer` column of each loss's curves
DATA = "preferences"  # the `reward` column of DPO's curves: it learns from the pairs directly
warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)

STAGES = ("dpo",)  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(Strict):
    """DPO or IPO on the study's training preference pairs, from the base policy."""

    kind: Literal["dpo"] = Field("dpo", description="direct alignment with TRL's DPOTrainer")
    loss_type: Literal["sigmoid", "ipo"] = Field(
        "sigmoid", description="sigmoid: DPO; ipo: IPO (TRL's loss_type)"
    )
    beta: float = Field(0.1, gt=0, description="strength of the implicit KL regularisation")
    epochs: int = Field(1, ge=1, description="passes over the training pairs")
    train_pairs: int | None = Field(None, ge=1, description="use the first N training pairs")
    lr: float = Field(1e-4, gt=0, description="constant learning rate")
    batch_size: int = Field(64, ge=1, description="pairs per optimizer step")
    measure_every: int = Field(10, ge=1, description="steps between measurements and checkpoints")
    measure_prompts: int = Field(32, ge=2, description="held-out prompts of each measurement")
    measure_samples: int = Field(8, ge=1, description="fresh samples per prompt per measurement")
    track: str | None = Field(None, description="a reward of the study reported as the proxy")


def pairs_for_dpo(prefs: pd.DataFrame) -> pd.DataFrame:
    """TRL's layout from the lab's pairs: completions follow the prompt after a space and end in
    ``<eos>``, so TRL tokenises ``<bos> x y <eos>`` exactly as the lab's models read it."""
    eos = " <eos>"
    return pd.DataFrame(
        dict(prompt=prefs.prompt, chosen=(" " + prefs.chosen).str.rstrip() + eos,
             rejected=(" " + prefs.rejected).str.rstrip() + eos)
    )  # fmt: skip


def stage_dpo(
    cfg: Config,
    track: Reward | None,
    policy: StageResult,
    preferences: StageResult,
    task_cfg,
    sampling: SamplingConfig,
    eval_prompts: list[str],
    seed: int,
    device: str,
    work: Path,
    out: Path,
) -> None:
    """Train with `DPOTrainer` (reference = the base policy, loaded from its folder); state in
    `work` (resumable), the artifact in `out` (`trainer.train_and_keep`)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from rewardlab.models import load_tokenizer
    from rewardlab.optimize.measurement import Measure
    from rewardlab.optimize.trainer import common_args, quiet, train_and_keep
    from rewardlab.rewards.guard import GuardedReward

    task = task_cfg.load()
    seed_everything(seed, "dpo", cfg.loss_type)
    train, _ = split_pairs(preferences, cfg.train_pairs, "dpo")
    show = progress_shown()
    work.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(policy.path)
    load = lambda: AutoModelForCausalLM.from_pretrained(policy.path, local_files_only=True)  # noqa: E731
    model, ref, init = load(), load(), load().to(device).eval()
    steps = cfg.epochs * math.ceil(len(train) / cfg.batch_size)
    args = DPOConfig(
        output_dir=str(work / "trainer"),
        loss_type=[cfg.loss_type],
        beta=cfg.beta,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        max_steps=steps,
        max_length=None,
        logging_steps=cfg.measure_every,
        seed=seed,
        disable_tqdm=not show,
        dataloader_drop_last=False,
        **common_args(device),
    )
    guarded = GuardedReward(track.fn, track.name, isolate=track.isolate) if track else None
    measure = Measure(
        cfg.measure_every, work / CURVE_FILE, init_model=init, tok=tok, task=task,
        sampling=sampling, prompts=eval_prompts, samples=cfg.measure_samples, reward=guarded,
        seed=seed, columns=columns_for(task, eval_prompts),
    )  # fmt: skip
    trainer = DPOTrainer(model=model, ref_model=ref, args=args,
                         train_dataset=Dataset.from_pandas(pairs_for_dpo(train), preserve_index=False),
                         processing_class=tok, callbacks=[measure])  # fmt: skip
    quiet(trainer, show)
    try:
        train_and_keep(trainer, work, out, tok, desc=f"dpo {cfg.loss_type}")
    finally:
        if guarded:
            guarded.close()


def run(cfg: Config, ctx: StudyContext) -> OptimizerResult:
    """One resumable DPO stage on the study's preference pairs."""
    track = ctx.rewards.get(cfg.track) if cfg.track else None
    algorithm = ALGORITHMS[cfg.loss_type]
    label = algorithm
    res = ctx.stage(label, "dpo", stage_dpo, resumable=True, cfg=cfg, track=track, policy=ctx.policy,
                    preferences=ctx.preferences, task_cfg=ctx.task_cfg, sampling=ctx.sampling,
                    eval_prompts=ctx.prompts("bon", cfg.measure_prompts), seed=ctx.seed,
                    device=ctx.device)  # fmt: skip
    raw = pd.read_csv(res.path / CURVE_FILE)
    return trained_result([Trained(algorithm, DATA, cfg.track, label, raw, beta=cfg.beta)], ctx)
