import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rewardlab.cache import Cache
from rewardlab.errors import RewardLabError
from rewardlab.sweep import expand, load_sweep, run_sweep
from tests.conftest import tiny_config_dict

RM_BUILDING = re.compile(r"^\[reward_model [^\]]+\] building", re.M)  # a reward model under way

RL = dict(
    steps=2,
    measure_every=1,
    prompts_per_step=2,
    generations=4,
    measure_prompts=2,
    measure_samples=4,
    rewards=["rule", "rm"],
)


def write_sweep(tmp_path, grid, **extra) -> str:
    base = tiny_config_dict(tmp_path)
    base["rewards"] = [
        {"name": "rm", "kind": "learned", "model": {"n_layer": 1, "n_embd": 8, "n_head": 2},
         "epochs": 1}
    ]  # fmt: skip
    base["optimizers"].append({"kind": "grpo", **RL})
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    sweep = {"sweep": "t", "base": "base.yaml", "grid": grid, **extra}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False))
    return str(tmp_path / "sweep.yaml")


def test_expand_product_union_and_overrides(tmp_path):
    path = write_sweep(
        tmp_path,
        [
            {"rewards.0.model.n_embd": [4, 8], "seed": [0, 1, 2]},
            {"seed": [0], "optimizers.1.beta": [0.0, 0.5]},
        ],  # fmt: skip
        set={"pool.n": 8},
    )
    points = expand(load_sweep(path))
    # 2 x 3 from the first grid; of the second, (seed 0, beta 0) is the first grid's
    # (n_embd 8, seed 0) study (the base has n_embd 8 and beta 0): one new study
    assert len(points) == 7
    assert points[3].values == {"rewards.0.model.n_embd": 8, "seed": 0}
    assert points[3].blocks == [0, 1]
    assert [p.values["seed"] for p in points[:3]] == [0, 1, 2]  # the last key varies fastest
    assert [p.config.rewards[0].model.n_embd for p in points[:6]] == [4, 4, 4, 8, 8, 8]
    assert all(p.config.pool.n == 8 for p in points)
    assert points[6].config.optimizers[1].beta == 0.5 and points[6].blocks == [1]
    assert [p.id for p in points[:2]] == ["t-000", "t-001"]
    assert points[0].config.study == "t-000"
    # the same values in two grids are one study that belongs to both
    path = write_sweep(tmp_path, [{"seed": [0, 1]}, {"seed": [1, 2]}])
    points = expand(load_sweep(path))
    assert [p.values for p in points] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    assert points[1].blocks == [0, 1]


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"grid": {"seed": [0]}, "colour": "red"}, "unknown key 'colour'"),
        ({"grid": {}}, "'grid' is empty"),
        ({"grid": {"seed": []}}, "grid key 'seed' has no values"),
        ({"grid": {"seed": [0, "one"]}}, "study t-001 (seed=one): 'seed'"),
        ({"grid": {"rewards.0.colour": [1]}}, "unknown key 'rewards.0.colour'"),
        (
            {"grid": {"rewards.3.epochs": [1]}},
            "rewards is a list of 1 items; '3' is not one of its indices",
        ),
        ({"grid": {"pool.n": ["many"]}}, "'pool.n'"),
        ({"grid": {"seed": [0]}, "backend": "slurm"}, "'backend'"),
    ],
)
def test_bad_sweep_files_fail_before_any_work(tmp_path, sweep, message):
    path = write_sweep(tmp_path, **sweep)
    with pytest.raises(RewardLabError, match="sweep|study") as err:
        run_sweep(load_sweep(path), tmp_path / "out", log=lambda m: None)
    assert message in str(err.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_missing_base_is_named(tmp_path):
    (tmp_path / "s.yaml").write_text("sweep: t\nbase: nowhere.yaml\ngrid: {seed: [0]}\n")
    with pytest.raises(RewardLabError, match="nowhere.yaml does not exist"):
        expand(load_sweep(tmp_path / "s.yaml"))


def test_sweep_runs_gathers_and_resumes(tmp_path):
    path = write_sweep(tmp_path, {"rewards.0.model.n_embd": [4, 8], "seed": [0, 1]})
    msgs = []
    out = run_sweep(load_sweep(path), tmp_path / "out", workers=2, log=msgs.append)
    studies = pd.read_csv(out / "studies.csv")
    assert studies.ok.all() and len(studies) == 4
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns[:3]) == ["study", "rewards.0.model.n_embd", "seed"]
    for sid, n_embd, seed in studies[["study", "rewards.0.model.n_embd", "seed"]].values:
        own = pd.read_csv(out / "studies" / sid / "curves.csv")
        mine = curves[curves.study == sid]
        assert len(mine) == len(own) and (mine["rewards.0.model.n_embd"] == n_embd).all()
        pd.testing.assert_frame_equal(
            mine[own.columns].reset_index(drop=True), own, check_dtype=False
        )
        assert (mine.seed == seed).all()
    assert set(curves.optimizer) == {"bon", "grpo"}
    assert (out / "report.html").stat().st_size > 1000
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.study) == set(studies.study)
    # the two seeds share nothing; the two sizes of one seed share policy, pools, preferences
    built = {sid: json.loads((out / "studies" / sid / "done.json").read_text())["built"]
             for sid in studies.study}  # fmt: skip
    assert sum("policy" in b for b in built.values()) == 2
    assert sum("grpo-rule" in b for b in built.values()) == 2
    # reward-model accuracy per size: the mean of the studies' own reward_models.csv
    acc = pd.read_csv(out / "analysis_rm_accuracy.csv").set_index("x")
    own = pd.concat(
        pd.read_csv(out / "studies" / sid / "reward_models.csv") for sid in studies.study
    )
    for params, mean in own.groupby("params").test_accuracy.mean().items():
        assert acc.loc[params, "test_accuracy"] == pytest.approx(mean)
    assert (acc.seeds == 2).all()

    # resume: nothing to do
    msgs.clear()
    run_sweep(load_sweep(path), tmp_path / "out", workers=2, log=msgs.append)
    assert "4 already finished; running 0" in msgs[0]
    # a study killed before it finished runs again, from the cache (with as many workers, so as
    # many threads each: the thread count is part of every stage's key)
    (out / "studies" / "t-003" / "done.json").unlink()
    msgs.clear()
    run_sweep(load_sweep(path), tmp_path / "out", workers=2, log=msgs.append)
    assert "running 1 " in msgs[0]
    assert json.loads((out / "studies" / "t-003" / "done.json").read_text())["built"] == {}
    pd.testing.assert_frame_equal(curves, pd.read_csv(out / "curves.csv"))


