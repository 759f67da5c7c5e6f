"""Progress bars for long stages: shown on a terminal, silent in logs and tests."""

from __future__ import annotations

import os
import sys

from datasets.utils import logging as datasets_logging
from tqdm.auto import tqdm
from transformers.utils import logging as hf_logging

hf_logging.disable_progress_bar()  # weight loading/saving bars say nothing about our stages
datasets_logging.disable_progress_bar()  # nor do TRL's dataset preparation bars


def progress_shown() -> bool:
    """Whether bars show: on a terminal, or when REWARDLAB_PROGRESS=1."""
    return os.environ.get("REWARDLAB_PROGRESS") == "1" or sys.stderr.isatty()


def bar(iterable=None, *, desc: str, total: int | None = None, enabled: bool = True) -> tqdm:
    """A tqdm bar that shows only on a terminal (or when REWARDLAB_PROGRESS=1)."""
    forced = os.environ.get("REWARDLAB_PROGRESS") == "1"
    disable = False if forced else (None if enabled else True)
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False, mininterval=0.5)
