"""Running untrusted reward code: a program's ``reward(prompts, completions, **kw)`` scored in a
child process that the kernel confines (docs/SECURITY.md).

The child (`rewardlab.sandbox_child`, a fresh ``python -I`` in a new session) confines itself before
it reads the program: resource limits; its own user and mount namespaces with a capped tmpfs as
scratch where the kernel offers them; every capability dropped and ``no_new_privs``; Landlock
(read beneath the runtime, write beneath scratch only, no network, scoped signals); a seccomp allow
list (everything else fails with EPERM, and calls that act on a process only name the caller).
Its answer comes back on a pipe of its own, bounded and checked here: every way a program can fail
or lie reaches the lab as one `ProgramError`, its message bounded and its control characters
escaped. Scratch is capped in size and file count (by the tmpfs, else by accounting here) and
removed afterwards; what cannot be removed is reported. A machine without Landlock or libseccomp
is refused unless the caller opts out, loudly (``unsafe_no_sandbox=True``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import select
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from rewardlab.errors import RewardLabError

SYSTEM_LIBS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache")
OUTPUT_LIMIT = 64 * 1024  # bytes of the program's stdout and stderr kept for the error message
MESSAGE_LIMIT = 2000  # characters of the program's own text (error, output) quoted in an error
SCRATCH_MB, SCRATCH_FILES = 64, 1024  # the scratch folder's total size and number of entries
ANSWER_BYTES = 64 * 1024  # the answer pipe's cap: this plus 64 bytes per sample
POLL_S = 0.05  # how often scratch is measured when the kernel cannot cap it


def check_available() -> str:
    """Which confinement this machine offers; raises when Landlock or libseccomp is missing."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, 0, 1) if sys.platform.startswith("linux") else -1
    lib = ctypes.util.find_library("seccomp")
    if abi < 1 or lib is None:
        missing = [n for n, ok in (("Landlock", abi >= 1), ("libseccomp", lib)) if not ok]
        raise RewardLabError(
            f"cannot sandbox reward programs here: this machine lacks {' and '.join(missing)}; "
            "run on Linux 5.13+ with libseccomp2, or pass unsafe_no_sandbox=True to run the "
            "program unconfined (only for code you trust)"
        )
    ns = "user and mount namespaces" if namespaces_available() else "no user namespaces"
    return f"Landlock ABI {abi}, libseccomp, {ns}"


@functools.cache
def namespaces_available() -> bool:
    """Whether this process may make a user and a mount namespace and mount a capped tmpfs in
    it (then scratch is a tmpfs the kernel caps): the sandbox child's own sequence, run once in a
    child that confines nothing else."""
    with tempfile.TemporaryDirectory() as scratch:
        request = json.dumps({"probe": True, "scratch": scratch, "scratch_mb": 1,
                              "scratch_files": 16})  # fmt: skip
        try:
            run = subprocess.run([sys.executable, "-I", "-c", CHILD, "1"], input=request,
                                 capture_output=True, text=True, timeout=30,
                                 env={"PATH": "/usr/bin:/bin"})  # fmt: skip
            return json.loads(run.stdout).get("layers") == "namespaces"
        except (OSError, subprocess.SubprocessError, ValueError):
            return False


def runtime_paths() -> list[str]:
    """Folders the child may read (and execute beneath): the Python installation and the venv's
    packages, never the lab's source, the cache or a run folder."""
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = {sys.base_prefix, sys.prefix, *(sysconfig.get_paths()[k] for k in keys)}
    paths.add(str(Path(sys.executable).resolve().parent))
    paths |= set(SYSTEM_LIBS)  # shared libraries that compiled packages (numpy) load
    return sorted(p for p in paths if p and Path(p).exists())


class ProgramError(RewardLabError):
    """A reward program broke a rule or a limit; the message names the program and what."""


class ProgramTimeout(ProgramError):
    """A reward program ran past its wall-time limit (a hang: retrying it per sample would
    cost one timeout per sample)."""