def test_a_failing_study_is_reported_and_the_others_kept(tmp_path):
    path = write_sweep(tmp_path, {"rewards.0.train_pairs": [5, 100_000]})
    with pytest.raises(RewardLabError, match=r"1 of 2 studies failed.*t-001.*train_pairs=100000"):
        run_sweep(load_sweep(path), tmp_path / "out", workers=1, log=lambda m: None)
    studies = pd.read_csv(tmp_path / "out" / "studies.csv")
    assert studies.ok.tolist() == [True, False]
    assert set(pd.read_csv(tmp_path / "out" / "curves.csv").study) == {"t-000"}


def test_process_and_ray_backends_give_the_same_numbers(tmp_path):
    pytest.importorskip("ray")
    grid = {"rewards.0.model.n_embd": [4, 8], "seed": [0]}
    frames = {}
    for backend in ("process", "ray"):
        d = tmp_path / backend
        d.mkdir()
        path = write_sweep(d, grid, cache_dir=str(d / "cache"))  # nothing shared between them
        out = run_sweep(load_sweep(path), d / "out", backend=backend, workers=2, log=lambda m: None)
        frames[backend] = pd.read_csv(out / "curves.csv")
        assert all((d / "out" / "studies" / s / "done.json").is_file() for s in ("t-000", "t-001"))
    pd.testing.assert_frame_equal(frames["process"], frames["ray"])


