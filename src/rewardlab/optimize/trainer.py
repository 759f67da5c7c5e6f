"""What the trained optimizers share around TRL's trainers: common arguments, quiet logs,
progress lines, training with resume from the last checkpoint, and the artifact each keeps
(imported by a trained optimizer's stage, so that reading a config never loads the trainers)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from rewardlab.optimize.curves import CURVE_FILE
from rewardlab.progress import Lines, every_s, mode, note, quiet_libraries

KEPT = ("model.safetensors", "config.json", "generation_config.json")  # of each checkpoint

quiet_libraries()


class _CachedDecodingPad(logging.Filter):
    """transformers' "We strongly recommend passing in an `attention_mask`" fires inside TRL's
    generation: with unpadded prompts `generate` drops the all-ones mask, and at a cached
    decoding step a finished row's new token is the pad token, which the one-token check takes
    for padding. Nothing is padded there, so the warning is false; this drops it, and only it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(
            "We strongly recommend passing in an `attention_mask`"
        )


logging.getLogger("transformers.modeling_utils").addFilter(_CachedDecodingPad())


class TrainerProgress(TrainerCallback):
    """A trainer's steps as `Lines` (when the mode is ``lines``), and a note when it resumes."""

    def __init__(self, desc: str):
        self.desc, self.lines = desc, None

    def on_train_begin(self, args, state, control, **kw):
        if state.global_step:
            note(f"[{self.desc}] resuming from its checkpoint at step {state.global_step} "
                 f"of {state.max_steps}")  # fmt: skip
        if mode() == "lines":
            self.lines = Lines(None, self.desc, state.max_steps, every_s())
            self.lines.n = self.lines.n0 = state.global_step

    def on_step_end(self, args, state, control, **kw):
        if self.lines is not None:
            self.lines.update(state.global_step - self.lines.n)

    def on_train_end(self, args, state, control, **kw):
        if self.lines is not None:
            self.lines.close()


def quiet(trainer, show: bool) -> None:
    """In logs and tests (no terminal): no per-step dictionaries or bars from the trainer."""
    if not show:
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)


def last_checkpoint(folder: Path) -> Path | None:
    """The trainer checkpoint with the highest step in `folder`, if any is complete."""
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def common_args(device: str) -> dict:
    """TrainingArguments every trained optimizer shares: full precision, no gradient
    checkpointing, checkpoints only when `Measure` asks, no logging integrations."""
    return dict(bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=device == "cpu",
                save_strategy="no", report_to=[])  # fmt: skip


def train_and_keep(trainer, work: Path, out: Path, tok, desc: str = "train") -> None:
    """Train (resuming from the last checkpoint in `work`, and saying so), then write the
    artifact to `out`: curve.csv, checkpoints/step-N/ (policy weights at each measurement),
    final/ and trainer_log.json. Progress is shown as `desc` (`TrainerProgress`)."""
    trainer.add_callback(TrainerProgress(desc))
    ckpt = last_checkpoint(work / "trainer")
    # TRL writes a model card at every checkpoint (a third of a checkpoint's time here); the
    # checkpoints hold what resuming and the per-measurement weights need, and nothing else
    trainer.create_model_card = lambda *a, **k: None
    model = trainer.model
    if getattr(model.config, "tie_word_embeddings", False) and model._tied_weights_keys:
        # a tied lm_head is not in a checkpoint; named here, the trainer ties it again on a
        # resume instead of warning that the checkpoint lacks it
        model._keys_to_ignore_on_save = set(model._tied_weights_keys)
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    shutil.copy2(work / CURVE_FILE, out / CURVE_FILE)
    for c in sorted((work / "trainer").glob("checkpoint-*")):
        dst = out / "checkpoints" / f"step-{int(c.name.split('-')[1]):05d}"
        dst.mkdir(parents=True)
        for f in c.iterdir():
            if f.name in KEPT or f.name.startswith("tokenizer"):
                shutil.copy2(f, dst / f.name)
    trainer.model.save_pretrained(out / "final")
    tok.save_pretrained(out / "final")
    (out / "trainer_log.json").write_text(
        json.dumps(trainer.state.log_history, indent=1, default=str)
    )
