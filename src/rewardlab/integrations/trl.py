"""A gold tracker for a user's own TRL trainer: gold, proxy and KL(π‖π_init) measured on held-out
prompts every few steps, whatever the trainer's β, written as the lab's ``curves.csv`` so that
``rewardlab report`` draws the run's overoptimization plots; and `HackingAlarm`, which stops a
trainer when a detector of `rewardlab.detect` alarms on the trainer's own logs (no gold needed).

Each measurement is the lab's one measurement (`optimize.measurement.measure_policy`): for each
of the P prompts, `samples` fresh completions drawn with the stream (seed, "measure", i), KL as
k1 = mean(log π(y|x) − log π_init(y|x)) and k3 over those samples, gold and proxy means with
standard errors over prompts. Gold and proxy are normalised as the lab's curves are, by the base
policy: gold = (g − mean g_0) / sd g_0, with g_0 the per-sample gold of the step-0 measurement
(the same for the proxy), so 0 is the initial policy and 1 its standard deviation.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from transformers import TrainerCallback

from rewardlab.common.io import write_atomic
from rewardlab.detect import DETECTORS
from rewardlab.errors import RewardLabError
from rewardlab.optimize.curves import TRAINED, OptimizerResult, Trained, trained_rows
from rewardlab.optimize.measurement import RAW_COLUMNS, measure_policy
from rewardlab.report.build import write_results
from rewardlab.specs import SamplingConfig

REFERENCE_FILE = "reference.parquet"  # the step-0 samples' gold and proxy: the normalisation
RAW_FILE = "curve.csv"  # every measurement, RAW_COLUMNS


class _Gold:
    """A TRL-signature gold ``gold(prompts, completions, **columns)`` as the task the measurement
    expects (``name``, ``gold(prompts, completions)``, ``max_new_tokens``), each prompt's dataset
    columns passed along."""

    def __init__(self, fn: Callable, max_new_tokens: int, columns: dict[str, dict[str, object]]):
        self.fn, self.max_new_tokens, self.columns = fn, max_new_tokens, columns
        self.name = getattr(fn, "__name__", "gold")

    def gold(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        kw = {k: [col[p] for p in prompts] for k, col in self.columns.items()}
        return list(self.fn(list(prompts), list(completions), **kw))


def frozen_copy(model):
    """A new model of `model`'s class and config holding a copy of its weights, in eval mode and
    without gradients. Not ``copy.deepcopy``: a trainer may have replaced the model's ``forward``
    by a wrapper bound to the original (accelerate does), and a deep copy would then run the
    original's weights."""
    init = type(model)(copy.deepcopy(model.config))
    init.load_state_dict(model.state_dict())
    init.to(next(model.parameters()).device).eval()
    for p in init.parameters():
        p.requires_grad_(False)
    return init


