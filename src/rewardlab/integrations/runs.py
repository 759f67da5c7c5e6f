"""The rewards of a finished run folder, rebuilt from its ``config.yaml`` and its own stage copies
(``stages/<label>/``), without training anything and without the cache the run used.

Every stage copy keeps the ``meta.json`` its cache wrote (stage name and hash), so a cache made of
links to those copies answers every stage the run's rewards ask for; a stage the run folder lacks
is an error, never a silent retraining. `Scorer` scores several of them together, as the adapters
for outside trainers hand them out.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.cache import META, Cache, StageResult
from rewardlab.config import StudyConfig, run_config
from rewardlab.errors import RewardLabError
from rewardlab.models import resolve_device
from rewardlab.rewards import Reward
from rewardlab.rewards.base import columns_for
from rewardlab.rewards.guard import GuardedReward


class _RunCache(Cache):
    """A cache whose finished stages are a run folder's copies and which builds nothing."""

    def __init__(self, root: Path, run_dir: Path, log: Callable[[str], None], context: dict):
        super().__init__(root, log=log, context=context)
        self.run_dir = run_dir

    def _cached(self, name: str, final: Path, h: str, tag: str) -> StageResult | None:
        res = super()._cached(name, final, h, tag)
        if res is not None:  # the run folder's own copy, not the link to it
            res.path = final.resolve()
        return res

    def _build(self, name, key, h, final, build, tag) -> StageResult:
        raise RewardLabError(
            f"run folder {self.run_dir} has no copy of stage {name}-{h}, which its rewards need "
            "(a run that did not finish, or one made by another version of the lab); run "
            f"`rewardlab run {self.run_dir / 'config.yaml'} --out {self.run_dir}` to finish it"
        )


@dataclass
class RunRewards:
    """A run's rewards by name, its config and task (for the per-prompt columns rewards take)."""

    run_dir: Path
    config: StudyConfig
    rewards: dict[str, Reward]
    task: Any

    def get(self, name: str) -> Reward:
        """The reward `name`, or an error listing the run's rewards."""
        if name not in self.rewards:
            raise RewardLabError(
                f"run {self.run_dir} has no reward {name!r}; its rewards are "
                f"{', '.join(sorted(self.rewards))}"
            )
        return self.rewards[name]

    def columns(self, prompts: Sequence[str]) -> dict[str, list]:
        """The task's per-prompt columns for `prompts` (keyword arguments of every reward)."""
        return columns_for(self.task, list(prompts))

    def members(self, name: str) -> list[Callable[..., list[float]]]:
        """The member rewards of an ensemble reward `name` ([] for any other kind)."""
        fn = self.get(name).fn
        return list(getattr(fn, "members", None) or [])


def load_run_rewards(
    run_dir: str | Path, device: str = "cpu", log: Callable[[str], None] = lambda _: None
) -> RunRewards:
    """Rebuild every reward of the run folder `run_dir` (its config's ``rewards:`` and the rule).

    Raises:
        RewardLabError: not a run folder, an unreadable stage copy, or a stage it lacks.
    """
    run_dir = Path(run_dir)
    cfg_file = run_dir / "config.yaml"
    if not cfg_file.is_file():
        raise RewardLabError(f"{run_dir} is not a run folder (it has no config.yaml)")
    cfg = run_config(run_dir)
    from rewardlab.study import build_rewards  # the study imports the optimizers; only here

    context = {}  # the run's thread count, from its stages' keys (none in runs made before it was)
    with tempfile.TemporaryDirectory(prefix="rewardlab-run-cache-") as tmp:
        for meta_file in sorted((run_dir / "stages").glob(f"*/{META}")):
            try:
                meta = json.loads(meta_file.read_text())
                link = Path(tmp) / f"{meta['stage']}-{meta['hash']}"
                if "threads" in meta["key"]:
                    context["threads"] = meta["key"]["threads"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise RewardLabError(
                    f"stage copy {meta_file.parent} is unreadable: {exc}"
                ) from None
            if not link.exists():
                link.symlink_to(meta_file.parent.resolve(), target_is_directory=True)
        cache = _RunCache(Path(tmp), run_dir, log, context)
        ctx = build_rewards(cfg, cache, resolve_device(device), log)
    return RunRewards(run_dir, cfg, ctx.rewards, ctx.task)


class Cancelled(RewardLabError):
    """A request's scoring was stopped between batches (its caller was answered already)."""


class Scorer:
    """Rewards `names` of a run scored together: the first is *the* reward, the others (and an
    ensemble's members and disagreement) ride along as logs. Each is guarded (a raise, NaN or
    hang is an error naming it), called in batches of `batch_size`, by one thread at a time."""

    def __init__(
        self, rr: RunRewards, names: Sequence[str], batch_size: int = 256, timeout_s: float = 60.0
    ):
        if not names:
            raise RewardLabError("name at least one reward (the first is the one trained on)")
        self.rr, self.names, self.batch_size = rr, list(names), batch_size
        self.guards, self.locks, self.members = {}, {}, {}
        for n in self.names:
            r = rr.get(n)
            self.guards[n] = GuardedReward(r.fn, n, "stop", timeout_s, r.isolate)
            self.locks[n] = threading.Lock()
            self.members[n] = rr.members(n)

    def _one(self, name: str, fn, prompts, completions, kw, cancel) -> np.ndarray:
        out = []
        b = self.batch_size
        for i in range(0, len(prompts), b):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"scoring of {len(prompts)} samples stopped at sample {i}")
            part = {k: v[i : i + b] for k, v in kw.items()}
            with self.locks[name]:  # a reward is called by one thread at a time
                out += list(fn(prompts[i : i + b], completions[i : i + b], **part))
        return np.asarray(out, dtype=float)

    def score(
        self, prompts: list[str], completions: list[str], cancel: threading.Event | None = None
    ) -> dict:
        """``{"rewards": r, "scores": r, "extra_logs": {name: scores}}``, r the first reward's
        scores; ``<name>/member<j>`` and ``<name>/disagreement`` (the members' population
        standard deviation) for an ensemble. Setting `cancel` stops it before its next batch
        (`Cancelled`)."""
        kw = self.rr.columns(prompts)
        first, extra = None, {}
        for n in self.names:
            s = self._one(n, self.guards[n], prompts, completions, kw, cancel)
            if first is None:
                first = s
            else:
                extra[n] = s.tolist()
            if self.members[n]:
                m = np.array(
                    [self._one(n, f, prompts, completions, kw, cancel) for f in self.members[n]]
                )
                for j, row in enumerate(m):
                    extra[f"{n}/member{j}"] = row.tolist()
                extra[f"{n}/disagreement"] = m.std(0).tolist()
        return {"rewards": first.tolist(), "scores": first.tolist(), "extra_logs": extra}

    def close(self) -> None:
        for g in self.guards.values():
            g.close()
