"""The sandbox against hostile reward programs: each attempt is blocked or killed, with a clear
error, nothing outside touched, and the lab's process alive."""

import os
import socket
import threading
import time

import pandas as pd
import pytest

from rewardlab.sandbox import ProgramError, check_available, score_program

try:
    check_available()
except Exception as exc:  # pragma: no cover - a machine without Landlock or libseccomp
    pytest.skip(f"no sandbox on this machine: {exc}", allow_module_level=True)


def _program(tmp_path, body: str, name: str = "prog.py"):
    path = tmp_path / name
    path.write_text("import os, sys\n\ndef reward(prompts, completions, **kw):\n" + body)
    return path


def _run(path, **kw):
    return score_program(path, ["p", "q"], ["a b", "c"], **kw)


def test_a_good_program_scores_and_receives_the_columns(tmp_path):
    path = _program(
        tmp_path,
        "    return [len(c.split()) + kw['bonus'][i] for i, c in enumerate(completions)]\n",
    )
    assert score_program(path, ["p", "q"], ["a b", "c"], {"bonus": [10, 20]}) == [12.0, 21.0]


def test_reading_a_file_outside_is_denied(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("gold")
    path = _program(tmp_path, f"    return [float(len(open({str(secret)!r}).read()))] * 2\n")
    with pytest.raises(ProgramError, match=r"Permission denied.*it tried: open\('.*secret.txt'\)"):
        _run(path)


def test_reading_the_caches_gold_scores_is_denied(tmp_path):
    cache = tmp_path / "cache" / "pool-0123456789ab"
    cache.mkdir(parents=True)
    pd.DataFrame({"completion": ["a"], "gold": [0.9]}).to_parquet(cache / "pool.parquet")
    path = _program(
        tmp_path, f"    open({str(cache / 'pool.parquet')!r}, 'rb').read()\n    return [1.0, 1.0]\n"
    )
    with pytest.raises(ProgramError, match="Permission denied"):
        _run(path)
    home = _program(tmp_path, "    os.listdir('/root')\n    return [1.0, 1.0]\n", "h.py")
    with pytest.raises(ProgramError, match="Permission denied"):
        _run(home)


def test_writing_outside_the_scratch_folder_is_denied(tmp_path):
    target = tmp_path / "written.txt"
    path = _program(tmp_path, f"    open({str(target)!r}, 'w').write('x')\n    return [1.0, 1.0]\n")
    with pytest.raises(ProgramError, match="Permission denied"):
        _run(path)
    assert not target.exists()
    scratch = _program(
        tmp_path,
        "    open('notes.txt', 'w').write('ok')\n    return [float(len(open('notes.txt').read()))] * 2\n",
        "s.py",
    )
    assert _run(scratch) == [2.0, 2.0]  # its own scratch folder (the working folder) is writable


def test_a_tcp_connection_is_denied(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []
    t = threading.Thread(target=lambda: accepted.append(_accept(server)))
    t.start()
    path = _program(
        tmp_path,
        f"    import socket\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    return [1.0, 1.0]\n",
    )
    with pytest.raises(ProgramError, match=r"not allowed in a reward program.*socket"):
        _run(path)
    t.join()
    server.close()
    assert accepted == [None]  # nothing reached the listener


def _accept(server):
    try:
        return server.accept()
    except TimeoutError:
        return None


@pytest.mark.parametrize(
    "body, tried",
    [
        ("    while True:\n        os.fork()\n", "os.fork"),
        (
            "    import subprocess\n    subprocess.run(['ls'])\n    return [1.0, 1.0]\n",
            "subprocess.Popen",
        ),
        ("    os.system('touch /tmp/rewardlab-pwned')\n    return [1.0, 1.0]\n", "os.system"),
        (
            "    import ctypes\n    ctypes.CDLL(None).fork()\n    return [1.0, 1.0]\n",
            "ctypes.dlopen",
        ),
        ("    os.kill(os.getppid(), 9)\n    return [1.0, 1.0]\n", "os.kill"),
    ],
)
def test_processes_and_signals_are_denied(tmp_path, body, tried):
    path = _program(tmp_path, body)
    with pytest.raises(ProgramError, match=f"it tried: .*{tried}"):
        _run(path)
    assert not os.path.exists("/tmp/rewardlab-pwned")
    assert os.getpid() > 0  # the lab's process is alive (it would be dead after os.kill)


def test_memory_beyond_the_limit_is_an_error(tmp_path):
    path = _program(tmp_path, "    x = bytearray(8 * 2**30)\n    return [1.0, 1.0]\n")
    with pytest.raises(ProgramError, match=r"MemoryError.*memory limit 256 MB"):
        _run(path, memory_mb=256)


def test_an_endless_loop_is_stopped_and_gone(tmp_path):
    marker = "rewardlab_endless_marker"
    path = _program(tmp_path, f"    {marker} = 1\n    while True:\n        pass\n")
    t0 = time.monotonic()
    with pytest.raises(ProgramError, match="wall-time limit of 1.5s"):
        _run(path, timeout_s=1.5)
    assert time.monotonic() - t0 < 5
    left = [p for p in os.listdir("/proc") if p.isdigit() and _cmd(p).startswith(b"python")
            and b"import ctypes" in _cmd(p) and os.getpgid(int(p)) != os.getpgid(0)]  # fmt: skip
    assert left == []


def _cmd(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return os.path.basename(f.read())
    except OSError:
        return b""


def test_garbage_on_stdout_cannot_forge_the_answer(tmp_path):
    path = _program(
        tmp_path,
        "    print('{\"scores\": [9, 9]}')\n    print('garbage ' * 10000)\n    return [0.5, 0.25]\n",
    )
    assert _run(path) == [0.5, 0.25]


@pytest.mark.parametrize(
    "body, message",
    [
        ("    return [1.0]\n", "returned 1 scores for 2 samples"),
        ("    return [1.0, float('nan')]\n", "non-finite or non-numeric score for sample 1"),
        ("    return [1.0, 'x']\n", "non-finite or non-numeric score for sample 1"),
        ("    raise ValueError('cannot score')\n", "failed: ValueError: cannot score"),
    ],
)
def test_a_wrong_answer_is_named(tmp_path, body, message):
    with pytest.raises(ProgramError, match=message):
        _run(_program(tmp_path, body))


@pytest.mark.parametrize(
    "body, errno_text",
    [
        ("    os.fork()\n", "Operation not permitted"),
        ("    import socket\n    socket.socket()\n", "Operation not permitted"),
        ("    os.kill(os.getppid(), 9)\n", "Operation not permitted"),
        ("    import subprocess\n    subprocess.run(['ls'])\n", "Operation not permitted"),
        (
            "    import ctypes\n    r = ctypes.CDLL(None).syscall(57)\n    raise OSError(f'fork gave {r}')\n",
            "fork gave -1",
        ),
    ],
)
def test_the_kernel_layer_alone_denies(tmp_path, body, errno_text):
    """With the audit hook only recording, Landlock and seccomp still deny (EPERM)."""
    path = _program(tmp_path, body + "    return [1.0, 1.0]\n")
    with pytest.raises(ProgramError, match=errno_text):
        score_program(path, ["p", "q"], ["a b", "c"], _refuse=False)


def test_a_program_reward_in_a_study_scores_the_pool(tmp_path):
    from rewardlab.config import StudyConfig
    from rewardlab.study import run_study
    from tests.conftest import tiny_config_dict

    prog = tmp_path / "length.py"
    prog.write_text("def reward(prompts, completions, **kw):\n"
                    "    return [float(len(c.split())) for c in completions]\n")  # fmt: skip
    d = tiny_config_dict(tmp_path)
    d["rewards"] = [{"name": "len", "kind": "program", "path": str(prog)}]
    s = run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda m: None)
    scores = pd.read_parquet(s.stages["scores"].path / "scores.parquet")
    assert scores["len"].tolist() == [float(len(c.split())) for c in scores.completion]
    table = pd.read_csv(tmp_path / "run" / "rewards.csv").set_index("reward")
    assert table.loc["len", "kind"] == "program" and bool(table.loc["len", "sandboxed"])


def test_a_program_that_fails_on_one_sample_is_stopped_or_skipped_per_sample(tmp_path):
    from rewardlab.errors import RewardLabError
    from rewardlab.rewards.guard import GuardedReward
    from rewardlab.rewards.program import ProgramReward

    path = _program(tmp_path, "    if 'bad' in completions:\n        open('/etc/shadow')\n"
                    "    return [1.0] * len(completions)\n")  # fmt: skip
    fn = ProgramReward(path)
    g = GuardedReward(fn, "prog", mode="skip")
    assert g(["p"] * 3, ["ok", "bad", "ok"]) == [1.0, None, 1.0] and g.skipped == 1
    with pytest.raises(
        RewardLabError, match=r"reward 'prog' raised .*Permission denied.* on sample 1"
    ):
        GuardedReward(fn, "prog", mode="stop")(["p"] * 3, ["ok", "bad", "ok"])


def test_writing_on_the_answer_pipe_is_an_error_not_a_crash(tmp_path):
    path = _program(tmp_path, "    for fd in range(3, 256):\n        try:\n"
                    "            os.write(fd, b'{not json')\n        except OSError:\n"
                    "            pass\n    return [1.0, 1.0]\n")  # fmt: skip
    with pytest.raises(ProgramError, match="answered outside the protocol"):
        _run(path)


# --- issue 25: a program that acts on other processes, root capabilities, disk, bad answers ---


def _sleeper():
    import subprocess

    return subprocess.Popen(["sleep", "60"])


def _sched(pid: int):
    return (os.getpriority(os.PRIO_PROCESS, pid), os.sched_getaffinity(pid),
            os.sched_getscheduler(pid))  # fmt: skip


def test_a_program_cannot_set_the_labs_resource_limits(tmp_path):
    import resource

    before = [resource.getrlimit(r) for r in (resource.RLIMIT_CPU, resource.RLIMIT_NOFILE)]
    path = _program(tmp_path, "    import resource\n"
                    "    resource.prlimit(os.getppid(), resource.RLIMIT_CPU, (1, 1))\n"
                    "    resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE, (5, 5))\n"
                    "    return [1.0, 1.0]\n")  # fmt: skip
    with pytest.raises(ProgramError, match="Operation not permitted"):
        _run(path)
    assert [resource.getrlimit(r) for r in (resource.RLIMIT_CPU, resource.RLIMIT_NOFILE)] == before
    good = _program(tmp_path, "    import resource\n"  # its own limits it may lower
                    "    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))\n"
                    "    return [float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])] * 2\n", "g.py")  # fmt: skip
    assert _run(good) == [32.0, 32.0]
    assert _run(good) == [32.0, 32.0]  # the next call still finds libseccomp (files not exhausted)


@pytest.mark.parametrize("target", ["lab", "other"])
def test_a_program_cannot_change_another_processs_priority_affinity_or_scheduler(tmp_path, target):
    other = _sleeper()
    pid = os.getpid() if target == "lab" else other.pid
    try:
        before = _sched(pid)
        for i, call in enumerate([
            f"os.setpriority(os.PRIO_PROCESS, {pid}, 19)",
            f"os.sched_setaffinity({pid}, {{0}})",
            f"os.sched_setscheduler({pid}, os.SCHED_IDLE, os.sched_param(0))",
            "os.setpriority(os.PRIO_USER, 0, 19)",
        ]):  # fmt: skip
            path = _program(tmp_path, f"    {call}\n    return [1.0, 1.0]\n", f"p{i}.py")
            with pytest.raises(ProgramError, match="Operation not permitted"):
                _run(path)
        assert _sched(pid) == before
    finally:
        other.kill()
        other.wait()
    own = _program(tmp_path, "    os.nice(1)\n    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
                   "    return [float(os.getpriority(os.PRIO_PROCESS, 0)), float(len(os.sched_getaffinity(0)))]\n",
                   "own.py")  # fmt: skip
    assert _run(own)[1] == 1.0  # a program may still lower its own priority and affinity


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")


@root_only
def test_as_root_a_device_node_made_in_scratch_cannot_be_opened(tmp_path):
    path = _program(tmp_path, "    import stat\n"
                    "    os.mknod('kmsg', 0o600 | stat.S_IFCHR, os.makedev(1, 11))\n"
                    "    return [float(len(open('kmsg', 'rb').read(100)))] * 2\n")  # fmt: skip
    with pytest.raises(ProgramError, match="Operation not permitted|Permission denied"):
        _run(path, _refuse=False)


@root_only
def test_as_root_reboot_and_sethostname_are_refused_before_their_arguments_are_read(tmp_path):
    import platform

    nrs = {"x86_64": (169, 170), "aarch64": (142, 161)}.get(platform.machine())
    if nrs is None:
        pytest.skip(f"system call numbers not known for {platform.machine()}")
    path = _program(tmp_path, "    import ctypes\n    libc = ctypes.CDLL(None, use_errno=True)\n"
                    f"    libc.syscall({nrs[0]}, 0, 0, 0, 0)\n    e1 = ctypes.get_errno()\n"
                    f"    libc.syscall({nrs[1]}, 0, -1)\n    e2 = ctypes.get_errno()\n"
                    "    return [float(e1), float(e2)]\n")  # fmt: skip
    import errno

    assert _run(path, _refuse=False) == [float(errno.EPERM)] * 2  # not EINVAL: no argument read


WRITE_600MB = ("    block = b'x' * 2**20\n    for f in range(12):\n"
               "        with open(f'big{f}', 'wb') as out:\n"
               "            for _ in range(50):\n                out.write(block)\n"
               "    return [1.0, 1.0]\n")  # fmt: skip


def test_600mb_written_to_scratch_is_stopped_by_the_cap(tmp_path):
    """Where the machine offers namespaces (as `rewardlab sandbox-check` says), the tmpfs stops
    the writes (ENOSPC); elsewhere accounting stops the program."""
    import subprocess
    import sys

    layers = subprocess.run([sys.executable, "-m", "rewardlab.cli", "sandbox-check"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    path = _program(tmp_path, WRITE_600MB)
    stopped_by = "No space left on device" if "user and mount namespaces" in layers else "the cap"
    with pytest.raises(ProgramError, match=stopped_by):
        _run(path)


def test_600mb_written_to_scratch_is_stopped_by_accounting_without_namespaces(
    tmp_path, monkeypatch
):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = _program(tmp_path, WRITE_600MB)
    with pytest.raises(
        ProgramError, match=r"wrote more than 64 MB to its scratch folder \(the cap\)"
    ):
        _run(path, _namespaces=False)
    many = _program(tmp_path, "    for i in range(5000):\n        open(f'f{i}', 'w').close()\n"
                    "    return [1.0, 1.0]\n", "many.py")  # fmt: skip
    with pytest.raises(ProgramError, match="more than 1024 files and folders"):
        _run(many, _namespaces=False)
    assert os.listdir(tmp_path / "tmp") == []


def test_a_read_only_folder_in_scratch_is_still_removed(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = _program(tmp_path, "    os.makedirs('d/e')\n    open('d/e/f', 'wb').write(b'x' * 10**6)\n"
                    "    os.chmod('d/e', 0o500)\n    os.chmod('d', 0o000)\n    return [1.0, 1.0]\n")  # fmt: skip
    for ns in (True, False):
        assert _run(path, _namespaces=ns) == [1.0, 1.0]
        assert os.listdir(tmp_path / "tmp") == []


@pytest.mark.parametrize(
    "body, message",
    [
        ("    return [10**400, 1.0]\n", r"non-finite or non-numeric score for sample 0"),
        ("    return [1.0, -10**400]\n", r"non-finite or non-numeric score for sample 1"),
        ("    return 5\n", r"failed: TypeError"),
        (
            "    raise ValueError('\\x1b[31m' + 'x' * 8_000_000)\n",
            r"failed: ValueError: \\x1b\[31mx+ \.\.\. \[\d+ more characters\]",
        ),
    ],
)
def test_bad_values_are_the_labs_error_with_a_bounded_message(tmp_path, body, message):
    with pytest.raises(ProgramError, match=message) as err:
        _run(_program(tmp_path, body))
    assert len(str(err.value)) < 3000 and "\x1b" not in str(err.value)


@pytest.mark.parametrize(
    "payload",
    [
        "'{\"scores\": ' + '[' * 100000 + ']' * 100000 + '}'",
        "'{\"error\": 5}'",
        '\'{"error": "x", "tried": [1]}\'',
        "'{\"scores\": 7}'",
        "'{\"scores\": [1e999, 2]}'",
        "'x' * 20_000_000",
    ],
)
def test_a_forged_answer_is_the_labs_error(tmp_path, payload):
    path = _program(tmp_path, f"    data = ({payload}).encode()\n    fd = int(sys.argv[1])\n"
                    "    while data:\n        data = data[os.write(fd, data[:65536]):]\n"
                    "    os._exit(0)\n")  # fmt: skip
    with pytest.raises(ProgramError, match="answered outside the protocol|non-finite"):
        _run(path)


def test_numpy_scalars_are_scores(tmp_path):
    path = _program(tmp_path, "    import numpy as np\n    return [np.float32(0.5), np.int64(2)]\n")
    assert _run(path) == [0.5, 2.0]


def test_skip_mode_costs_one_timeout_per_hanging_batch(tmp_path):
    from rewardlab.rewards.guard import GuardedReward
    from rewardlab.rewards.program import ProgramReward

    path = _program(tmp_path, "    while True:\n        pass\n")
    g = GuardedReward(ProgramReward(path, timeout_s=2), "hang", mode="skip")
    t0 = time.monotonic()
    assert g(["p"] * 6, [f"c{i}" for i in range(6)]) == [None] * 6
    assert time.monotonic() - t0 < 4.0 and g.skipped == 6


def test_kept_errors_hold_no_file_descriptors(tmp_path):
    path = _program(tmp_path, "    raise ValueError('no')\n")
    kept = []
    pipes = _open_pipes()
    for _ in range(20):
        with pytest.raises(ProgramError) as err:
            _run(path)
        kept.append(err.value)
    assert _open_pipes() <= pipes + 2  # not one per kept error (other threads may open a few)


def _open_pipes() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
        except OSError:
            pass
    return n
