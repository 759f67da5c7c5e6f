"""Inputs a study names: relative paths resolve from the study file's folder, every input is
checked before any stage or run folder exists, and the packaged studies run from anywhere."""

from pathlib import Path

import pytest
import yaml

import rewardlab
from rewardlab.config import STUDIES, StudyConfig, find_study, load_config
from rewardlab.errors import RewardLabError
from rewardlab.inputs import rebase
from rewardlab.study import run_study
from rewardlab.sweep import expand, load_sweep

REWARD = """\
def reward(prompts, completions, **kw):
    return [float(len(c)) for c in completions]
"""

SMALL = {  # a study of seconds: a one-layer policy, a user's reward, best-of-n only
    "study": "inputs",
    "policy": {"model": {"n_layer": 1, "n_embd": 16, "n_head": 2}, "train_prompts": 64,
               "epochs": 1},
    "preferences": {"prompts": 16},
    "pool": {"prompts": 2, "n": 8},
    "optimizers": [{"kind": "bon"}],
}  # fmt: skip


def test_rebase_makes_relative_input_paths_relative_to_the_base_folder(tmp_path):
    data = {
        "task": {"name": "tasks/my_task.py"},
        "policy": {"model": {"path": "models/pol"}},
        "preferences": {"file": "prefs.jsonl"},
        "cache_dir": "runs/cache",
        "rewards": [
            {"name": "a", "kind": "function", "path": "my_reward.py"},
            {"name": "b", "kind": "function", "path": "some_module.rewards"},
            {"name": "c", "kind": "program", "path": "builtin:topics_required_only"},
            {"name": "d", "kind": "program", "path": "/abs/prog.py"},
            {"name": "e", "kind": "learned", "model": {"path": "../rm"}},
            {"name": "f", "kind": "human", "db": "labels.sqlite", "labeller": "x"},
        ],
    }
    rebase(data, StudyConfig, tmp_path)
    assert data["task"]["name"] == f"{tmp_path}/tasks/my_task.py"
    assert data["policy"]["model"]["path"] == f"{tmp_path}/models/pol"
    assert data["preferences"]["file"] == f"{tmp_path}/prefs.jsonl"
    assert data["cache_dir"] == "runs/cache"  # an output, relative to where the run starts
    r = data["rewards"]
    assert r[0]["path"] == f"{tmp_path}/my_reward.py"
    assert r[1]["path"] == "some_module.rewards"  # a module name
    assert r[2]["path"] == "builtin:topics_required_only"
    assert r[3]["path"] == "/abs/prog.py"
    assert r[4]["model"]["path"] == f"{tmp_path}/../rm"
    assert r[5]["db"] == f"{tmp_path}/labels.sqlite"
    builtin = {"task": {"name": "topics"}}
    assert rebase(builtin, StudyConfig, tmp_path) == {"task": {"name": "topics"}}


def _study(folder: Path, reward_path: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {**SMALL, "rewards": [{"name": "mine", "kind": "function", "path": reward_path}]}
    f = folder / "study.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def test_a_study_naming_a_reward_beside_it_runs_from_another_folder(tmp_path, monkeypatch):
    study = _study(tmp_path / "elsewhere", "my_reward.py")
    (tmp_path / "elsewhere" / "my_reward.py").write_text(REWARD)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # no my_reward.py here
    s = rewardlab.run(study, overrides={"cache_dir": str(tmp_path / "c")}, out=tmp_path / "run",
                      log=lambda _: None)  # fmt: skip
    assert "mine" in set(s.summary["reward"])
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["rewards"][0]["path"] == str(tmp_path / "elsewhere" / "my_reward.py")


def test_a_missing_reward_file_is_reported_before_any_stage_and_leaves_no_folder(tmp_path):
    study = _study(tmp_path / "s", "not_there.py")
    cfg = load_config(study, [f"cache_dir={tmp_path / 'cache'}"])
    with pytest.raises(RewardLabError) as err:
        run_study(cfg, tmp_path / "run", log=lambda _: None)
    msg = str(err.value)
    assert f"rewards.0.path: file {tmp_path / 's' / 'not_there.py'} does not exist" in msg
    assert "relative to that file's folder" in msg
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "cache").exists()  # no stage was built


def test_every_missing_input_is_named_at_once(tmp_path):
    data = {**SMALL, "task": {"name": "no/such_task.py"}, "policy": {"model": {"path": "nomodel"}},
            "rewards": [{"name": "p", "kind": "program", "path": "prog.py"},
                        {"name": "m", "kind": "function", "path": "no_such_module_xyz"}]}  # fmt: skip
    with pytest.raises(RewardLabError) as err:
        rewardlab.run(data, out=tmp_path / "run", log=lambda _: None)
    msg = str(err.value)
    for part in (
        "task.name: 'no/such_task.py': not a built-in task (arithmetic, neural, sorting, topics)",
        "policy.model.path: model folder nomodel does not exist",
        "rewards.0.path: file prog.py does not exist",
        "rewards.1.path: 'no_such_module_xyz' is neither a file nor an importable module",
    ):
        assert part in msg, part  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_an_unknown_builtin_program_is_a_config_error():
    with pytest.raises(RewardLabError, match="no built-in reward program 'nope'; there are: "):
        rewardlab.api.resolve({"rewards": [{"name": "p", "kind": "program",
                                            "path": "builtin:nope"}]})  # fmt: skip


def test_packaged_studies_are_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_study("tiny") == STUDIES / "tiny.yaml"
    assert load_config().study == "quick"  # the defaults are the model's, not a file
    assert load_config("quick").pool.n == 1024
    with pytest.raises(RewardLabError, match="not the name of a packaged study or sweep"):
        find_study("quik")


def test_sweep_paths_resolve_from_their_own_files(tmp_path, monkeypatch):
    _study(tmp_path / "base", "r.py")
    (tmp_path / "base" / "r.py").write_text(REWARD)
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "other.py").write_text(REWARD)
    (tmp_path / "sw" / "sweep.yaml").write_text(yaml.safe_dump({
        "sweep": "paths", "base": "../base/study.yaml",
        "grid": {"rewards.0.path": ["other.py", str(tmp_path / "base" / "r.py")]},
    }))  # fmt: skip
    monkeypatch.chdir(tmp_path)
    points = expand(load_sweep(tmp_path / "sw" / "sweep.yaml"))
    assert [p.config.rewards[0].path for p in points] == [
        str(tmp_path / "sw" / "other.py"), str(tmp_path / "base" / "r.py")]  # fmt: skip
    (tmp_path / "sw" / "other.py").unlink()
    with pytest.raises(RewardLabError, match=r"paths-000 .*rewards.0.path: file .*other.py does"):
        expand(load_sweep(tmp_path / "sw" / "sweep.yaml"))


def test_a_run_folders_config_is_read_as_the_run_wrote_it(tmp_path):
    """A run's config.yaml is what the run resolved: its paths are not rebased on the folder
    (an older run wrote them relative to where it ran, and its stages are keyed on them)."""
    from rewardlab.config import run_config

    data = {**SMALL, "rewards": [{"name": "mine", "kind": "function", "path": "my_reward.py"}]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    assert run_config(tmp_path).rewards[0].path == "my_reward.py"
    assert load_config(tmp_path / "config.yaml").rewards[0].path == str(tmp_path / "my_reward.py")
