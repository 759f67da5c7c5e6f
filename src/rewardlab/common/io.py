"""Atomic writes and checked reads of artifacts."""

from __future__ import annotations

import os
from pathlib import Path

from rewardlab.errors import RewardLabError


def read_parquet(path: Path):
    """Read a Parquet artifact; a broken file is a `RewardLabError` naming it."""
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as exc:
        raise RewardLabError(
            f"artifact {path} is unreadable ({type(exc).__name__}: {exc}); delete its folder "
            "to recompute it"
        ) from None


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
