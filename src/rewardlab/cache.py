"""The artifact cache: stage folders named by the hash of their inputs, written atomically.

A stage's folder is ``<cache>/<stage>-<hash>/``; it is built under a temporary name and renamed
when complete, with ``meta.json`` listing every file's size and SHA-256. A folder without
``meta.json`` is never taken for a finished one; a finished one whose files no longer match their
checksums is reported as corrupt.

Several processes (a sweep's workers, on one machine or on a cluster sharing the folder) may ask
for the same stage at once: the builder holds an exclusive lock on ``.<stage>-<hash>.lock``
(``fcntl.flock``) and the others wait for it, then find the finished folder. A temporary folder
whose lock no live process holds is a dead build's: removed when a cache opens. `inventory`,
`garbage` and `collect` are the housekeeping behind ``rewardlab cache``.
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
from collections.abc import Callable, Collection
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
    with ``cache_key()`` (a config that names a file or folder adds its content) that, keyed in
    turn, a pydantic model its fields, containers item by item, a scalar itself."""
    if isinstance(value, StageResult):
        return {"stage": value.hash}
    if hasattr(value, "cache_key"):
        return keyable(value.cache_key())
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


class KeyedTable:
    """A table as a stage input, keyed by the SHA-256 of its CSV (so a stage trained on data made
    during a run, such as a refreshed reward model's policy samples, is cached by content)."""

    def __init__(self, df):
        self.df = df.reset_index(drop=True)

    def cache_key(self) -> dict:
        blob = self.df.to_csv(index=False).encode()
        return {"table_sha256": hashlib.sha256(blob).hexdigest(), "rows": len(self.df)}


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

    def __init__(
        self,
        root: str | Path,
        log: Callable[[str], None] = print,
        rebuild: Collection[str] = (),
        context: dict | None = None,
    ):
        """`rebuild`: stage names (``policy``, ``reward_model``, ...) built anew even when
        cached, and with them every stage this cache is asked for after the first of them (their
        keys hold the rebuilt stage's hash, which does not change, so they would be reused).
        `context`: what every stage's output depends on besides its inputs, added to each key
        (a study passes torch's thread count: on the CPU, kernels with another number of
        threads sum in another order, so a model trained with 2 threads differs in its last bits
        from one trained with 1, and a sweep at 1 thread must not take a 2-thread run's stages)."""
        self.context = dict(context or {})
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.results: list[StageResult] = []
        self.rebuild, self._forcing, self._rebuilt = set(rebuild), False, set()
        stale = stale_temporaries(self.root)
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
        if stale:
            log(f"[cache] removed {len(stale)} temporary folder(s) of builds that died")

    def work_dir(self, name: str, key: dict) -> Path:
        """A folder that survives a failed build of stage (`name`, `key`), for resumable stages;
        removed once the stage is finished."""
        return self.root / f"{name}-{digest({'stage': name, **key})}.partial"

    def run(
        self,
        name: str,
        fn: Callable[..., None],
        *,
        resumable: bool = False,
        shown_as: str | None = None,
        **inputs,
    ) -> StageResult:
        """The stage `name` built by ``fn(**inputs, out=folder)`` (and ``work=folder`` when
        `resumable`); its key is `keyable` of exactly `inputs` and `STAGE_VERSION`, so what a
        stage reads is declared once, where it is called, besides the cache's `context`. Log
        lines name it ``[name shown_as]`` (which reward or optimizer it is for; not in the key)."""
        key = {"version": STAGE_VERSION, **self.context,
               **{k: keyable(v) for k, v in inputs.items()}}  # fmt: skip
        extra = {"work": self.work_dir(name, key)} if resumable else {}
        return self.stage(name, key, lambda out: fn(**inputs, **extra, out=out), shown_as)

    def _locked(self, name: str, h: str, tag: str):
        """Hold the exclusive lock of stage `name`-`h`, logging when another holder is waited on."""
        return exclusive_lock(
            self.root / f".{name}-{h}.lock",
            on_wait=lambda: self.log(
                f"[{tag}] waiting for another process building {name}-{h} ..."
            ),
        )

    def _cached(self, name: str, final: Path, h: str, tag: str) -> StageResult | None:
        if not (final / META).exists():
            return None
        meta = verify(final)
        self.log(f"[{tag}] cached  {final}")
        return StageResult(name, final, h, False, meta.get("seconds", 0.0))

    def stage(
        self, name: str, key: dict, build: Callable[[Path], None], shown_as: str | None = None
    ) -> StageResult:
        """Return the stage folder for `key`, building it with ``build(tmp_folder)`` if missing;
        log lines name it ``[name shown_as]``."""
        h = digest({"stage": name, **key})
        tag = f"{name} {shown_as}" if shown_as and shown_as != name else name
        final = self.root / f"{name}-{h}"
        force = (self._forcing or name in self.rebuild) and h not in self._rebuilt
        self._forcing = self._forcing or force
        res = None if force else self._cached(name, final, h, tag)
        if res is None:
            with self._locked(name, h, tag):
                res = None if force else self._cached(name, final, h, tag)
                if res is None:
                    if force:
                        self.log(f"[{tag}] rebuilding (asked to) ...")
                        shutil.rmtree(final, ignore_errors=True)
                        shutil.rmtree(self.root / f"{name}-{h}.partial", ignore_errors=True)
                        self._rebuilt.add(h)
                    res = self._build(name, key, h, final, build, tag)
        self.results.append(res)
        return res

    def _build(
        self, name: str, key: dict, h: str, final: Path, build: Callable[[Path], None], tag: str
    ) -> StageResult:
        if final.exists():  # a folder without meta.json: not ours to trust, rebuild it
            shutil.rmtree(final)
        tmp = self.root / f".{name}-{h}.tmp-{socket.gethostname()}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        try:  # from the folder's creation on: a signal at any point removes it
            tmp.mkdir(parents=True)
            self.log(f"[{tag}] building ...")
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
        self.log(f"[{tag}] built in {seconds:.1f}s  {final}")
        return StageResult(name, final, h, True, seconds)


