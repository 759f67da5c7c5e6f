"""The sandbox's child process: it confines itself, then runs one reward program on one batch.

Run as ``python -I -c <this file's text> <answer fd>`` by `rewardlab.sandbox`, with the request
(JSON) on stdin. It imports nothing of the lab (the lab's source is not readable once confined).
In order, before the program's text is compiled:
1. resource limits (address space, CPU seconds, file size, open files, no core dumps);
2. where the kernel lets it: a user and a mount namespace of its own (the caller's uid and gid
   mapped to themselves) with a size- and inode-limited tmpfs mounted over the scratch folder,
   so the kernel caps what the program can write;
3. every capability dropped (bounding, ambient, effective, permitted, inheritable) and
   ``no_new_privs`` set;
4. Landlock: read and execute beneath the runtime's folders, read and write (no device nodes,
   no sockets, no device ioctls) beneath scratch, TCP bind and connect denied, signals and
   abstract unix sockets scoped;
5. seccomp: an allow list; every other system call fails with EPERM before the kernel reads its
   arguments. Calls that act on a process (prlimit64, setpriority, sched_*, kill, tgkill) are
   allowed only when they name the caller itself.
"""

import ctypes
import ctypes.util
import json
import os
import resource
import sys

# system calls a confined reward program may make (others fail with EPERM)
ALLOWED = (
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "lseek", "open", "openat", "openat2", "creat", "close", "close_range", "stat",
    "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir",
    "fchdir", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat",
    "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat",
    "truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "flock", "fcntl", "dup", "dup2",
    "dup3", "pipe", "pipe2", "umask", "utime", "utimes", "utimensat", "mmap", "munmap",
    "mprotect", "mremap", "madvise", "brk", "msync", "mincore", "rt_sigaction",
    "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigsuspend",
    "sigaltstack", "restart_syscall", "select", "pselect6", "poll", "ppoll", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd",
    "eventfd2", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
    "gettimeofday", "time", "times", "getrusage", "sysinfo", "uname", "alarm", "getitimer",
    "setitimer", "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid",
    "getgroups", "getresuid", "getresgid", "getpgrp", "getpgid", "getsid", "getrandom", "futex",
    "set_robust_list", "get_robust_list", "set_tid_address", "rseq", "arch_prctl",
    "sched_yield", "getcpu", "getrlimit", "setrlimit", "exit", "exit_group", "capget",
)  # fmt: skip
# calls allowed only when argument 0 names the caller (0 or its own pid)
SELF_ONLY = (
    "prlimit64", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
    "sched_getscheduler", "sched_setscheduler", "sched_getattr", "sched_setattr",
)  # fmt: skip
PRELOADED = (
    "collections",
    "functools",
    "itertools",
    "math",
    "random",
    "re",
    "statistics",
    "string",
)
IOCTLS = (0x5401, 0x541B, 0x5451, 0x5450, 0x5421)  # TCGETS, FIONREAD, FIOCLEX, FIONCLEX, FIONBIO

# Landlock access rights (linux/landlock.h)
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1, 2, 4, 8
MAKE_CHAR, MAKE_SOCK, MAKE_BLOCK, IOCTL_DEV = 1 << 6, 1 << 9, 1 << 11, 1 << 15
# clone flags, mount flags, prctl options
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4


def reply(obj) -> None:
    ANSWER.write(json.dumps(obj))
    ANSWER.flush()


def fail(message: str) -> None:
    reply({"error": message})
    sys.exit(3)


