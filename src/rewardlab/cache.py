"""The artifact cache: stage folders named by the hash of their inputs, written atomically.

A stage's folder is ``<cache>/<stage>-<hash>/``; it is built under a temporary name and renamed
when complete, with ``meta.json`` listing every file's size and SHA-256. A folder without
``meta.json`` is never taken for a finished one; a finished one whose files no longer match their
checksums is reported as corrupt.

Several processes (a sweep's workers, on one machine or on a cluster sharing the folder) may ask
for the same stage at once: the builder holds an exclusive lock on ``.<stage>-<hash>.lock``
(``fcntl.flock``) and the others wait for it, then find the finished folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rewardlab.errors import RewardLabError

META = "meta.json"
STAGE_VERSION = 3  # bump when a stage's output changes for the same inputs


def digest(obj) -> str:
    """A short stable hash of a JSON-serialisable object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def keyable(value):
    """What a stage input contributes to the stage's key: a finished stage its hash, an object
    with ``cache_key()`` (a config that names a file adds the file's content) that, a pydantic
    model its fields, containers item by item, a scalar itself."""
    if isinstance(value, StageResult):
        return {"stage": value.hash}
    if hasattr(value, "cache_key"):
        return value.cache_key()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): keyable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [keyable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"stage input of type {type(value).__name__} has no cache key")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class StageResult:
    """A finished stage: its folder, its hash, and whether this call built it."""

    name: str
    path: Path
    hash: str
    built: bool
    seconds: float


def verify(path: Path) -> dict:
    """Check a finished stage folder against its ``meta.json``; return the meta.

    Raises:
        RewardLabError: naming the folder and the first file that is missing or differs.
    """
    hint = f"delete {path} to recompute it"
    try:
        meta = json.loads((path / META).read_text())
        files = meta["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RewardLabError(
            f"artifact {path} is corrupt: unreadable {META} ({exc}); {hint}"
        ) from None
    for rel, info in files.items():
        f = path / rel
        if not f.is_file():
            raise RewardLabError(f"artifact {path} is corrupt: file {rel} is missing; {hint}")
        if f.stat().st_size != info["size"] or _sha256(f) != info["sha256"]:
            raise RewardLabError(
                f"artifact {path} is corrupt: file {rel} differs from when it was written "
                f"(size or checksum); {hint}"
            )
    return meta


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout_s: float | None = None, on_wait=None, what: str = ""):
    """Hold an exclusive ``flock`` on `path` (created if missing) for the ``with`` block.

    The kernel releases the lock when its holder dies, so a killed process's leftover lock file
    holds nothing. Another live holder is waited for (``on_wait()`` is called once), forever or
    for `timeout_s` seconds.

    Raises:
        RewardLabError: the lock is still held after `timeout_s`; the message names `what`.
    """
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            if timeout_s is None:
                fcntl.flock(f, fcntl.LOCK_EX)
            else:
                deadline = time.monotonic() + timeout_s
                while True:
                    try:
                        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise RewardLabError(
                                f"{what or path} is in use by another live process (its lock "
                                f"{path} was still held after {timeout_s:g}s); wait for it to "
                                "finish or stop it"
                            ) from None
                        time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Cache:
    """Stage folders under `root`, reused when their key's hash matches."""

    def __init__(self, root: str | Path, log: Callable[[str], None] = print):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.results: list[StageResult] = []

    def work_dir(self, name: str, key: dict) -> Path:
        """A folder that survives a failed build of stage (`name`, `key`), for resumable stages;
        removed once the stage is finished."""
        return self.root / f"{name}-{digest({'stage': name, **key})}.partial"

    def run(
        self, name: str, fn: Callable[..., None], *, resumable: bool = False, **inputs
    ) -> StageResult:
        """The stage `name` built by ``fn(**inputs, out=folder)`` (and ``work=folder`` when
        `resumable`); its key is `keyable` of exactly `inputs` and `STAGE_VERSION`, so what a
        stage reads is declared once, where it is called."""
        key = {"version": STAGE_VERSION, **{k: keyable(v) for k, v in inputs.items()}}
        extra = {"work": self.work_dir(name, key)} if resumable else {}
        return self.stage(name, key, lambda out: fn(**inputs, **extra, out=out))

    def _locked(self, name: str, h: str):
        """Hold the exclusive lock of stage `name`-`h`, logging when another holder is waited on."""
        return exclusive_lock(
            self.root / f".{name}-{h}.lock",
            on_wait=lambda: self.log(
                f"[{name}] waiting for another process building {name}-{h} ..."
            ),
        )

    def _cached(self, name: str, final: Path, h: str) -> StageResult | None:
        if not (final / META).exists():
            return None
        meta = verify(final)
        self.log(f"[{name}] cached  {final}")
        return StageResult(name, final, h, False, meta.get("seconds", 0.0))

    def stage(self, name: str, key: dict, build: Callable[[Path], None]) -> StageResult:
        """Return the stage folder for `key`, building it with ``build(tmp_folder)`` if missing."""
        h = digest({"stage": name, **key})
        final = self.root / f"{name}-{h}"
        res = self._cached(name, final, h)
        if res is None:
            with self._locked(name, h):
                res = self._cached(name, final, h) or self._build(name, key, h, final, build)
        self.results.append(res)
        return res

    def _build(
        self, name: str, key: dict, h: str, final: Path, build: Callable[[Path], None]
    ) -> StageResult:
        if final.exists():  # a folder without meta.json: not ours to trust, rebuild it
            shutil.rmtree(final)
        tmp = self.root / f".{name}-{h}.tmp-{socket.gethostname()}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.log(f"[{name}] building ...")
        t0 = time.perf_counter()
        try:
            build(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        seconds = time.perf_counter() - t0
        files = {
            str(f.relative_to(tmp)): {"size": f.stat().st_size, "sha256": _sha256(f)}
            for f in sorted(tmp.rglob("*"))
            if f.is_file()
        }
        meta = {"stage": name, "hash": h, "key": key, "seconds": seconds, "files": files}
        (tmp / META).write_text(json.dumps(meta, indent=1, default=str))
        os.replace(tmp, final)
        shutil.rmtree(self.work_dir(name, key), ignore_errors=True)
        self.log(f"[{name}] built in {seconds:.1f}s  {final}")
        return StageResult(name, final, h, True, seconds)


FICLONE = 0x40049409  # ioctl of Linux: make `dst` share `src`'s extents, copy-on-write


def copy_tree(src: Path, dst: Path) -> str:
    """Mirror `src` into `dst` as independent files (`dst` is replaced): copy-on-write clones
    where the file system offers them (btrfs, XFS), full copies otherwise, so that a change to
    the cache never reaches a run folder. Returns how the files were made ("clone", "copy").
    """
    if dst.exists():
        shutil.rmtree(dst)
    how = "clone"
    for f in sorted(src.rglob("*")):
        target = dst / f.relative_to(src)
        if f.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if not _clone(f, target):
            shutil.copyfile(f, target)
            how = "copy"
        shutil.copystat(f, target)
    return how


def _clone(src: Path, dst: Path) -> bool:
    """Clone `src` to `dst` with FICLONE; False (and no `dst`) where the file system cannot."""
    with src.open("rb") as s, dst.open("wb") as d:
        try:
            fcntl.ioctl(d.fileno(), FICLONE, s.fileno())
            return True
        except OSError:
            pass
    dst.unlink()
    return False
