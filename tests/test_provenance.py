"""provenance.json: the commit and tree state, the config's hash, and regenerating a results folder."""

import hashlib
import json
import subprocess
import sys

import pytest
import yaml

from rewardlab.errors import RewardLabError
from rewardlab.provenance import FILE, recipe_argv, reproduce, source_state


def _git(cwd, *args):
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip


def test_source_state_names_the_commit_and_a_dirty_tree(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    head = (repo / ".git" / (repo / ".git" / "HEAD").read_text().split()[1]).read_text().strip()
    assert source_state(repo) == {"commit": head, "dirty": False}
    (repo / "untracked.txt").write_text("not part of the tree\n")
    assert source_state(repo)["dirty"] is False  # untracked files do not make it dirty
    (repo / "docs").mkdir()
    (repo / "docs" / "r.csv").write_text("x\n")
    _git(repo, "add", "docs/r.csv")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "two")
    head = _git(repo, "rev-parse", "HEAD")
    (repo / "docs" / "r.csv").write_text("y\n")  # results regenerated into docs/: still clean
    assert source_state(repo) == {"commit": head, "dirty": False}
    (repo / "a.txt").write_text("two\n")
    assert source_state(repo) == {"commit": head, "dirty": True}
    assert source_state(repo / "docs") == {"commit": head, "dirty": True}  # from any folder
    outside = tmp_path / "plain"
    outside.mkdir()
    assert source_state(outside) == {"commit": None, "dirty": None}


def test_a_run_folder_records_its_config_hash_seed_and_command(finished_run):
    rec = json.loads((finished_run / FILE).read_text())
    text = (finished_run / "config.yaml").read_bytes()
    assert rec["config_hash"] == "sha256:" + hashlib.sha256(text).hexdigest()
    assert rec["seeds"] == [yaml.safe_load(text)["seed"]] == [0]
    assert rec["seconds"] > 0 and rec["date"][:2] == "20"
    assert "cores" in rec["machine"] and "commit" in rec and "dirty" in rec


@pytest.mark.parametrize(
    "command",
    ["bash -c 'rm -rf /'", "python /tmp/x.py", "python examples/../evil.py",
     "python -c 'print(1)'", "examples/local_models.py", "'unclosed"],
)  # fmt: skip
def test_only_the_labs_own_commands_may_be_recorded(command, tmp_path):
    with pytest.raises(RewardLabError, match="command"):
        recipe_argv(command, tmp_path)


def test_recorded_commands_run_with_this_interpreter(tmp_path):
    assert recipe_argv("rewardlab sweep studies/x.yaml --out {out}", tmp_path / "w") == [
        sys.executable, "-m", "rewardlab", "sweep", "studies/x.yaml", "--out", str(tmp_path / "w")
    ]  # fmt: skip
    assert recipe_argv("python examples/plot.py {out}", tmp_path) == [
        sys.executable, "examples/plot.py", str(tmp_path)
    ]  # fmt: skip


def test_reproduce_regenerates_a_results_folder(tmp_path):
    """A results folder of a tiny study: `reproduce` runs its command, copies the tables it lists
    and writes a record whose hash is that of the config the run resolved."""
    from conftest import tiny_config_dict

    root = tmp_path / "repo"
    (root / "docs" / "results" / "tiny").mkdir(parents=True)
    (root / "tiny.yaml").write_text(yaml.safe_dump(tiny_config_dict(tmp_path)))
    folder = root / "docs" / "results" / "tiny"
    seed = {"what": "a tiny study", "commands": ["rewardlab run tiny.yaml --out {out}"],
            "files": {"docs/results/tiny/summary.csv": "summary.csv",
                      "docs/img/tiny/bon.png": "bon_curves.png"}}  # fmt: skip
    (folder / FILE).write_text(json.dumps(seed))
    rec = reproduce(folder, root=root, log=lambda _: None)
    work = root / "runs" / "reproduce" / "tiny"
    assert "compute_seconds" not in rec  # a study, not a sweep: no timing.json
    assert (folder / "summary.csv").read_bytes() == (work / "summary.csv").read_bytes()
    assert (root / "docs" / "img" / "tiny" / "bon.png").stat().st_size > 0
    written = json.loads((folder / FILE).read_text())
    assert written == rec
    text = (work / "config.yaml").read_bytes()
    assert written["config_hash"] == "sha256:" + hashlib.sha256(text).hexdigest()
    assert written["seeds"] == [0] and written["commands"] == seed["commands"]
    assert written["files"] == seed["files"] and written["what"] == "a tiny study"
    # a sweep's record of the runs that computed it, resumed once: regenerating it again resumes
    (work / "timing.json").write_text(json.dumps({"wall_seconds": 3027.04, "studies_run": 30}))
    again = reproduce(folder, root=root, log=lambda _: None)
    assert again["compute_seconds"] == 3027.0 and again["studies_run"] == 30


def test_reproduce_refuses_a_folder_it_cannot_regenerate(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    with pytest.raises(RewardLabError, match="no provenance.json"):
        reproduce(folder, root=tmp_path)
    (folder / FILE).write_text(json.dumps({"commands": ["rewardlab run x.yaml"]}))
    with pytest.raises(RewardLabError, match="'files'"):
        reproduce(folder, root=tmp_path)
    (folder / FILE).write_text(
        json.dumps({"commands": ["rewardlab run x.yaml"], "files": {"../../etc/x": "a.csv"}})
    )
    with pytest.raises(RewardLabError, match="inside the repository"):
        reproduce(folder, root=tmp_path)
    (folder / FILE).write_text(
        json.dumps({"commands": ["rewardlab run missing.yaml"], "files": {"a.csv": "a.csv"}})
    )
    with pytest.raises(RewardLabError, match="failed; .* is unchanged"):
        reproduce(folder, root=tmp_path, log=lambda _: None)
