"""A reward call that cannot fail silently: a raise, a non-finite score or a hang is named, or
the sample is skipped; code the lab did not write runs in a child process that can be stopped.

Skipped samples score ``None``, which TRL's GRPO and RLOO trainers treat as unscorable: the
sample is left out of its group's baseline and gets advantage 0 (TRL 1.16,
``GRPOTrainer._generate_and_score_completions``).
"""

from __future__ import annotations

import math
import multiprocessing as mp
from collections.abc import Callable, Sequence

import numpy as np

from rewardlab.errors import RewardLabError
from rewardlab.sandbox import ProgramError, ProgramTimeout


class _ChildError(Exception):
    """What the reward raised in its child process, as ``"Type: message"``."""


def _serve(conn, fn) -> None:
    """The child's loop: score each (prompts, completions, kw) it receives."""
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        prompts, completions, kw = msg
        try:
            conn.send(
                ("ok", [None if s is None else float(s) for s in fn(prompts, completions, **kw)])
            )
        except BaseException as exc:  # noqa: BLE001 - everything the user's code raises is reported
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _Child:
    """One spawned process that runs `fn`; killed and replaced after a timeout."""

    def __init__(self, fn: Callable):
        self.fn, self.proc, self.conn = fn, None, None

    def call(self, prompts, completions, kw, timeout_s: float):
        if self.proc is None or not self.proc.is_alive():
            ctx = mp.get_context("spawn")
            self.conn, child = ctx.Pipe()
            self.proc = ctx.Process(target=_serve, args=(child, self.fn), daemon=True)
            self.proc.start()
            child.close()
        self.conn.send((prompts, completions, kw))
        if not self.conn.poll(timeout_s):
            self.close(kill=True)
            raise TimeoutError
        try:
            status, value = self.conn.recv()
        except EOFError:
            self.close(kill=True)
            raise _ChildError("its process died") from None
        if status == "error":
            raise _ChildError(value)
        return value

    def close(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()
        self.proc, self.conn = None, None


def _portable(kw: dict) -> dict:
    """The keyword arguments a child process can receive: callables (TRL's `log_metric`,
    `log_extra`) stay behind."""
    return {k: v for k, v in kw.items() if not callable(v)}


def _slice(kw: dict, i: int, n: int) -> dict:
    """Sample i's share of per-sample keyword arguments (lists of length n); others as they are."""
    return {
        k: v[i : i + 1] if isinstance(v, list | tuple) and len(v) == n else v for k, v in kw.items()
    }


class GuardedReward:
    """Wrap a reward function so that a raise, a non-finite value or a hang is never silent.

    mode ``stop``: raise `RewardLabError` naming the reward and the first bad sample.
    mode ``skip``: score each bad sample ``None`` (no advantage under TRL's trainers; see the
    module doc) and count it in `skipped`; a hang (past `timeout_s`) skips its whole batch at the
    cost of one timeout, never one per sample. With `isolate`, `fn` runs in a
    child process that is killed after `timeout_s`; without it, `fn` runs here (the lab's own
    reward models) and `timeout_s` is not enforced.
    """

    def __init__(
        self,
        fn: Callable,
        name: str,
        mode: str = "stop",
        timeout_s: float = 60.0,
        isolate: bool = False,
    ):
        self.fn, self.name, self.mode, self.timeout_s = fn, name, mode, timeout_s
        self.skipped = 0
        self.calls = 0
        self.__name__ = name.replace("/", "_")
        self._child = _Child(fn) if isolate else None

    def _call(self, prompts, completions, kw) -> list:
        if self._child is None:
            return list(self.fn(prompts, completions, **kw))
        try:
            return self._child.call(prompts, completions, _portable(kw), self.timeout_s)
        except TimeoutError:
            raise ProgramTimeout(
                f"reward {self.name!r} did not return within {self.timeout_s:g} s on a batch of "
                f"{len(prompts)} samples (first prompt {prompts[0]!r}, completion {completions[0]!r}); "
                "its process was stopped"
            ) from None

    def _bad(self, i: int, what: str, prompts, completions) -> RewardLabError:
        return RewardLabError(
            f"reward {self.name!r} {what} on sample {i} (prompt {prompts[i]!r}, completion "
            f"{completions[i]!r}); set on_reward_error: skip to skip such samples"
        )

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list:
        self.calls += 1
        prompts, completions = list(prompts), list(completions)
        n = len(prompts)
        try:
            scores = self._call(prompts, completions, kw)
        except ProgramTimeout as exc:  # a hang: one timeout for the batch, never one per sample
            if self.mode == "stop":
                raise RewardLabError(
                    f"{exc}; set on_reward_error: skip to skip such batches"
                ) from None
            self.skipped += n
            return [None] * n
        except Exception as exc:
            if _lab_error(exc):
                raise
            scores = []  # find which samples raise, one at a time
            for i in range(n):
                try:
                    scores.append(
                        self._call(prompts[i : i + 1], completions[i : i + 1], _slice(kw, i, n))[0]
                    )
                except Exception as exc:
                    if _lab_error(exc):
                        raise
                    if self.mode == "stop":
                        own = isinstance(exc, _ChildError | ProgramError)
                        what = str(exc) if own else f"{type(exc).__name__}: {exc}"
                        raise self._bad(i, f"raised {what}", prompts, completions) from None
                    scores.append(None)
        if len(scores) != n:
            raise RewardLabError(
                f"reward {self.name!r} returned {len(scores)} scores for {n} samples"
            )
        vals = np.array([_number(s) for s in scores], dtype=float)
        bad = ~np.isfinite(vals)
        if getattr(self.fn, "may_skip", False):  # a reward that skips samples itself (None)
            self.skipped += sum(s is None for s in scores)
            bad &= np.array([s is not None for s in scores], dtype=bool)
        if bad.any() and self.mode == "stop":
            i = int(np.flatnonzero(bad)[0])
            raise self._bad(
                i, f"returned {scores[i]!r} (not a finite number)", prompts, completions
            )
        self.skipped += int(bad.sum())
        return [None if b or s is None else float(v)
                for v, b, s in zip(vals, bad, scores, strict=True)]  # fmt: skip

    def close(self) -> None:
        """Stop the child process, if any."""
        if self._child is not None:
            self._child.close()


def _lab_error(exc: Exception) -> bool:
    """An error of the lab (stop at once), not one of the reward's own: a reward program that
    raised or broke a sandbox rule is the reward's, and is stopped or skipped per sample."""
    return isinstance(exc, RewardLabError) and not isinstance(exc, ProgramError)


def _number(s) -> float:
    try:
        return math.nan if s is None else float(s)
    except (TypeError, ValueError):
        return math.nan