def set_limits(req) -> None:
    mb = req["memory_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (mb, mb))
    resource.setrlimit(resource.RLIMIT_CPU, (req["cpu_s"], req["cpu_s"] + 1))
    per_file = min(2**26, req["scratch_mb"] * 2**20)
    resource.setrlimit(resource.RLIMIT_FSIZE, (per_file, per_file))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def own_namespaces(libc, req) -> str:
    """A user and mount namespace with a capped tmpfs over scratch; '' when the kernel refuses
    the namespaces, 'user namespace' when it refuses the mounts (the parent then caps scratch
    by accounting, as it always measures it)."""
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        return ""
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    except OSError as exc:
        fail(f"the sandbox's user namespace could not be mapped ({exc})")
    opts = f"size={req['scratch_mb']}m,nr_inodes={req['scratch_files']},mode=0700"
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if (
        libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0
        or libc.mount(b"tmpfs", req["scratch"].encode(), b"tmpfs", flags, opts.encode()) != 0
    ):  # a kernel that refuses mounts here: scratch stays the folder, capped by the parent
        return "user namespace"
    os.chdir(req["scratch"])  # the tmpfs, not the folder beneath it
    return "namespaces"


def drop_capabilities(libc) -> None:
    """No capability in any set; with no_new_privs no exec can give one back."""
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last cap; EPERM unprivileged
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable (two 32-bit words each)
    if libc.capset(header, data) != 0:
        fail(f"capabilities could not be dropped (errno {ctypes.get_errno()})")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        fail(f"no_new_privs could not be set (errno {ctypes.get_errno()})")
    with open("/proc/self/status") as f:
        left = [ln for ln in f if ln.startswith(("CapEff", "CapPrm", "CapInh", "CapAmb"))]
    if any(int(ln.split()[1], 16) for ln in left):
        fail(f"capabilities remain after dropping them: {left}")


def landlock(libc, req) -> None:
    abi = libc.syscall(444, None, 0, 1)
    fs_all = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0)
    fs_all |= IOCTL_DEV if abi >= 5 else 0

    class Ruleset(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    attr = Ruleset(fs_all, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)
    rs = libc.syscall(444, ctypes.byref(attr), 24 if abi >= 6 else 16, 0)
    if rs < 0:
        fail(f"Landlock ruleset failed (errno {ctypes.get_errno()})")

    def allow(path, access):
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        if not os.path.isdir(path):
            access &= EXECUTE | WRITE_FILE | READ_FILE | (1 << 14) | IOCTL_DEV  # a file's rights
        if libc.syscall(445, rs, 1, ctypes.byref(Beneath(access & fs_all, fd)), 0) < 0:
            fail(f"Landlock rule for {path} failed (errno {ctypes.get_errno()})")
        os.close(fd)

    for p in req["read"]:
        allow(p, EXECUTE | READ_FILE | READ_DIR)
    allow(req["scratch"], fs_all & ~(MAKE_CHAR | MAKE_BLOCK | MAKE_SOCK | IOCTL_DEV))
    for dev in ("/dev/null", "/dev/urandom"):
        allow(dev, WRITE_FILE | READ_FILE)
    if libc.syscall(446, rs, 0) != 0:
        fail(f"Landlock restrict failed (errno {ctypes.get_errno()})")


class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64),
                ("b", ctypes.c_uint64)]  # fmt: skip


def seccomp(sc) -> None:
    """Deny by default (EPERM); allow ALLOWED, SELF_ONLY naming the caller, a few ioctls,
    setpriority/getpriority on the caller, kill/tgkill of the caller."""
    sc.seccomp_init.restype = ctypes.c_void_p
    sc.seccomp_init.argtypes = [ctypes.c_uint32]
    sc.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                          ctypes.c_uint, ctypes.POINTER(ArgCmp)]  # fmt: skip
    sc.seccomp_load.argtypes = [ctypes.c_void_p]
    sc.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    allow, eq = 0x7FFF0000, 4  # SCMP_ACT_ALLOW, SCMP_CMP_EQ
    flt = sc.seccomp_init(0x00050000 | 1)  # SCMP_ACT_ERRNO(EPERM)
    pid = os.getpid()

    def rule(name, *cmps):
        nr = sc.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # not a call of this architecture
            return
        arr = (ArgCmp * max(1, len(cmps)))(*[ArgCmp(i, eq, v, 0) for i, v in cmps])
        if sc.seccomp_rule_add_array(flt, allow, nr, len(cmps), arr) != 0:
            fail(f"seccomp rule for {name} failed")

    for name in ALLOWED:
        rule(name)
    for name in SELF_ONLY:
        rule(name, (0, 0))
        rule(name, (0, pid))
    for name in ("getpriority", "setpriority"):  # PRIO_PROCESS, who = 0 or the caller
        rule(name, (0, 0), (1, 0))
        rule(name, (0, 0), (1, pid))
    rule("kill", (0, pid))
    rule("tgkill", (0, pid))
    for request in IOCTLS:
        rule("ioctl", (1, request))
    if sc.seccomp_load(flt) != 0:
        fail("seccomp filter failed to load")