def _build_counting(root, counter):
    def build(out):
        with open(counter, "a") as f:
            f.write(f"{os.getpid()}\n")
        import time

        time.sleep(0.5)
        (out / "x.txt").write_text("done")

    Cache(root, log=lambda m: None).stage("s", {"k": 1}, build)


def test_concurrent_requests_for_one_stage_build_it_once(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_build_counting, args=(tmp_path / "c", tmp_path / "n")) for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len((tmp_path / "n").read_text().split()) == 1
    (stage,) = [p for p in (tmp_path / "c").iterdir() if p.name.startswith("s-")]
    assert (stage / "x.txt").read_text() == "done"


def _children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (read from /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_workers_die_with_a_killed_sweep(tmp_path):
    path = write_sweep(tmp_path, {"seed": [0, 1]})
    base = yaml.safe_load((tmp_path / "base.yaml").read_text())
    base["rewards"][0]["epochs"] = 100000  # a study that would run for many minutes
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "rewardlab.cli", "sweep", path, "--out", str(out), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    logs = [out / "studies" / sid / "log.txt" for sid in ("t-000", "t-001")]
    try:
        deadline = time.monotonic() + 120
        while not all(f.is_file() and RM_BUILDING.search(f.read_text()) for f in logs):
            assert time.monotonic() < deadline and sweep.poll() is None
            time.sleep(0.5)
        workers = _children(sweep.pid)
        assert len(workers) >= 2
    finally:
        sweep.kill()  # SIGKILL: the sweep can do nothing about its workers
        sweep.wait()
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, "a worker outlived its sweep"
        time.sleep(0.2)
    for f in logs:
        assert "interrupted (SIGTERM)" in f.read_text()  # each unwound its study on the way out
    cache = tmp_path / "cache"
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name]  # and removed its half stage


def test_ctrl_c_of_a_sweep_stops_it_cleanly_and_quietly(tmp_path):
    """SIGINT to the sweep's whole process group, as a terminal's ctrl-c sends it: exit 130 with
    the lab's one line, and no leaked-semaphore warning from Python (the workers' tqdm lock)."""
    import signal

    path = write_sweep(tmp_path, {"seed": [0, 1]})
    base = yaml.safe_load((tmp_path / "base.yaml").read_text())
    base["optimizers"][1]["steps"] = 100000  # inside TRL's trainer, which makes tqdm bars
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "rewardlab.cli", "sweep", path, "--out", str(out), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    logs = [out / "studies" / sid / "log.txt" for sid in ("t-000", "t-001")]
    try:
        deadline = time.monotonic() + 120
        rl = re.compile(r"^\[rl [^\]]+\] building", re.M)
        while not all(f.is_file() and rl.search(f.read_text()) for f in logs):
            assert time.monotonic() < deadline and sweep.poll() is None
            time.sleep(0.5)
        time.sleep(2)
        os.killpg(sweep.pid, signal.SIGINT)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode == 130, err
    assert err.startswith("rewardlab: interrupted (SIGINT)")
    timing = json.loads((out / "timing.json").read_text())  # the stopped run's time is kept
    assert timing["parts"][0]["stopped"] is True and timing["studies_run"] == 0
    assert "leaked" not in err and "Warning" not in err, err