STALE_TMP = "temporary folder of a build that died"


def _stage_of(p: Path) -> tuple[str, str] | None:
    """(stage name, hash) of a cache entry's file name, or None for a name the cache never
    writes: ``name-hash``, ``name-hash.partial``, ``.name-hash.lock``, ``.name-hash.tmp-...``."""
    base = p.name.lstrip(".").split(".", 1)[0]
    name, _, h = base.rpartition("-")
    return (name, h) if name and len(h) == 12 else None


def _free(lock: Path) -> bool:
    """Whether no live process holds `lock` (a missing lock file is free)."""
    if not lock.exists():
        return True
    with lock.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def stale_temporaries(root: str | Path) -> list[Path]:
    """Temporary build folders at `root` whose stage lock no live process holds: their builder
    died (a killed build cannot remove its own)."""
    out = []
    for p in sorted(Path(root).glob(".*.tmp-*")):
        st = _stage_of(p)
        if st is not None and _free(p.parent / f".{st[0]}-{st[1]}.lock"):
            out.append(p)
    return out


def inventory(root: str | Path, verify_files: bool = False) -> list[dict]:
    """Every entry of the cache at `root`: stage, hash, status, size in bytes, build seconds.

    Status: ``finished``, ``corrupt`` (only with `verify_files`: a file differs from its
    checksum, or is missing), ``unfinished`` (no ``meta.json``), ``partial`` (a resumable stage's
    saved state), ``building`` (a temporary folder a live process holds) or ``stale`` (one of a
    build that died), ``lock`` (a lock file whose stage has no folder). A stage's own lock file
    (``.<stage>-<hash>.lock``, empty, kept beside it) is not an entry of its own.
    """
    rows = []
    entries = sorted(Path(root).iterdir())
    staged = {st for p in entries if not p.name.endswith(".lock") and (st := _stage_of(p))}
    for p in entries:
        st = _stage_of(p)
        if st is None or (p.name.endswith(".lock") and st in staged):
            continue
        lock, detail = p.parent / f".{st[0]}-{st[1]}.lock", ""
        if p.name.endswith(".lock"):
            status = "lock"
        elif ".tmp-" in p.name:
            status = "stale" if _free(lock) else "building"
        elif p.name.endswith(".partial"):
            status = "partial"
        elif not (p / META).is_file():
            status = "unfinished"
        else:
            status = "finished"
            if verify_files:
                try:
                    verify(p)
                except RewardLabError as err:
                    status, detail = "corrupt", str(err)
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0
        seconds = None
        if status == "finished":
            with contextlib.suppress(OSError, ValueError):
                seconds = json.loads((p / META).read_text()).get("seconds")
        rows.append(dict(stage=st[0], hash=st[1], status=status, bytes=size, seconds=seconds,
                         path=str(p), detail=detail))  # fmt: skip
    return rows


def garbage(root: str | Path, verify_files: bool = True) -> list[tuple[Path, str]]:
    """What `collect` removes from the cache at `root`, each with why: temporary folders of
    builds that died, folders that never finished, corrupt ones (with `verify_files`) and their
    locks, saved state of stages since finished, and lock files of no stage that no one holds.
    A finished stage's lock stays with it: a clean run leaves nothing here."""
    rows = inventory(root, verify_files)
    finished = {(r["stage"], r["hash"]) for r in rows if r["status"] == "finished"}
    busy = {(r["stage"], r["hash"]) for r in rows if r["status"] in ("building", "partial")}
    busy -= finished  # a finished stage's saved state is garbage, and so is its lock
    out = []
    for r in rows:
        p, st = Path(r["path"]), (r["stage"], r["hash"])
        if r["status"] == "stale":
            out.append((p, STALE_TMP))
        elif r["status"] == "unfinished" and _free(lock := p.parent / f".{st[0]}-{st[1]}.lock"):
            out.append((p, "stage folder that never finished (no meta.json)"))
            out += [(lock, "lock of a stage removed")] if lock.exists() else []
        elif r["status"] == "corrupt":
            out.append((p, "corrupt: " + r["detail"].split(" is corrupt: ", 1)[-1].split(";")[0]))
            lock = p.parent / f".{st[0]}-{st[1]}.lock"
            out += [(lock, "lock of a stage removed")] if lock.exists() and _free(lock) else []
        elif r["status"] == "partial" and st in finished:
            out.append((p, "saved state of a stage since finished"))
        elif r["status"] == "lock" and st not in busy and _free(p):
            out.append((p, "lock file of no stage, held by no live process"))
    return out


def collect(root: str | Path, dry_run: bool = False) -> list[tuple[Path, str]]:
    """Remove `garbage` from the cache at `root` (nothing with `dry_run`); return what it was."""
    found = garbage(root)
    if not dry_run:
        for p, _ in found:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    return found


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
