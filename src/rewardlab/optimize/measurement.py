"""The one measurement of a policy, shared by every trained optimizer: fresh samples on held-out
prompts -> KL(pi || pi_init) in nats, gold and proxy, with standard errors over prompts.

`RAW_COLUMNS` is the fixed schema of a trained optimizer's raw curve (``curve.csv``). Sampling
follows the study's `sampling` settings (temperature, max new tokens), like the pools that set
the normalisation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from transformers import TrainerCallback

from rewardlab.common.io import write_atomic
from rewardlab.detect import DETECTORS
from rewardlab.measure import kl_from_samples
from rewardlab.policy import sample_rows, sequence_logprobs
from rewardlab.pool import max_tokens
from rewardlab.seeding import prompt_uniforms
from rewardlab.specs import SamplingConfig
from rewardlab.tasks import Task, checked_gold

RAW_COLUMNS = [
    "step",
    "kl",  # k1 = mean(log pi - log pi_init) over samples, nats (can be < 0 by noise)
    "kl_se",
    "kl_k3",
    "kl_k3_se",
    "gold_raw",
    "gold_se",  # standard error over prompts of the per-prompt mean
    "proxy_raw",  # NaN when the optimizer has no proxy reward (DPO)
    "proxy_se",
    "mean_length",
    "example",
    "gold_by_prompt",  # each prompt's mean raw gold, space-separated (the hacking test's units)
    "monitor_raw",  # a second reward on the same samples (RL's `monitor`), NaN without one
    "monitor_se",
    "disagreement",  # an ensemble's members: mean over samples of their sd, NaN otherwise
    "entropy",  # mean over samples of -log pi(y|x), nats per completion: the policy's entropy
    "entropy_se",
]
STOP_FILE = "stop.json"  # why a run stopped before its last step (a KL budget, an alarm)


def measure_policy(
    model,
    init_model,
    tok,
    task: Task,
    sampling: SamplingConfig,
    prompts: Sequence[str],
    samples: int,
    reward: Callable | None,
    seed: int,
    step: int,
    columns: dict[str, list] | None = None,
    samples_out: dict | None = None,
    monitor: Callable | None = None,
    members: Sequence[Callable] | None = None,
    init_is_policy: bool = False,
) -> dict:
    """One row of `RAW_COLUMNS` for `model` at `step`.

    For each prompt i, `samples` completions are drawn with the stream (seed, "measure", i) (the
    same at every step, so steps differ by the policy only). KL from sequence log-probabilities
    (`measure.kl_from_samples`); gold and proxy are means over all samples, their standard errors
    over the per-prompt means (written too, as ``gold_by_prompt``). `reward` receives `columns` (the task's per-prompt columns) repeated
    per sample; a sample it scores None is left out of the proxy mean. A `samples_out` dict
    receives the per-sample ``gold`` and ``proxy`` arrays. A `monitor` reward is scored on the
    same samples (``monitor_raw``, ``monitor_se`` as the proxy's); with an ensemble's `members`,
    ``disagreement`` is the mean over samples of the members' standard deviation. ``entropy`` is
    mean(−log π(y|x)) over the samples, an unbiased estimate of the policy's sequence entropy in
    nats (its standard error over prompts in ``entropy_se``). With `init_is_policy` (step 0 of
    a run: `model` is π_init itself) log π_init of each sample is the sampler's log π, so π_init
    is not run a second time on the same samples and KL is exactly 0.
    """
    model.eval()
    limit = max_tokens(sampling, task)
    u = prompt_uniforms(seed, "measure", prompts=len(prompts), samples=samples, width=limit)
    rep = [p for p in prompts for _ in range(samples)]
    ids: list[list[int]] = []
    comps, logp = sample_rows(model, tok, rep, u, max_new_tokens=limit, ids_out=ids,
                              temperature=sampling.temperature, batch_size=sampling.batch_size)  # fmt: skip
    # pi_init scores the sampled token ids, not the text tokenized again (a BPE policy may sample
    # a spelling its tokenizer would not produce), in batches of similar length
    logp_init = (logp if init_is_policy else
                 sequence_logprobs(init_model, tok, rep, ids, batch_size=sampling.batch_size))  # fmt: skip
    kl = kl_from_samples(logp, logp_init)
    P = len(prompts)
    gold = np.array(checked_gold(task, rep, comps))
    g_p = gold.reshape(P, -1).mean(1)  # per prompt
    row = dict(step=step, kl=kl.k1, kl_se=kl.k1_se, kl_k3=kl.k3, kl_k3_se=kl.k3_se,
               gold_raw=gold.mean(), gold_se=g_p.std(ddof=1) / np.sqrt(P),
               proxy_raw=np.nan, proxy_se=np.nan,
               mean_length=float(np.mean([len(c.split()) for c in comps])), example=comps[0],
               gold_by_prompt=" ".join(f"{x:.9g}" for x in g_p),
               entropy=float(-np.mean(logp)),
               entropy_se=float(np.std(-np.asarray(logp).reshape(P, -1).mean(1), ddof=1) / np.sqrt(P)))  # fmt: skip
    kw = {k: [v for v in vals for _ in range(samples)] for k, vals in (columns or {}).items()}
    if reward is not None:
        proxy = np.array([np.nan if s is None else s for s in reward(rep, comps, **kw)], float)
        x_p = np.nanmean(proxy.reshape(P, -1), 1)
        row.update(proxy_raw=np.nanmean(proxy), proxy_se=np.nanstd(x_p, ddof=1) / np.sqrt(P))
    if monitor is not None:
        mon = np.array([np.nan if s is None else s for s in monitor(rep, comps, **kw)], float)
        m_p = np.nanmean(mon.reshape(P, -1), 1)
        row.update(monitor_raw=np.nanmean(mon), monitor_se=np.nanstd(m_p, ddof=1) / np.sqrt(P))
    if members:
        scores = np.array([m(rep, comps, **kw) for m in members], float)  # (k, samples)
        row.update(disagreement=float(scores.std(0, ddof=1).mean()))
    if samples_out is not None:
        samples_out.update(gold=gold, proxy=proxy if reward is not None else None)
    return row


class Measure(TrainerCallback):
    """Every `every` steps (and at step 0 and the last step): `measure_policy` of the trained
    model; rows go to `curve_path`, written atomically after each measurement, and the trainer
    is asked for a checkpoint, so a killed run resumes at its last measurement. Training stops
    early at the first measurement whose KL (k1) reaches `stop_kl` (the run ends at a KL budget
    rather than at a step count: the steps are then a cap), or at which `alarm` = (detector,
    threshold) of `rewardlab.detect` fires on the measurements so far; the reason is written to
    ``stop.json`` beside the curve."""

    def __init__(self, every: int, curve_path: Path, stop_kl: float | None = None,
                 alarm: tuple[str, float] | None = None, **measure_kw):  # fmt: skip
        self.every, self.curve_path, self.stop_kl, self.kw = every, curve_path, stop_kl, measure_kw
        self.alarm = alarm
        self.rows = pd.read_csv(curve_path).to_dict("records") if curve_path.is_file() else []

    def stop_reason(self) -> dict | None:
        """Why training stops after the last measurement (None: it goes on)."""
        if not self.rows:
            return None
        last = self.rows[-1]
        if self.stop_kl is not None and last["kl"] >= self.stop_kl:
            return dict(reason="kl_budget", step=int(last["step"]), kl=float(last["kl"]),
                        threshold=self.stop_kl)  # fmt: skip
        if self.alarm is not None:
            name, threshold = self.alarm
            stat = float(DETECTORS[name][0](pd.DataFrame(self.rows))[-1])
            if stat >= threshold:
                return dict(reason="alarm", detector=name, statistic=stat, threshold=threshold,
                            step=int(last["step"]), kl=float(last["kl"]))  # fmt: skip
        return None

    def spent(self) -> bool:
        """Whether the last measurement ends the run; if so its reason is written."""
        why = self.stop_reason()
        if why is not None:
            write_atomic(self.curve_path.parent / STOP_FILE, json.dumps(why, indent=1))
        return why is not None

    def _record(self, model, step: int) -> None:
        if any(r["step"] == step for r in self.rows):
            return
        # before the first step the trained model is still π_init: one pass scores both
        self.rows.append(measure_policy(model, step=step, init_is_policy=step == 0, **self.kw))
        model.train()
        write_atomic(
            self.curve_path, pd.DataFrame(self.rows, columns=RAW_COLUMNS).to_csv(index=False)
        )

    def on_train_begin(self, args, state, control, model=None, **kw):
        self.rows = [
            r for r in self.rows if r["step"] <= state.global_step
        ]  # resumed: drop the future
        self._record(model, state.global_step)
        if self.spent():  # resumed after its budget was reached: stop after one (unmeasured) step
            control.should_training_stop = True
        return control

    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self._record(model, state.global_step)
            control.should_save = True  # a trainer checkpoint at every measurement
            if self.spent():
                control.should_training_stop = True
        return control