class GoldTracker(TrainerCallback):
    """Measure gold, proxy and KL(π‖π_init) of the model a TRL trainer trains, at step 0, every
    `every` steps and at the end, and keep ``curves.csv`` (and the files ``rewardlab report``
    reads) in `out` up to date after each measurement.

    Args:
        gold: the true reward, ``gold(prompts, completions, **columns) -> list[float]``, or a
            lab task (an object with ``gold`` and ``max_new_tokens``).
        prompts: held-out prompts (not the training prompts) to measure on.
        every: steps between measurements.
        out: folder for ``curves.csv``, ``measurements.csv``, ``fits.json``, ``curve.csv``.
        proxy: the reward the trainer optimises (TRL's signature), measured beside gold; None
            leaves the proxy columns empty.
        samples: completions per prompt at each measurement.
        columns: per-prompt dataset columns, ``{name: [value per prompt]}``, passed to gold and
            proxy as TRL passes a dataset's columns.
        max_new_tokens, temperature, batch_size: how measurement samples are drawn.
        init_model: π_init; by default a frozen copy of the model as training begins (give it
            when resuming from a checkpoint: the model then is no longer π_init).
        tokenizer: by default the trainer's processing class.
        optimizer, reward: the names the rows carry (``optimizer`` should be one the lab knows
            as trained: grpo, rloo, dpo, ipo).
    """

    def __init__(
        self,
        gold,
        prompts: Sequence[str],
        every: int = 10,
        out: str | Path = "runs/tracked",
        proxy: Callable | None = None,
        samples: int = 4,
        columns: dict[str, Sequence] | None = None,
        max_new_tokens: int | None = None,
        temperature: float = 1.0,
        batch_size: int = 1024,
        init_model=None,
        tokenizer=None,
        seed: int = 0,
        optimizer: str = "grpo",
        reward: str = "proxy",
    ):
        if every < 1 or samples < 2 or len(prompts) < 2:
            raise RewardLabError("GoldTracker needs every >= 1, samples >= 2 and >= 2 prompts")
        self.prompts, self.every, self.out = list(prompts), every, Path(out)
        cols = {k: list(v) for k, v in (columns or {}).items()}
        for k, v in cols.items():
            if len(v) != len(self.prompts):
                raise RewardLabError(f"column {k!r} has {len(v)} values for {len(prompts)} prompts")
        self.columns = cols
        if hasattr(gold, "gold") and hasattr(gold, "max_new_tokens"):
            self.task = gold
        else:
            if max_new_tokens is None:
                raise RewardLabError("GoldTracker: give max_new_tokens with a gold function")
            by_prompt = {k: dict(zip(self.prompts, v, strict=True)) for k, v in cols.items()}
            self.task = _Gold(gold, max_new_tokens, by_prompt)
        self.sampling = SamplingConfig(temperature=temperature, batch_size=batch_size,
                                       max_new_tokens=max_new_tokens)  # fmt: skip
        self.proxy, self.samples, self.seed = proxy, samples, seed
        self.init, self.tok = init_model, tokenizer
        self.optimizer, self.reward = optimizer, reward
        self.out.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        self.reference: pd.DataFrame | None = None
        raw, ref = self.out / RAW_FILE, self.out / REFERENCE_FILE
        if raw.is_file() and ref.is_file():  # resumed: keep what was measured
            self.rows, self.reference = pd.read_csv(raw).to_dict("records"), pd.read_parquet(ref)

    def _measure(self, model, step: int) -> None:
        if any(r["step"] == step for r in self.rows):
            return
        kept: dict = {}
        row = measure_policy(model, self.init, self.tok, self.task, self.sampling, self.prompts,
                             self.samples, self.proxy, self.seed, step, self.columns,
                             samples_out=kept)  # fmt: skip
        model.train()
        if self.reference is None:
            self.reference = pd.DataFrame({"gold": kept["gold"]})
            if kept["proxy"] is not None:
                self.reference[self.reward] = kept["proxy"]
            self.reference.to_parquet(self.out / REFERENCE_FILE, index=False)
        self.rows.append(row)
        self.write()

    def write(self) -> None:
        """``curve.csv`` (raw), and ``curves.csv``, ``measurements.csv``, ``fits.json`` as a run
        folder holds them (curves normalised by the step-0 samples) once there are two
        measurements to fit a curve to."""
        raw = pd.DataFrame(self.rows, columns=RAW_COLUMNS).sort_values("step")
        write_atomic(self.out / RAW_FILE, raw.to_csv(index=False))
        if len(raw) < 2:
            return
        proxy = self.reward if self.reward in self.reference else None
        t = Trained(self.optimizer, self.reward, proxy, "tracked", raw)
        curves, detail, fits = trained_rows([t], self.reference, {}, self.seed)
        result = OptimizerResult(
            TRAINED, curves, fits, measurements=detail.drop(columns="checkpoint")
        )
        write_results(self.out, [result])

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kw):
        self.tok = self.tok or processing_class or kw.get("tokenizer")
        if self.tok is None:
            raise RewardLabError("GoldTracker: the trainer has no tokenizer; pass tokenizer=")
        if self.init is None:
            if state.global_step > 0:
                raise RewardLabError(
                    f"GoldTracker: training resumes at step {state.global_step}, so the model is "
                    "not π_init any more; pass init_model= (the policy training started from)"
                )
            self.init = frozen_copy(model)
        self.rows = [r for r in self.rows if r["step"] <= state.global_step]
        self._measure(model, state.global_step)

    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step % self.every == 0:
            self._measure(model, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kw):
        self._measure(model, state.global_step)


# what each gold-free detector reads from a TRL trainer's logs (``kl`` only when β > 0, and it
# and ``entropy`` as means per token: the detectors' ratios do not mind the unit)
LOGGED = {
    "length_drift": ("mean_length", "completions/mean_length"),
    "kl_acceleration": ("kl", "kl"),
    "entropy_drop": ("entropy", "entropy"),
}


class HackingAlarm(TrainerCallback):
    """Stop a TRL trainer at the first logged step at which `detector` (``length_drift``,
    ``kl_acceleration`` or ``entropy_drop``, `rewardlab.detect`) reaches `threshold` (default: the detector's), read
    from the trainer's own logs: no gold and no extra sampling. Every statistic is kept in
    ``statistics`` ({step: value}); the alarm, when it comes, in ``alarm`` and, with `out`, in
    ``out/stop.json``. Log every step (``logging_steps=1``) for the earliest alarm."""

    def __init__(self, detector: str = "length_drift", threshold: float | None = None,
                 out: str | Path | None = None):  # fmt: skip
        if detector not in LOGGED:
            raise RewardLabError(f"HackingAlarm: detector {detector!r}: expected one of "
                                 f"{', '.join(LOGGED)} (the gold audit needs GoldTracker)")  # fmt: skip
        self.detector, self.out = detector, Path(out) if out is not None else None
        self.threshold = DETECTORS[detector][1] if threshold is None else threshold
        self.rows: list[dict] = []
        self.statistics: dict[int, float] = {}
        self.alarm: dict | None = None

    def on_log(self, args, state, control, logs=None, **kw):
        column, key = LOGGED[self.detector]
        if not logs or key not in logs or self.alarm is not None:
            return control
        self.rows.append({"step": state.global_step, column: float(logs[key])})
        stat = float(DETECTORS[self.detector][0](pd.DataFrame(self.rows))[-1])
        self.statistics[state.global_step] = stat
        if stat >= self.threshold:
            self.alarm = dict(reason="alarm", detector=self.detector, statistic=stat,
                              threshold=self.threshold, step=state.global_step)  # fmt: skip
            if self.out is not None:
                self.out.mkdir(parents=True, exist_ok=True)
                write_atomic(self.out / "stop.json", json.dumps(self.alarm, indent=1))
            control.should_training_stop = True
        return control