def test_a_ray_cluster_sweep_survives_losing_a_worker_node(tmp_path):
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    path = write_sweep(tmp_path, {"seed": [0, 1, 2]}, cache_dir=str(tmp_path / "cache"))
    base = yaml.safe_load((tmp_path / "base.yaml").read_text())
    base["rewards"][0]["epochs"] = 600  # a stage of seconds: both nodes are inside one at the kill
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    out = tmp_path / "out"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # the head runs none
    try:
        doomed = cluster.add_node(num_cpus=1)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        sweep = subprocess.Popen(
            [sys.executable, "-m", "rewardlab.cli", "sweep", path, "--backend", "ray",
             "--address", cluster.address, "--workers", "2", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        logs = [out / "studies" / f"t-00{i}" / "log.txt" for i in range(3)]
        deadline = time.monotonic() + 180
        while sum(bool(f.is_file() and RM_BUILDING.search(f.read_text())) for f in logs) < 2:
            assert time.monotonic() < deadline and sweep.poll() is None, sweep.stdout.read()
            time.sleep(0.2)
        cluster.remove_node(doomed, allow_graceful=False)  # both nodes were busy: one study dies
        said, _ = sweep.communicate(timeout=600)
    finally:
        cluster.shutdown()
    assert sweep.returncode == 0, said
    studies = pd.read_csv(out / "studies.csv")
    assert studies.ok.all() and len(studies) == 3
    texts = [f.read_text() for f in logs]
    starts = [t.count("[policy] building") + t.count("[policy] cached") for t in texts]
    assert sorted(starts) == [1, 1, 2]  # the study on the lost node ran again, on the other
    built = [line.split()[-1] for t in texts for line in t.splitlines() if " built in " in line]
    assert len(built) == len(set(built))  # no stage was built twice
    assert sorted(built) == sorted(str(p) for p in (tmp_path / "cache").glob("*-*") if
                                   (p / "meta.json").is_file())  # fmt: skip
    assert said.count(" done in ") == 3  # every study completed exactly once

    pool = tmp_path / "pool"  # the same sweep on a process pool, from an empty cache of its own
    pool.mkdir()
    (pool / "base.yaml").write_text(yaml.safe_dump({**base, "cache_dir": str(pool / "cache")}))
    sweep_cfg = yaml.safe_load(open(path))
    (pool / "sweep.yaml").write_text(
        yaml.safe_dump({**sweep_cfg, "cache_dir": str(pool / "cache")})
    )
    pool_out = run_sweep(
        load_sweep(pool / "sweep.yaml"), pool / "out", workers=2, log=lambda m: None
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(pool_out / "curves.csv"), pd.read_csv(out / "curves.csv")
    )


def test_a_study_finished_before_the_config_gained_a_field_is_still_finished(tmp_path):
    from rewardlab.config import StudyConfig, dump_config
    from rewardlab.sweep import DONE, finished

    cfg = StudyConfig.model_validate(tiny_config_dict(tmp_path))
    d = tmp_path / "study"
    d.mkdir()
    assert not finished(d, cfg)  # no done.json
    old = yaml.safe_load(dump_config(cfg))
    del old["tracking"]  # a field the config gained after the study finished
    (d / "config.yaml").write_text(yaml.safe_dump(old))
    (d / DONE).write_text(json.dumps({"key": "written-by-an-older-rewardlab"}))
    assert finished(d, cfg)
    old["pool"]["n"] += 1  # the same file with a value that differs: another study
    (d / "config.yaml").write_text(yaml.safe_dump(old))
    assert not finished(d, cfg)


def test_timing_adds_each_run_of_a_sweep_to_the_parts_before_it(tmp_path):
    from rewardlab.sweep import record_timing

    # a file written before parts existed counts as one part
    old = dict(backend="process", workers=2, threads=1, studies_run=16, wall_seconds=1378.0)
    (tmp_path / "timing.json").write_text(json.dumps(old))
    part = dict(backend="process", workers=2, threads=1, studies_run=14, wall_seconds=1649.0,
                stopped=False)  # fmt: skip
    rec = record_timing(tmp_path, part)
    assert rec["studies_run"] == 30 and rec["wall_seconds"] == pytest.approx(3027.0)
    assert [q["studies_run"] for q in rec["parts"]] == [16, 14] and "stopped" not in rec
    assert json.loads((tmp_path / "timing.json").read_text()) == rec