def clean(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` from a program, safe to print and to send to an LLM: control characters (terminal
    escapes included) escaped as ``\\xNN``, cut to `limit` characters with a note of the rest."""
    out = "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text[:limit])
    return out + (f" ... [{len(text) - limit} more characters]" if len(text) > limit else "")


def score_program(
    path: str | Path,
    prompts: list[str],
    completions: list[str],
    kw: dict | None = None,
    *,
    timeout_s: float = 30.0,
    memory_mb: int = 1024,
    scratch_mb: int = SCRATCH_MB,
    scratch_files: int = SCRATCH_FILES,
    unsafe_no_sandbox: bool = False,
    _refuse: bool = True,
    _namespaces: bool = True,
) -> list[float]:
    """Scores of the program at `path` on one batch, run in a confined child process.
    (For tests: `_refuse=False` makes the audit hook only record, so the kernel layer alone
    denies; `_namespaces=False` skips the namespaces, as on a machine without them.)

    Raises:
        ProgramTimeout: it ran past `timeout_s` seconds; the child is gone.
        ProgramError: it raised, was denied something it tried, wrote more than `scratch_mb`
            megabytes or `scratch_files` entries to its scratch folder, answered outside the
            protocol, returned the wrong number of scores or non-numbers, or ran past
            `memory_mb` megabytes. The child is gone afterwards.
    """
    path = Path(path)
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramError(f"reward program {path} cannot be read: {exc}") from None
    if not unsafe_no_sandbox:
        check_available()
    scratch = tempfile.mkdtemp(prefix="rewardlab-sandbox-")
    request = json.dumps({"source": source, "name": str(path), "prompts": list(prompts),
                          "completions": list(completions), "kw": kw or {}, "scratch": scratch,
                          "read": runtime_paths(), "memory_mb": memory_mb,
                          "scratch_mb": scratch_mb, "scratch_files": scratch_files,
                          "cpu_s": max(1, int(timeout_s) + 1), "confine": not unsafe_no_sandbox,
                          "namespaces": _namespaces and not unsafe_no_sandbox,
                          "seccomp": ctypes.util.find_library("seccomp"), "refuse": _refuse})  # fmt: skip
    r_fd, w_fd = os.pipe()
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "HOME": scratch, "TMPDIR": scratch}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", CHILD, str(w_fd)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(w_fd,), cwd=scratch, env=env,
        start_new_session=True,
    )  # fmt: skip
    os.close(w_fd)
    limits = _Limits(
        timeout_s, ANSWER_BYTES + 64 * len(completions), scratch, scratch_mb, scratch_files
    )
    try:
        answer, output = _exchange(proc, r_fd, request.encode(), limits, path)
    finally:
        os.close(r_fd)
        _kill_group(proc)
        _remove(scratch)
    return _checked(answer, output, path, len(completions), memory_mb)


class _Limits:
    """What the parent enforces while the child runs: wall time, answer size, scratch use."""

    def __init__(self, timeout_s, answer_bytes, scratch, scratch_mb, scratch_files):
        self.timeout_s, self.answer_bytes, self.scratch = timeout_s, answer_bytes, scratch
        self.scratch_bytes, self.scratch_files = scratch_mb << 20, scratch_files

    def scratch_over(self) -> str:
        """'' while scratch is within its caps (as the parent sees it: empty when the child
        mounted its own tmpfs there, which the kernel caps), else what was exceeded."""
        size, count, stack = 0, 0, [self.scratch]
        while stack:
            try:
                with os.scandir(stack.pop()) as it:
                    for e in it:
                        count += 1
                        st = e.stat(follow_symlinks=False)
                        size += st.st_blocks * 512
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
            except OSError:
                continue
            if count > self.scratch_files:
                return f"more than {self.scratch_files} files and folders"
            if size > self.scratch_bytes:
                return f"more than {self.scratch_bytes >> 20} MB"
        return ""


def _exchange(proc, r_fd: int, request: bytes, lim: _Limits, path: Path):
    """Send the request, collect the answer pipe and the bounded output until the child ends."""
    try:
        proc.stdin.write(request)
        proc.stdin.close()
    except BrokenPipeError:  # the child died before reading: its output says why
        pass
    answer, size, output = [], 0, b""
    deadline = time.monotonic() + lim.timeout_s
    fds = {r_fd: "answer", proc.stdout.fileno(): "output"}
    timeout = ProgramTimeout(
        f"reward program {path} ran past its wall-time limit of {lim.timeout_s:g}s and was stopped"
    )
    while fds:
        left = deadline - time.monotonic()
        if left <= 0:
            raise timeout
        ready, _, _ = select.select(list(fds), [], [], min(left, POLL_S))
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                del fds[fd]
            elif fds[fd] == "answer":
                answer.append(chunk)
                size += len(chunk)
                if size > lim.answer_bytes:
                    raise ProgramError(
                        f"reward program {path} answered outside the protocol: more than "
                        f"{lim.answer_bytes} bytes on the answer pipe"
                    )
            elif len(output) < OUTPUT_LIMIT:
                output += chunk[: OUTPUT_LIMIT - len(output)]
        over = lim.scratch_over()
        if over:
            raise ProgramError(
                f"reward program {path} wrote {over} to its scratch folder (the cap) and was "
                "stopped"
            )
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise timeout from None
    return b"".join(answer), (output, proc.returncode)


def _checked(answer: bytes, output, path: Path, n: int, memory_mb: int) -> list[float]:
    """The scores in the child's answer, or the one `ProgramError` that says what is wrong."""
    out, rc = output
    text = clean(out.decode(errors="replace").strip()[-500:])
    if not answer:
        why = {-signal.SIGXCPU: "ran past its CPU-time limit",
               -signal.SIGKILL: "was killed (its memory or CPU-time limit)",
               -signal.SIGSEGV: "crashed (a memory fault)",
               -signal.SIGXFSZ: "wrote a file past its size limit"}.get(rc, f"exited with code {rc}")  # fmt: skip
        raise ProgramError(
            f"reward program {path} {why} without an answer"
            + (f"; its last output: {text!r}" if text else "")
        )
    try:
        msg = json.loads(answer.decode())
        if not isinstance(msg, dict) or not ({"error", "scores"} & set(msg)):
            raise ValueError("neither scores nor an error")
        if "error" in msg and not (isinstance(msg["error"], str)
                                   and isinstance(msg.get("tried", ""), str)):  # fmt: skip
            raise ValueError("an error that is not text")
        if "error" not in msg and not isinstance(msg["scores"], list):
            raise ValueError("scores that are not a list")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # forged on the answer pipe
        raise ProgramError(
            f"reward program {path} answered outside the protocol: {clean(str(exc), 200)}"
        ) from None
    if "error" in msg:
        tried = f"; it tried: {clean(msg['tried'], 500)}" if msg.get("tried") else ""
        hint = f" (memory limit {memory_mb} MB)" if "MemoryError" in msg["error"] else ""
        error = clean(msg["error"], MESSAGE_LIMIT + 40)  # the child cut it to MESSAGE_LIMIT already
        raise ProgramError(f"reward program {path} failed: {error}{hint}{tried}")
    scores = msg["scores"]
    if len(scores) != n:
        raise ProgramError(f"reward program {path} returned {len(scores)} scores for {n} samples")
    bad = [i for i, s in enumerate(scores) if not _finite(s)]
    if bad:
        raise ProgramError(
            f"reward program {path} returned a non-finite or non-numeric score for sample "
            f"{bad[0]} ({clean(repr(scores[bad[0]]), 100)})"
        )
    return [float(s) for s in scores]


def _finite(s) -> bool:
    """A JSON number that is a finite float (an int past a float's range is not)."""
    if isinstance(s, bool) or not isinstance(s, int | float):
        return False
    try:
        f = float(s)
    except OverflowError:
        return False
    return f == f and abs(f) != float("inf")


def _kill_group(proc) -> None:
    """The child and anything it left behind in its session are gone, and its pipes closed (an
    error kept by the caller holds this frame, and must not hold a file descriptor)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    proc.stdout.close()


def _remove(folder: str) -> None:
    """Remove scratch, making every folder writable first (a program may have made one
    read-only); what still cannot be removed is reported, never left silently."""
    import shutil
    import warnings

    for root, dirs, _files in os.walk(folder):
        for d in dirs:
            p = os.path.join(root, d)
            if not os.path.islink(p):
                try:
                    os.chmod(p, 0o700)
                except OSError:
                    pass
    failed: list[str] = []
    hook = "onexc" if sys.version_info >= (3, 12) else "onerror"  # onerror is deprecated in 3.12
    shutil.rmtree(folder, **{hook: lambda _fn, p, _exc: failed.append(p)})
    if failed:
        warnings.warn(
            f"the sandbox could not remove {len(failed)} paths of its scratch folder, e.g. "
            f"{failed[0]}; remove {folder} by hand",
            RuntimeWarning,
            stacklevel=3,
        )


CHILD = (Path(__file__).with_name("sandbox_child.py")).read_text()