def c_library():
    """libc with the argument types the confinement calls need."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    return libc


def confine(req) -> str:
    libc = c_library()
    sc = ctypes.CDLL(req["seccomp"])  # loaded before the file system closes
    layers = own_namespaces(libc, req) if req["namespaces"] else ""
    drop_capabilities(libc)
    landlock(libc, req)
    seccomp(sc)
    return layers


SENSITIVE = ("open", "socket.", "subprocess.", "os.fork", "os.exec", "os.posix_spawn", "os.kill",
             "os.system", "ctypes.", "os.remove", "os.rename", "os.mkdir", "shutil.")  # fmt: skip
REFUSED = ("ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "os.system", "os.exec",
           "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen", "os.kill",
           "os.killpg", "signal.pthread_kill", "socket.__new__", "socket.connect",
           "socket.bind")  # fmt: skip


def main() -> None:
    req = json.loads(sys.stdin.read())
    if req.get("probe"):  # which layers this machine offers: the namespaces, and nothing else run
        reply({"layers": own_namespaces(c_library(), req)})
        return
    tried = []

    def audit(event, args):
        if req["refuse"] and event in REFUSED:  # named early; the kernel denies these anyway
            tried.append(event)
            raise PermissionError(
                f"{event} is not allowed in a reward program (the sandbox denies it)"
            )
        if event.startswith(SENSITIVE) and len(tried) < 20:
            a = args[0] if args else ""
            if event == "open" and isinstance(a, str) and a.startswith(tuple(req["read"])):
                return
            tried.append(cut(f"{event}({a!r})", 200) if event == "open" else event)

    set_limits(req)
    for name in PRELOADED:  # imported while the file system is open, for the program to use
        __import__(name)

    layers = confine(req) if req["confine"] else ""
    reply_head = {"layers": layers}
    sys.addaudithook(audit)
    try:
        env = {"__name__": "reward_program"}
        exec(compile(req["source"], req["name"], "exec"), env)
        fn = env.get("reward")
        if not callable(fn):
            raise NameError("the program defines no reward(prompts, completions, **kw)")
        out = [to_number(s) for s in fn(req["prompts"], req["completions"], **req["kw"])]
        reply({**reply_head, "scores": out})
    except BaseException as exc:
        error = cut(f"{type(exc).__name__}: {exc}", 2000)
        reply({**reply_head, "error": error, "tried": ", ".join(tried)})


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, saying how many were left out (the parent escapes it)."""
    return (
        text if len(text) <= limit else text[:limit] + f" ... [{len(text) - limit} more characters]"
    )


def to_number(s):
    """A finite float, or None (not a number, or not finite: the parent names the sample)."""
    if isinstance(s, bool) or not hasattr(s, "__float__"):
        return None
    try:
        f = float(s)  # numpy scalars, ints too large for a float (OverflowError), ...
    except Exception:  # noqa: BLE001 - whatever the object's __float__ raises
        return None
    return f if f == f and abs(f) != float("inf") else None


ANSWER = os.fdopen(int(sys.argv[1]), "w") if __name__ == "__main__" else None
if __name__ == "__main__":
    main()
