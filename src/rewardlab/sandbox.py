"""Running untrusted reward code: a program's ``reward(prompts, completions, **kw)`` scored in a
child process that the kernel confines (docs/SECURITY.md).

The child is a fresh interpreter (``python -I``) in a new session with resource limits (address
space, CPU seconds, file size, open files). Before it reads the program it restricts itself:
- **Landlock** (file system): read and execute beneath the Python installation only, read and
  write beneath a private scratch folder, nothing else; TCP bind and connect denied (ABI ≥ 4);
  signals and abstract unix sockets scoped to itself (ABI ≥ 6).
- **seccomp** (libseccomp): the system calls that make processes, sockets, or touch other
  processes fail with EPERM (`DENIED`).
- ``PR_SET_NO_NEW_PRIVS``; the child's stdout and stderr are captured and bounded, and its
  answer comes back on a pipe of its own, so what the program prints cannot forge it.
An audit hook in the child records what the program attempted (``open`` of a path, ``socket``,
``subprocess``, ``os.fork``, ``ctypes``, ``os.kill``) so an error can name it; the kernel, not the
hook, enforces. A machine without Landlock or libseccomp is refused unless the caller opts out,
loudly (``unsafe_no_sandbox=True``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
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

# system calls the program may not make (each fails with EPERM)
DENIED = (
    "fork", "vfork", "clone", "clone3", "execve", "execveat", "kill", "tkill", "tgkill",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
    "ptrace", "process_vm_readv", "process_vm_writev", "socket", "socketpair", "connect", "bind",
    "listen", "accept", "accept4", "sendto", "sendmsg", "mount", "umount2", "unshare", "setns",
    "chroot", "pivot_root", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
    "userfaultfd", "io_uring_setup", "personality", "setsid", "setpgid", "prctl", "seccomp",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "memfd_create",
)  # fmt: skip
SYSTEM_LIBS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache")
OUTPUT_LIMIT = 64 * 1024  # bytes of the program's stdout and stderr kept for the error message


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
    return f"Landlock ABI {abi}, libseccomp"


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


def score_program(
    path: str | Path,
    prompts: list[str],
    completions: list[str],
    kw: dict | None = None,
    *,
    timeout_s: float = 30.0,
    memory_mb: int = 1024,
    unsafe_no_sandbox: bool = False,
    _refuse: bool = True,
) -> list[float]:
    """Scores of the program at `path` on one batch, run in a confined child process.
    (`_refuse=False`, for tests: the audit hook only records, so the kernel layer alone denies.)

    Raises:
        ProgramError: the program raised, was denied something it tried, printed no answer,
            returned the wrong number of scores or non-numbers, or ran past `timeout_s` seconds
            or `memory_mb` megabytes. The child is gone afterwards.
    """
    path = Path(path)
    try:
        source = path.read_text()
    except OSError as exc:
        raise ProgramError(f"reward program {path} cannot be read: {exc}") from None
    if not unsafe_no_sandbox:
        check_available()
    scratch = tempfile.mkdtemp(prefix="rewardlab-sandbox-")
    request = json.dumps({"source": source, "name": str(path), "prompts": list(prompts),
                          "completions": list(completions), "kw": kw or {}, "scratch": scratch,
                          "read": runtime_paths(), "memory_mb": memory_mb,
                          "cpu_s": max(1, int(timeout_s) + 1), "confine": not unsafe_no_sandbox,
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
    try:
        answer, output = _exchange(proc, r_fd, request.encode(), timeout_s, path)
    finally:
        os.close(r_fd)
        _kill_group(proc)
        _remove(scratch)
    return _checked(answer, output, path, len(completions), memory_mb)


def _exchange(proc, r_fd: int, request: bytes, timeout_s: float, path: Path):
    """Send the request, collect the answer pipe and the bounded output until the child ends."""
    try:
        proc.stdin.write(request)
        proc.stdin.close()
    except BrokenPipeError:  # the child died before reading: its output says why
        pass
    answer, output = b"", b""
    deadline = time.monotonic() + timeout_s
    fds = {r_fd: "answer", proc.stdout.fileno(): "output"}
    while fds:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProgramError(
                f"reward program {path} ran past its wall-time limit of {timeout_s:g}s and was "
                "stopped"
            )
        ready, _, _ = select.select(list(fds), [], [], left)
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                del fds[fd]
            elif fds[fd] == "answer":
                answer += chunk
            elif len(output) < OUTPUT_LIMIT:
                output += chunk[: OUTPUT_LIMIT - len(output)]
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise ProgramError(
            f"reward program {path} ran past its wall-time limit of {timeout_s:g}s and was stopped"
        ) from None
    return answer, (output, proc.returncode)


def _checked(answer: bytes, output, path: Path, n: int, memory_mb: int) -> list[float]:
    out, rc = output
    text = out.decode(errors="replace").strip()[-500:]
    if not answer:
        why = {-signal.SIGXCPU: "ran past its CPU-time limit",
               -signal.SIGKILL: "was killed (its memory or CPU-time limit)",
               -signal.SIGSEGV: "crashed (a memory fault)"}.get(rc, f"exited with code {rc}")  # fmt: skip
        raise ProgramError(
            f"reward program {path} {why} without an answer"
            + (f"; its last output: {text!r}" if text else "")
        )
    try:
        msg = json.loads(answer.decode())
        if not isinstance(msg, dict) or not ({"error", "scores"} & set(msg)):
            raise ValueError("neither scores nor an error")
    except (ValueError, UnicodeDecodeError) as exc:  # the program wrote on the answer pipe
        raise ProgramError(f"reward program {path} answered outside the protocol: {exc}") from None
    if "error" in msg:
        tried = f"; it tried: {msg['tried']}" if msg.get("tried") else ""
        hint = f" (memory limit {memory_mb} MB)" if "MemoryError" in msg["error"] else ""
        raise ProgramError(f"reward program {path} failed: {msg['error']}{hint}{tried}")
    scores = msg["scores"]
    if len(scores) != n:
        raise ProgramError(f"reward program {path} returned {len(scores)} scores for {n} samples")
    bad = [i for i, s in enumerate(scores) if s is None or not _finite(s)]
    if bad:
        raise ProgramError(
            f"reward program {path} returned a non-finite or non-numeric score for sample "
            f"{bad[0]} ({scores[bad[0]]!r})"
        )
    return [float(s) for s in scores]


def _finite(s) -> bool:
    return isinstance(s, int | float) and s == s and abs(s) != float("inf")


def _kill_group(proc) -> None:
    """The child and anything it left behind in its session are gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _remove(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


# The child: limits, Landlock, seccomp, then the program. Kept as source so that it imports
# nothing of the lab (the lab's source is not readable from inside).
CHILD = r"""
import ctypes, ctypes.util, json, os, resource, sys, traceback
ans = os.fdopen(int(sys.argv[1]), "w")
req = json.loads(sys.stdin.read())
tried = []
SENSITIVE = ("open", "socket.", "subprocess.", "os.fork", "os.exec", "os.posix_spawn", "os.kill",
             "os.system", "ctypes.", "os.remove", "os.rename", "os.mkdir", "shutil.")
REFUSED = ("ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "os.system", "os.exec",
           "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen", "os.kill",
           "os.killpg", "signal.pthread_kill", "socket.__new__", "socket.connect", "socket.bind")
def audit(event, args):
    if req["refuse"] and event in REFUSED:  # named early; the kernel denies these anyway
        tried.append(event)
        raise PermissionError(f"{event} is not allowed in a reward program (the sandbox denies it)")
    if event.startswith(SENSITIVE) and len(tried) < 20:
        a = args[0] if args else ""
        if event == "open" and isinstance(a, str) and a.startswith(tuple(req["read"])):
            return
        tried.append(f"{event}({a!r})" if event == "open" else event)
def reply(obj):
    ans.write(json.dumps(obj)); ans.flush()
mb = req["memory_mb"] * 2**20
resource.setrlimit(resource.RLIMIT_AS, (mb, mb))
resource.setrlimit(resource.RLIMIT_CPU, (req["cpu_s"], req["cpu_s"] + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (2**26, 2**26))
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
import math, random, re, collections, itertools, functools, statistics, string  # the program may use these
if req["confine"]:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    abi = libc.syscall(444, None, 0, 1)
    sc = ctypes.CDLL(req["seccomp"])  # loaded before the file system closes
    fs_all = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
    class Ruleset(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]
    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]
    attr = Ruleset(fs_all, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16
    rs = libc.syscall(444, ctypes.byref(attr), size, 0)
    if rs < 0:
        reply({"error": f"Landlock ruleset failed (errno {ctypes.get_errno()})"}); sys.exit(3)
    READ = 1 | 4 | 8  # execute, read file, read dir
    def allow(path, access):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        if not os.path.isdir(path):
            access &= 1 | 2 | 4 | (1 << 14) | (1 << 15)  # the rights a file can have
        rule = Beneath(access & fs_all, fd)
        if libc.syscall(445, rs, 1, ctypes.byref(rule), 0) < 0:
            reply({"error": f"Landlock rule for {path} failed (errno {ctypes.get_errno()})"}); sys.exit(3)
        os.close(fd)
    for p in req["read"]:
        allow(p, READ)
    allow(req["scratch"], fs_all)
    for dev in ("/dev/null", "/dev/urandom"):
        allow(dev, 2 | 4)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.syscall(446, rs, 0) != 0:
        reply({"error": f"Landlock restrict failed (errno {ctypes.get_errno()})"}); sys.exit(3)
    sc.seccomp_init.restype = ctypes.c_void_p
    sc.seccomp_init.argtypes = [ctypes.c_uint32]
    sc.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    sc.seccomp_load.argtypes = [ctypes.c_void_p]
    sc.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    flt = sc.seccomp_init(0x7FFF0000)  # allow by default
    for name in DENIED:
        nr = sc.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0 and sc.seccomp_rule_add(flt, 0x00050000 | 1, nr, 0) != 0:  # ERRNO(EPERM)
            reply({"error": f"seccomp rule for {name} failed"}); sys.exit(3)
    if sc.seccomp_load(flt) != 0:
        reply({"error": "seccomp filter failed to load"}); sys.exit(3)
sys.addaudithook(audit)
try:
    env = {"__name__": "reward_program"}
    exec(compile(req["source"], req["name"], "exec"), env)
    fn = env.get("reward")
    if not callable(fn):
        raise NameError("the program defines no reward(prompts, completions, **kw)")
    out = [s if isinstance(s, (int, float)) and not isinstance(s, bool) else None
           for s in fn(req["prompts"], req["completions"], **req["kw"])]
    reply({"scores": [None if (isinstance(s, float) and s != s) else s for s in out]})
except BaseException as exc:
    reply({"error": f"{type(exc).__name__}: {exc}", "tried": ", ".join(tried)})
""".replace("DENIED", repr(DENIED))
