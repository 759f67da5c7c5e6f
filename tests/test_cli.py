import sys

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
        if line.startswith("[reward_model] building"):
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
