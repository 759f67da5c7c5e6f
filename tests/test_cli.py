import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import tiny_config_dict
from tasks.test_base import USER_TASK

from rewardlab import cli


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["rewardlab", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def study_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(tmp_path)))
    return path


def assert_one_paragraph(err: str) -> None:
    assert "Traceback" not in err
    assert err.startswith("rewardlab: error: ") and err.strip().count("\n") == 0


def test_unknown_key(monkeypatch, capsys, study_file):
    code, _, err = run_cli(monkeypatch, capsys, "run", str(study_file), "--set", "policy.epochz=2")
    assert code == 2
    assert_one_paragraph(err)
    assert "unknown key 'policy.epochz'" in err and "tiny.yaml" in err


def test_a_bad_config_is_reported_before_the_study_machinery_is_imported(study_file):
    """The error comes from the config alone: the study, its report and its plots (matplotlib,
    transformers) are never imported, as a fresh interpreter's import log shows."""
    import subprocess

    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "rewardlab", "run",
                        str(study_file), "--set", "policy.epochz=2"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 2 and "unknown key 'policy.epochz'" in r.stderr
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if "|" in line}
    assert "rewardlab.config" in imported  # the log is read
    assert not imported & {"rewardlab.study", "matplotlib", "transformers", "trl"}


def test_unknown_task(monkeypatch, capsys, study_file):
    code, _, err = run_cli(monkeypatch, capsys, "run", str(study_file), "--task", "chess")
    assert code == 2
    assert_one_paragraph(err)
    assert "'chess'" in err


def test_task_file_that_fails_to_import(monkeypatch, capsys, study_file, tmp_path):
    bad = tmp_path / "bad_task.py"
    bad.write_text("raise RuntimeError('boom at import')\n")
    code, _, err = run_cli(monkeypatch, capsys, "run", str(study_file), "--task", str(bad))
    assert code == 2
    assert_one_paragraph(err)
    assert "bad_task.py" in err and "boom at import" in err


