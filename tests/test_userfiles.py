"""A user's task or reward is keyed on its content: editing it (or a module it imports) rebuilds
every stage built from it; moving it does not."""

import hashlib
import shutil
import sys
from pathlib import Path

from rewardlab.cache import Cache
from rewardlab.rewards.function import Config as FunctionConfig
from rewardlab.tasks import TaskConfig, load_task
from rewardlab.userfiles import source_digest

REVERSE = Path(__file__).parents[1] / "examples" / "tasks" / "reverse.py"
GOLD_LINE = "scores.append(right / max(len(toks), len(target)) if toks else 0.0)"


def _stage(cache: Cache, task_cfg: TaskConfig) -> bool:
    """Build (or reuse) a stage that reads the task; whether it was built."""

    def fn(task_cfg, out):
        (out / "gold.txt").write_text(str(task_cfg.load().gold(["reverse a b :"], ["b a"])))

    return cache.run("probe", fn, task_cfg=task_cfg).built


def test_an_edited_task_file_rebuilds_its_stages(tmp_path):
    task_file = tmp_path / "reverse.py"
    shutil.copy(REVERSE, task_file)
    assert GOLD_LINE in task_file.read_text()  # the line the edit below inverts
    cfg = TaskConfig(name=str(task_file))
    cache = Cache(tmp_path / "cache", log=lambda m: None)
    assert _stage(cache, cfg) and not _stage(cache, cfg)  # built once, then reused
    task_file.write_text(
        task_file.read_text().replace("scores.append(right", "scores.append(-right")
    )
    assert _stage(cache, cfg)  # the inverted gold is a new task: rebuilt
    assert load_task(str(task_file)).gold(["reverse a b :"], ["b a"]) == [-1.0]
    # the same content elsewhere is the same task: the key holds content, not the path's text
    moved = tmp_path / "elsewhere.py"
    shutil.copy(task_file, moved)
    assert source_digest(str(moved)) == source_digest(str(task_file))


def test_a_module_task_and_the_modules_it_imports_are_keyed(tmp_path, monkeypatch):
    pkg = tmp_path / "labtask_pkg"
    pkg.mkdir()
    (pkg / "helper.py").write_text("SIGN = 1.0\n")
    (pkg / "__init__.py").write_text(REVERSE.read_text())
    (pkg / "task.py").write_text(
        "from labtask_pkg import make_task as _make\nfrom labtask_helpers import SCALE\n\n"
        "def make_task(**kw):\n    return _make(**kw)\n"
    )
    (tmp_path / "labtask_helpers.py").write_text("SCALE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cfg = TaskConfig(name="labtask_pkg.task")
    cfg.load()
    before = cfg.cache_key()["sha256"]
    expected = hashlib.sha256(
        "\n".join(
            sorted(
                hashlib.sha256(f.read_bytes()).hexdigest()
                for f in [*pkg.glob("*.py"), tmp_path / "labtask_helpers.py"]
            )
        ).encode()
    ).hexdigest()
    assert before == expected  # the package's files and the outside helper it imported
    (tmp_path / "labtask_helpers.py").write_text("SCALE = 3\n")
    assert cfg.cache_key()["sha256"] != before
    (tmp_path / "labtask_helpers.py").write_text("SCALE = 2\n")
    assert cfg.cache_key()["sha256"] == before
    (pkg / "helper.py").write_text("SIGN = -1.0\n")  # not imported, but part of the package
    assert cfg.cache_key()["sha256"] != before


def test_builtin_task_keys_are_their_config():
    cfg = TaskConfig(name="sorting")
    assert cfg.cache_key() == cfg.model_dump(mode="json")


def test_a_reward_module_is_keyed_on_its_content(tmp_path, monkeypatch):
    (tmp_path / "labreward_mod.py").write_text(
        "def reward(p, c, **kw):\n    return [1.0] * len(c)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = FunctionConfig(name="r", path="labreward_mod")
    before = cfg.cache_key()["sha256"]
    (tmp_path / "labreward_mod.py").write_text(
        "def reward(p, c, **kw):\n    return [0.0] * len(c)\n"
    )
    assert cfg.cache_key()["sha256"] != before


def test_a_model_folder_is_keyed_on_its_files_content(tmp_path):
    """folder_sha256 against the same digest computed here by hand; a file rewritten in place
    (same name, same size) changes it, renaming the folder does not."""
    from rewardlab.specs import ModelSpec
    from rewardlab.userfiles import folder_sha256

    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "sub" / "w.bin").write_bytes(b"\x00" * 64)

    def by_hand(root):
        rows = [
            f"{rel} {hashlib.sha256((root / rel).read_bytes()).hexdigest()}"
            for rel in ("config.json", "sub/w.bin")
        ]
        return hashlib.sha256("\n".join(rows).encode()).hexdigest()

    before = folder_sha256(folder)
    assert before == by_hand(folder)
    (folder / "sub" / "w.bin").write_bytes(b"\x01" * 64)  # retrained in place
    assert folder_sha256(folder) == by_hand(folder) != before
    moved = folder.rename(tmp_path / "elsewhere")
    assert folder_sha256(moved) == by_hand(moved)
    assert folder_sha256(tmp_path / "absent") == "missing"
    spec = ModelSpec(path=str(moved))
    assert spec.cache_key() == {**spec.model_dump(mode="json"), "path_sha256": by_hand(moved)}
    assert ModelSpec().cache_key() == ModelSpec().model_dump(mode="json")  # built specs unchanged
