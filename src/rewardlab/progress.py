"""Progress of long stages: bars on a terminal, timed lines in pipes, logs and CI, or nothing.

``REWARDLAB_PROGRESS`` chooses: ``bar`` (or ``1``) bars, ``lines`` a line every
``REWARDLAB_PROGRESS_EVERY`` seconds (default 30), ``off`` (or ``0``) nothing; unset, bars on a
terminal and lines elsewhere. A line reads ``[desc] 45% (450/1000) 12.0/s ETA 46s``. Lines and
notes (a resumed stage) go to `note`, stderr unless a sweep worker points it at its study's log.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable

from tqdm.auto import tqdm

_SINK: list[Callable[[str], None]] = []


def note(msg: str) -> None:
    """Say `msg` where progress goes (stderr, or the sink a sweep worker set)."""
    if _SINK:
        _SINK[-1](msg)
    else:
        print(msg, file=sys.stderr, flush=True)


def send_to(sink: Callable[[str], None] | None) -> None:
    """Send progress lines and notes to `sink` from now on (None: back to stderr)."""
    _SINK.clear()
    if sink is not None:
        _SINK.append(sink)


def quiet_libraries() -> None:
    """Turn off the progress bars of transformers (loading and saving weights) and datasets (TRL's
    dataset preparation): they say nothing about our stages. Imports both, so it is called where
    a study starts, not when rewardlab is imported."""
    from datasets.utils import logging as datasets_logging
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    datasets_logging.disable_progress_bar()


def mode() -> str:
    """``bar``, ``lines`` or ``off``, from ``REWARDLAB_PROGRESS`` or whether stderr is a terminal."""
    v = os.environ.get("REWARDLAB_PROGRESS", "").strip().lower()
    if v in ("1", "bar"):
        return "bar"
    if v in ("0", "off"):
        return "off"
    if v == "lines":
        return "lines"
    return "bar" if sys.stderr.isatty() else "lines"


def progress_shown() -> bool:
    """Whether bars show (a trainer's own bar follows this)."""
    return mode() == "bar"


def every_s() -> float:
    """Seconds between two progress lines."""
    return float(os.environ.get("REWARDLAB_PROGRESS_EVERY", "30"))


class Lines:
    """tqdm's small interface (iterate, ``update``, ``set_postfix``, ``close``), printing a line
    at most every `every` seconds: done / total, rate = (done − n0) / elapsed (n0: done before
    this process started, for a resumed run), ETA = (total − done) / rate."""

    def __init__(self, iterable: Iterable | None, desc: str, total: int | None, every: float):
        self.iterable, self.desc, self.every = iterable, desc, every
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.n0, self.postfix = total, 0, 0, ""
        self.t0 = self.last = time.monotonic()
        self.printed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()

    def set_postfix(self, **kw) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in kw.items())

    def line(self, now: float) -> str:
        elapsed = max(now - self.t0, 1e-9)
        rate = (self.n - self.n0) / elapsed  # of this process: a resumed run counts from n0
        if self.total:
            eta = f" ETA {(self.total - self.n) / rate:.0f}s" if rate > 0 else ""
            head = f"{100 * self.n / self.total:.0f}% ({self.n}/{self.total})"
        else:
            head, eta = f"{self.n}", ""
        tail = f" {self.postfix}" if self.postfix else ""
        return f"[{self.desc}] {head} {rate:.3g}/s{eta}{tail}"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last, self.printed = now, True
            note(self.line(now))

    def close(self) -> None:
        if self.printed:  # a stage that said it was under way also says it ended
            note(self.line(time.monotonic()) + f" done in {time.monotonic() - self.t0:.0f}s")


def bar(iterable=None, *, desc: str, total: int | None = None, enabled: bool = True):
    """Progress over `iterable` (or `total` updates): a tqdm bar, timed `Lines`, or a silent bar
    (by `mode`; `enabled=False` silences it whatever the mode)."""
    m = mode() if enabled else "off"
    if m == "lines":
        return Lines(iterable, desc, total, every_s())
    return tqdm(iterable, desc=desc, total=total, disable=m == "off", leave=False, mininterval=0.5)