def test_gold_nan_stops_with_the_sample_and_keeps_finished_stages(
    monkeypatch, capsys, study_file, tmp_path
):
    task = tmp_path / "echo_task.py"
    task.write_text(USER_TASK)
    args = [
        "run",
        str(study_file),
        "--task",
        str(task),
        "--set",
        "task.params={bad: nan}",
        "--out",
        str(tmp_path / "run"),
    ]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert_one_paragraph(err)
    assert "returned nan" in err and "on sample" in err and "completion" in err
    finished = [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert any(n.startswith("policy-") for n in finished)


def test_run_writes_the_run_folder(monkeypatch, capsys, study_file, tmp_path):
    code, out, _ = run_cli(
        monkeypatch, capsys, "run", str(study_file), "--out", str(tmp_path / "run")
    )
    assert code == 0, out
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert "rm-a" in out and "test_accuracy" in out


def test_report_command_rebuilds_a_run(monkeypatch, capsys, study_file, tmp_path):
    run = tmp_path / "run"
    assert run_cli(monkeypatch, capsys, "run", str(study_file), "--out", str(run))[0] == 0
    (run / "report.html").unlink()
    code, out, _ = run_cli(monkeypatch, capsys, "report", str(run))
    assert code == 0 and (run / "report.html").is_file() and "rm-a" in out
    code, _, err = run_cli(monkeypatch, capsys, "report", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err


def test_gridworld_run_writes_a_table_with_intervals(monkeypatch, capsys, tmp_path):
    out = tmp_path / "gw"
    code, stdout, _ = run_cli(
        monkeypatch,
        capsys,
        "gridworld",
        "run",
        "absent-supervisor",
        "--seeds",
        "2",
        "--out",
        str(out),
    )
    assert code == 0 and "supervisor absent" in stdout
    s = pd.read_csv(out / "summary.csv").set_index("condition")
    assert s.loc["supervisor absent", "unsupervised_shortcut_per_episode"] == 1.0
    assert s.loc["supervisor present", "gold"] == 41.0
    assert {"visible_lo", "visible_hi", "gold_lo"} <= set(s.columns)
    assert (out / "report.html").is_file() and (out / "training.png").is_file()
    code, _, err = run_cli(monkeypatch, capsys, "gridworld", "run", "chess")
    assert code == 2 and "unknown gridworld experiment 'chess'" in err


def test_sweep_dry_run_and_bad_sweep_files(monkeypatch, capsys, study_file, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"sweep: s\nbase: {study_file.name}\ngrid: {{seed: [0, 1], pool.n: [8]}}\n")
    code, out, _ = run_cli(monkeypatch, capsys, "sweep", str(sweep), "--dry-run")
    assert code == 0 and "s-000  seed=0  pool.n=8" in out and "2 studies" in out
    sweep.write_text(f"sweep: s\nbase: {study_file.name}\ngrid: {{policy.epochz: [1]}}\n")
    code, _, err = run_cli(monkeypatch, capsys, "sweep", str(sweep))
    assert code == 2
    assert_one_paragraph(err)
    assert "unknown key 'policy.epochz'" in err and "study s-000" in err
    code, _, err = run_cli(monkeypatch, capsys, "sweep", str(tmp_path / "none.yaml"))
    assert code == 2 and "none.yaml does not exist" in err
    code, _, err = run_cli(monkeypatch, capsys, "sweep", str(sweep), "--backend", "slurm")
    assert code == 2 and "--backend 'slurm'" in err


def test_a_bad_option_value_is_a_usage_error_not_a_traceback(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "gridworld", "run", "coin-shop", "--seeds", "1")
    assert code == 2 and "Traceback" not in err and "--seeds" in err


@pytest.mark.parametrize(
    "override, message",
    [
        ("seed=[1", r"--set 'seed=\[1': the value '\[1' is not valid YAML \(expected ',' or '\]'"),
        ("seed.x=1", r"--set seed.x: seed is a value \(0\), not a mapping, so it has no key 'x'"),
        ("rewards.7.lr=1", r"rewards is a list of 2 items; '7' is not one of its indices"),
        ("reward_models.x=1", r"keys of an earlier rewardlab: 'reward_models'"),
        ("optimizers.0.rewards=[x]", r"optimizer 'bon' names unknown rewards \['x'\]; known"),
    ],
)
def test_bad_overrides_are_one_short_paragraph(monkeypatch, capsys, study_file, override, message):
    code, _, err = run_cli(monkeypatch, capsys, "run", str(study_file), "--set", override)
    assert code == 2
    assert_one_paragraph(err)
    assert re.search(message, err) and len(err) < 600  # the config itself is not dumped


def test_an_empty_study_file_is_refused(monkeypatch, capsys, tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    code, _, err = run_cli(monkeypatch, capsys, "run", str(tmp_path / "empty.yaml"))
    assert code == 2 and "empty.yaml is empty" in err
    assert not (tmp_path / "runs").exists()


def test_a_folder_as_task_lists_the_builtin_tasks(monkeypatch, capsys, study_file):
    code, _, err = run_cli(monkeypatch, capsys, "run", str(study_file), "--task", "some/dir")
    assert code == 2
    assert_one_paragraph(err)
    assert "'some/dir': not a built-in task (arithmetic, neural, sorting, topics)" in err


def test_a_task_whose_make_task_raises(monkeypatch, capsys, study_file, tmp_path):
    bad = tmp_path / "raising_task.py"
    bad.write_text("def make_task(**kw):\n    raise ValueError('no data here')\n")
    code, _, err = run_cli(monkeypatch, capsys, "run", str(study_file), "--task", str(bad))
    assert code == 2
    assert_one_paragraph(err)
    assert re.search(r"make_task\(\*\*\{.*\}\) raised ValueError: no data here", err)


def test_negative_gridworld_timesteps_are_refused(monkeypatch, capsys, tmp_path):
    out = tmp_path / "gw"
    code, _, err = run_cli(monkeypatch, capsys, "gridworld", "run", "coin-shop", "--agent", "dqn",
                           "--timesteps", "-5", "--out", str(out))  # fmt: skip
    assert code == 2 and "--timesteps" in err and "Traceback" not in err
    assert not out.exists()


def test_a_task_with_the_wrong_number_of_gold_scores_fails_before_training(
    monkeypatch, capsys, study_file, tmp_path
):
    task = tmp_path / "short_gold.py"
    src = Path(__file__).parents[1] / "examples" / "tasks" / "reverse.py"
    task.write_text(
        src.read_text().replace("        return scores\n", "        return scores[:-1]\n")
    )
    code, _, err = run_cli(monkeypatch, capsys, "run", str(study_file), "--task", str(task))
    assert code == 2
    assert_one_paragraph(err)
    assert "gold" in err and not list((tmp_path / "cache").glob("policy-*"))


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_with_a_message_and_keeps_finished_stages(tmp_path, signame):
    import signal
    import subprocess

    cfg = tiny_config_dict(tmp_path)
    cfg["rewards"][0]["epochs"] = 2000  # a reward-model stage long enough to be interrupted
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardlab.cli", "run", str(path), "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:  # stdout reaches a pipe line by line
        if line.startswith("[reward_model ") and line.rstrip().endswith("building ..."):
            break
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + getattr(signal, signame)
    assert f"interrupted ({signame}); finished stages are kept" in err and "Traceback" not in err
    cache = tmp_path / "cache"
    finished = {p.name.split("-")[0] for p in cache.iterdir() if (p / "meta.json").is_file()}
    assert finished == {"policy", "pool", "preferences"}
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name or p.name.startswith("reward")]


def test_cache_verify_and_gc_recover_every_corrupt_stage_in_one_rerun(
    monkeypatch, capsys, study_file, tmp_path
):
    assert (
        run_cli(monkeypatch, capsys, "run", str(study_file), "--out", str(tmp_path / "r"))[0] == 0
    )
    cache = tmp_path / "cache"
    models = sorted(cache.glob("reward_model-*"))
    for m in models:  # every reward model damaged at once
        (m / "model.safetensors").write_bytes(b"broken")
    code, out, _ = run_cli(monkeypatch, capsys, "cache", "verify", str(cache))
    assert code == 1 and f"{len(models)} corrupt" in out
    assert all(str(m) in out for m in models)
    code, out, _ = run_cli(monkeypatch, capsys, "cache", "gc", str(cache), "--dry-run")
    assert code == 0 and all(m.is_dir() for m in models) and "would remove" in out
    code, out, _ = run_cli(monkeypatch, capsys, "cache", "gc", str(cache))
    assert code == 0 and not any(m.exists() for m in models)
    code, out, _ = run_cli(monkeypatch, capsys, "cache", "list", str(cache))
    assert code == 0 and "finished" in out and "corrupt" not in out
    code, out, _ = run_cli(
        monkeypatch, capsys, "run", str(study_file), "--out", str(tmp_path / "r")
    )
    assert code == 0 and all((m / "meta.json").is_file() for m in models)  # one rerun: all back
    code, out, _ = run_cli(monkeypatch, capsys, "cache", "verify", str(cache))
    assert code == 0 and ", 0 corrupt" in out


def _in_own_mount(tmp_path, mount_opts: str, args: list[str]):
    """Run the CLI in a user and mount namespace with a tmpfs (`mount_opts`) on tmp_path/fs."""
    import shlex
    import shutil
    import subprocess

    fs = tmp_path / "fs"
    fs.mkdir()
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1) on this machine: cannot mount a small file system")
    cmd = (f"mount -t tmpfs -o {mount_opts} tmpfs {shlex.quote(str(fs))} && exec "
           + shlex.join([sys.executable, "-m", "rewardlab.cli", *args]))  # fmt: skip
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode:
        pytest.skip(f"user namespaces not offered here: {probe.stderr.decode().strip()}")
    return fs, subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True)


def test_a_full_disk_is_one_paragraph(tmp_path):
    cfg = tiny_config_dict(tmp_path)
    cfg["cache_dir"] = str(tmp_path / "fs" / "cache")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    _, res = _in_own_mount(
        tmp_path, "size=200k", ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "run")]
    )
    assert res.returncode == 2, res.stderr
    assert_one_paragraph(res.stderr)
    assert "No space left on device" in res.stderr and "free some space" in res.stderr


def test_a_read_only_output_folder_is_one_paragraph(tmp_path, study_file):
    args = ["run", str(study_file), "--out", str(tmp_path / "fs" / "run")]
    _, res = _in_own_mount(tmp_path, "ro", args)
    assert res.returncode == 2, res.stderr
    assert_one_paragraph(res.stderr)
    assert "Read-only file system" in res.stderr and "writable --out" in res.stderr
