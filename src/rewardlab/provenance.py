"""What a result came from (``provenance.json``), and regenerating a committed results folder from it.

Every run folder and sweep folder gets a ``provenance.json``: the commit of the code that ran and
whether its tree was dirty, the SHA-256 of the resolved config (``config_hash``), the seeds, the
machine, the date, the command and the wall seconds. A committed results folder
(``docs/results/NAME``) holds the same record plus the commands that regenerate it and the
files taken from their output (``files``: destination path from the repository root → path
inside the output folder); `reproduce` runs those commands at the current checkout into a fresh
folder, copies the files and writes the new record. A sweep's output holds ``timing.json``
(`TIMING`: the wall seconds of every run that computed it, resumptions summed); the record
states them as ``compute_seconds``, since ``seconds`` of a resumed regeneration counts only
what this regeneration ran.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rewardlab.common.io import write_atomic
from rewardlab.errors import RewardLabError

TIMING = "timing.json"  # a sweep folder's record of the wall time of the runs that made it

FILE = "provenance.json"
OUT = "{out}"  # stands for the regeneration's output folder in a recorded command
PACKAGE_DIR = Path(__file__).resolve().parent


def source_state(where: Path = PACKAGE_DIR) -> dict:
    """The commit checked out where the code lives (``commit``, full hash) and whether tracked
    files outside ``docs/`` differ from it (``dirty``: the code, the studies or the examples; the
    results a regeneration writes into ``docs/`` do not count); both None outside a git checkout
    (an installed wheel)."""

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                               timeout=30, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)docs")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def machine() -> str:
    """One line: CPU model and cores, memory, OS, Python and torch (when loaded) versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        mem_s = f", {mem:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        mem_s = ""
    torch = sys.modules.get("torch")
    torch_s = f", torch {torch.__version__}" if torch is not None else ""
    return (f"{cpu}, {os.cpu_count()} cores{mem_s}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}{torch_s}")  # fmt: skip


def config_hash(text: str) -> str:
    """``sha256:<hex>`` of the resolved config's text, as written next to the results."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def invoked_command() -> str:
    """The command line this process was started with, ``rewardlab ...`` for the CLI."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name == "rewardlab":
        argv[0] = "rewardlab"
    return shlex.join(argv)


def write_provenance(
    folder: Path,
    *,
    config_text: str,
    seeds: Iterable[int],
    seconds: float | None = None,
    command: str | None = None,
    **extra,
) -> dict:
    """Write ``folder/provenance.json`` for results just produced from `config_text` (the
    resolved config, hashed) with `seeds`; return the record."""
    record = {
        **source_state(),
        "config_hash": config_hash(config_text),
        "seeds": sorted({int(s) for s in seeds}),
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command if command is not None else invoked_command(),
        "seconds": round(seconds, 1) if seconds is not None else None,
        **extra,
    }
    write_atomic(Path(folder) / FILE, json.dumps(record, indent=1) + "\n")
    return record


def read_provenance(folder: Path) -> dict:
    """The record in ``folder/provenance.json``, or a clear error naming what is missing."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise RewardLabError(f"{folder}: no {FILE} (nothing records how these results were made)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RewardLabError(f"{path}: not JSON ({e})") from None
    if not isinstance(record, dict):
        raise RewardLabError(f"{path}: expected a JSON object")
    return record


# ---------------------------------------------------------------- regenerating a results folder


def recipe_argv(command: str, out: Path) -> list[str]:
    """The argument vector of one recorded command, `OUT` replaced by `out`. Only the lab's own
    commands run: ``rewardlab ...`` (this interpreter's ``-m rewardlab``) or ``python
    examples/<file>.py ...``; anything else is refused, so a results folder from elsewhere cannot
    run a program of its choosing."""
    try:
        argv = [a.replace(OUT, str(out)) for a in shlex.split(command)]
    except ValueError as e:
        raise RewardLabError(f"command {command!r}: {e}") from None
    if argv[:1] == ["rewardlab"]:
        return [sys.executable, "-m", "rewardlab", *argv[1:]]
    script = Path(argv[1]) if len(argv) > 1 and argv[0] in ("python", "python3") else None
    if script is not None and script.suffix == ".py" and script.parent == Path("examples"):
        return [sys.executable, *argv[1:]]
    raise RewardLabError(
        f"command {command!r}: a results folder may only run `rewardlab ...` or "
        f"`python examples/<file>.py ...`"
    )


def reproduce(
    folder: Path,
    root: Path = Path("."),
    work: Path | None = None,
    log: Callable[[str], None] = print,
    dry_run: bool = False,
) -> dict:
    """Regenerate the committed results folder `folder` at the checkout in `root`: run its
    recorded ``commands`` (with ``{out}`` = `work`, default ``runs/reproduce/<name>``), copy its
    ``files`` from there, and rewrite its ``provenance.json`` (the output folder's own record:
    commit, dirty, config hash, seeds, machine; plus the commands, the files and the seconds of
    the whole regeneration, and the sweep's own ``compute_seconds`` and ``studies_run`` from its
    ``timing.json`` when it has one). A run already finished in `work` is resumed, not redone."""
    folder, root = Path(folder), Path(root)
    old = read_provenance(folder)
    commands, files = old.get("commands"), old.get("files")
    if (
        not isinstance(commands, list)
        or not commands
        or not all(isinstance(c, str) for c in commands)
    ):
        raise RewardLabError(f"{folder / FILE}: 'commands' must be a non-empty list of strings")
    if not isinstance(files, dict) or not files:
        raise RewardLabError(f"{folder / FILE}: 'files' must map destination paths to outputs")
    for dest in files:
        if Path(dest).is_absolute() or ".." in Path(dest).parts:
            raise RewardLabError(f"{folder / FILE}: file {dest!r} must lie inside the repository")
    work = Path(work) if work is not None else root / "runs" / "reproduce" / folder.name
    argvs = [recipe_argv(c, work) for c in commands]
    if dry_run:
        for a in argvs:
            log(shlex.join(a))
        return old
    t0 = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for c, argv in zip(commands, argvs, strict=True):
        log(f"[reproduce] {c.replace(OUT, str(work))}")
        if subprocess.run(argv, cwd=root, env=env, check=False).returncode != 0:
            raise RewardLabError(f"[reproduce] {c!r} failed; {folder} is unchanged")
    missing = [src for src in files.values() if not (work / src).is_file()]
    if missing:
        raise RewardLabError(f"[reproduce] not produced in {work}: {', '.join(missing)}")
    made = read_provenance(work)
    for dest, src in files.items():
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / src, root / dest)
    record = {
        **{k: made.get(k) for k in ("commit", "dirty", "config_hash", "seeds", "machine")},
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "what": old.get("what", ""),
        "commands": commands,
        "files": files,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if (work / TIMING).is_file():
        timing = json.loads((work / TIMING).read_text())
        record["compute_seconds"] = round(float(timing["wall_seconds"]), 1)
        record["studies_run"] = timing.get("studies_run")
    write_atomic(folder / FILE, json.dumps(record, indent=1) + "\n")
    log(f"[reproduce] {folder}: {len(files)} files at {record['commit']}")
    return record
