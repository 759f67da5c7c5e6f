"""The cache's housekeeping: temporary folders of killed builds, inventory, verify, collect."""

import json
import subprocess
import sys
import time

from rewardlab.cache import Cache, collect, garbage, inventory

BUILDER = """
import sys, time
from pathlib import Path
from rewardlab.cache import Cache

def build(out):
    (out / "half.bin").write_bytes(b"x" * 1000)
    print("building", flush=True)
    time.sleep(600)

Cache(sys.argv[1], log=lambda m: None).stage("slow", {"k": int(sys.argv[2])}, build)
"""


def _start_builder(root, k):
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILDER, str(root), str(k)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "building\n"
    return proc


def test_a_killed_builds_temporary_folder_is_removed_a_live_ones_is_kept(tmp_path):
    root = tmp_path / "cache"
    dead, live = _start_builder(root, 1), _start_builder(root, 2)
    try:
        dead.kill()  # SIGKILL: the build cannot clean up after itself
        dead.wait()
        tmps = sorted(p.name for p in root.glob(".*.tmp-*"))
        assert len(tmps) == 2
        status = {r["path"].rsplit("/", 1)[1]: r["status"] for r in inventory(root)}
        assert sorted(status[t] for t in tmps) == ["building", "stale"]
        msgs = []
        Cache(root, log=msgs.append)
        left = [p for p in root.glob(".*.tmp-*")]
        assert len(left) == 1 and status[left[0].name] == "building"  # the live one's is kept
        assert msgs == ["[cache] removed 1 temporary folder(s) of builds that died"]
    finally:
        live.kill()
        live.wait()


def _finished(root, k, payload=b"data"):
    Cache(root, log=lambda m: None).stage(
        "s", {"k": k}, lambda out: (out / "f.bin").write_bytes(payload)
    )


def test_a_clean_cache_lists_only_stages_and_leaves_nothing_to_collect(tmp_path):
    root = tmp_path / "cache"
    _finished(root, 1)
    _finished(root, 2)
    assert len(list(root.glob(".*.lock"))) == 2  # each stage keeps its (empty) lock
    assert [r["status"] for r in inventory(root)] == ["finished", "finished"]
    assert garbage(root) == []


def test_collect_removes_garbage_and_keeps_finished_stages(tmp_path):
    root = tmp_path / "cache"
    _finished(root, 1)
    _finished(root, 2)
    _finished(root, 3)
    folders = {json.loads((p / "meta.json").read_text())["key"]["k"]: p for p in root.glob("s-*")}
    (folders[2] / "f.bin").write_bytes(b"dat!")  # same size, other content
    (folders[3] / "meta.json").unlink()  # as if killed between its files and meta.json
    partial = root / f"{folders[1].name}.partial"  # saved state of a stage since finished
    partial.mkdir()
    stale = root / ".s-0123456789ab.tmp-host-1"
    stale.mkdir()
    orphan = root / ".s-fedcba987654.lock"  # the lock of a stage that has no folder
    orphan.touch()
    assert {r["status"] for r in inventory(root, verify_files=True)} == {
        "finished", "corrupt", "unfinished", "partial", "stale", "lock",
    }  # fmt: skip
    found = {p.name: why for p, why in garbage(root)}
    assert set(found) == {folders[2].name, folders[3].name, partial.name, stale.name, orphan.name,
                          f".{folders[3].name}.lock", f".{folders[2].name}.lock"}  # fmt: skip
    assert "f.bin differs" in found[folders[2].name]
    before = sorted(p.name for p in root.iterdir())
    assert len(collect(root, dry_run=True)) == 7
    assert sorted(p.name for p in root.iterdir()) == before  # a dry run removes nothing
    collect(root)
    assert sorted(p.name for p in root.iterdir()) == [f".{folders[1].name}.lock", folders[1].name]
    t0 = time.monotonic()
    _finished(root, 2)  # the next run rebuilds what was removed
    assert (folders[2] / "f.bin").read_bytes() == b"data" and time.monotonic() - t0 < 60


def test_the_context_is_part_of_every_key(tmp_path):
    """A stage built under one context (a study's thread count) is not taken under another."""
    builds = []

    def build(out):
        builds.append(1)
        (out / "x.txt").write_text("x")

    def stage(threads):
        cache = Cache(tmp_path, log=lambda m: None, context={"threads": threads})
        return cache.run("s", lambda out, k: build(out), k=1)

    one = stage(1)
    assert json.loads((one.path / "meta.json").read_text())["key"]["threads"] == 1
    two = stage(2)
    assert len(builds) == 2 and two.path != one.path and two.built
    again = stage(1)
    assert len(builds) == 2 and again.path == one.path and not again.built
