"""Sweeps: a grid over study config keys, expanded into studies that share the stage cache.

A sweep file::

    sweep: gao-scaling
    base: quick.yaml              # a study YAML (relative to this file) or an inline mapping
    set: {bon.prompts: 48}        # overrides applied to every study
    grid:                         # the product of the lists; the last key varies fastest
      reward_models.0.model.n_embd: [8, 32, 96]
      seed: [0, 1, 2]

``grid`` may also be a list of such mappings: the sweep is then the union of their products
(for example a size axis and a data axis that share one point). Every study is validated before
any work starts. Studies run on a local process pool (default) or on Ray; each writes its own run
folder ``<out>/studies/<id>/``, and the sweep gathers their curves and summaries with one column
per swept key. A killed sweep resumes: a study whose run folder holds ``done.json`` for the same
config is not run again, and stages finished inside unfinished studies are taken from the cache.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import Field, ValidationError

from rewardlab.cache import digest
from rewardlab.common.config_io import format_validation_error, read_yaml_mapping, set_key
from rewardlab.common.io import write_atomic
from rewardlab.config import StudyConfig, config_json, dump_config, find_study, read_study
from rewardlab.errors import Interrupted, RewardLabError, unwind_on_signals
from rewardlab.inputs import check, rebase
from rewardlab.provenance import TIMING, write_provenance
from rewardlab.specs import Strict

DONE = "done.json"
RAY_RETRIES = 3  # runs of a study whose Ray worker or node died, after the first
PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent dies


class SweepConfig(Strict):
    """A sweep file: a base study, overrides for all, and a grid (or a list of grids)."""

    sweep: str = Field(..., description="name; the default output folder is runs/<sweep>")
    base: str | dict[str, Any] = Field(
        ..., description="study YAML path (relative to the sweep file) or an inline study mapping"
    )
    set: dict[str, Any] = Field(default_factory=dict, description="overrides for every study")
    grid: dict[str, list[Any]] | list[dict[str, list[Any]]] = Field(
        ..., description="dotted key -> values; a list of grids is the union of their products"
    )
    backend: Literal["process", "ray"] = Field("process", description="where studies run")
    workers: int | None = Field(None, ge=1, description="parallel studies (default: cores)")
    cache_dir: str | None = Field(None, description="overrides the studies' cache_dir")
    folder: Path = Field(
        Path("."), exclude=True,
        description="the sweep file's folder (set on loading): relative input paths given in "
        "the file, in 'base', 'set' or 'grid', are relative to it",
    )  # fmt: skip


@dataclass
class Point:
    """One study of a sweep: its id, the swept values that define it and its resolved config."""

    id: str
    values: dict[str, Any]
    config: StudyConfig
    blocks: list[int]  # the grids (of a list of grids) this study belongs to

    @property
    def key(self) -> str:
        """Hash of the resolved config: a finished study is reused only for the same config."""
        return digest(config_json(self.config))


def load_sweep(path: str | Path, overrides: dict[str, Any] | None = None) -> SweepConfig:
    """Read and validate a sweep file, a path or a packaged sweep's name (unknown keys, empty
    grids and bad types are errors)."""
    path = find_study(path, "sweep file")
    data = read_yaml_mapping(path, "sweep file")
    if "folder" in data:
        raise RewardLabError(f"sweep file {path}: unknown key 'folder' (it is set on loading)")
    data.update(overrides or {}, folder=path.parent.absolute())
    try:
        cfg = SweepConfig.model_validate(data)
    except ValidationError as err:
        raise RewardLabError(
            format_validation_error(err, f"sweep file {path}", SweepConfig)
        ) from None
    grids = cfg.grid if isinstance(cfg.grid, list) else [cfg.grid]
    if not grids or any(not g for g in grids):
        raise RewardLabError(f"sweep file {path}: 'grid' is empty; give at least one key")
    for g in grids:
        for k, v in g.items():
            if not v:
                raise RewardLabError(f"sweep file {path}: grid key {k!r} has no values")
    if isinstance(cfg.base, str) and not Path(cfg.base).is_absolute():
        cfg.base = str(path.parent / cfg.base)
    return cfg


def _label(v: Any) -> Any:
    """A swept value as a table cell: scalars as they are, anything else as compact JSON."""
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def expand(cfg: SweepConfig, source: str = "sweep") -> list[Point]:
    """Every study of the sweep, validated; studies with the same resolved config appear once
    (in the first grid that reaches them, listed in `blocks` of every grid that does).

    Raises:
        RewardLabError: naming the grid point and the key that make a study invalid.
    """
    base = (
        read_study(Path(cfg.base), "base study")
        if isinstance(cfg.base, str)
        else copy.deepcopy(cfg.base)
    )
    grids = cfg.grid if isinstance(cfg.grid, list) else [cfg.grid]
    points: list[Point] = []
    seen: dict[str, Point] = {}
    for b, g in enumerate(grids):
        keys = list(g)
        for combo in itertools.product(*(g[k] for k in keys)):
            values = dict(zip(keys, combo, strict=True))
            pid = f"{cfg.sweep}-{len(points):03d}"
            data = copy.deepcopy(base)
            shown = ", ".join(f"{k}={_label(v)}" for k, v in values.items())
            where = f"{source}, study {pid} ({shown})"
            for k, v in {**cfg.set, **values}.items():
                try:
                    set_key(data, k, copy.deepcopy(v), where)
                except (TypeError, ValueError, IndexError, AttributeError):
                    raise RewardLabError(
                        f"{where}: key {k!r} does not fit the study config"
                    ) from None
            rebase(data, StudyConfig, cfg.folder)  # the base's own paths are absolute by now
            data["study"] = cfg.sweep
            if cfg.cache_dir:
                data["cache_dir"] = cfg.cache_dir
            try:
                study_cfg = StudyConfig.model_validate(data)
            except ValidationError as err:
                raise RewardLabError(format_validation_error(err, where, StudyConfig)) from None
            if study_cfg.seeds is not None:
                raise RewardLabError(
                    f"{where}: 'seeds' runs several seeds in one study; a sweep's studies take "
                    "one seed each: sweep a 'seed' axis (grid: {seed: [0, 1, 2]}) instead"
                )
            check(study_cfg, where)
            ident = digest(config_json(study_cfg))
            if ident in seen:  # the same study reached from another grid point
                if b not in seen[ident].blocks:
                    seen[ident].blocks.append(b)
                continue
            study_cfg.study = pid
            points.append(Point(pid, values, study_cfg, [b]))
            seen[ident] = points[-1]
    return points


# ---------------------------------------------------------------- running one study


def finished(run_dir: Path, cfg: StudyConfig) -> bool:
    """Whether `run_dir` holds `cfg`'s study, finished: its ``done.json`` carries the key of
    `cfg`'s resolved config, or (a study finished before the config gained fields) its
    ``config.yaml``, read now with the new fields at their defaults, resolves to `cfg`."""
    done = Path(run_dir) / DONE
    if not done.is_file():
        return False
    if json.loads(done.read_text()).get("key") == digest(config_json(cfg)):
        return True
    try:
        old = StudyConfig.model_validate(
            yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
        )
    except (OSError, ValidationError, yaml.YAMLError):
        return False
    return config_json(old) == config_json(cfg)


def pending_jobs(studies: dict[Path, StudyConfig], threads: int) -> list[tuple[str, str, int]]:
    """The `run_in_processes` jobs of the studies (folder -> config) not yet `finished`: each such
    folder is created and given its resolved ``config.yaml`` first."""
    jobs = []
    for d, c in studies.items():
        if finished(d, c):
            continue
        d.mkdir(parents=True, exist_ok=True)
        write_atomic(d / "config.yaml", dump_config(c))
        jobs.append((c.model_dump_json(), str(d), threads))
    return jobs


def mark_done(run_dir: str | Path, key: str, res: dict) -> None:
    """Record a finished study (``done.json``: its key, seconds and status) when `res` is ok."""
    if res["ok"]:
        write_atomic(Path(run_dir) / DONE, json.dumps({"key": key, **res}, indent=1))


def run_point(config_json: str, run_dir: str, threads: int) -> dict:
    """Run one study in the current process (a pool or Ray worker); return its status.

    The study's log goes to ``<run_dir>/log.txt``; an exception is returned, not raised, so the
    sweep can report it and go on with the other studies.
    """
    import torch

    from rewardlab import progress
    from rewardlab.study import run_study

    torch.set_num_threads(threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = StudyConfig.model_validate_json(config_json)
    t0 = time.perf_counter()
    with (out / "log.txt").open("a") as logf:

        def log(msg: str) -> None:
            logf.write(msg + "\n")
            logf.flush()

        progress.send_to(log)  # the study's progress lines into its own log
        try:
            study = run_study(cfg, out, log=log)
        except Interrupted as exc:  # stopped by the sweep (or by its death): cleaned up, now go
            log(f"interrupted ({exc}); finished stages are kept")
            logf.flush()
            os._exit(128 + exc.signum)
        except Exception as exc:
            log(traceback.format_exc())
            msg = str(exc) if isinstance(exc, RewardLabError) else f"{type(exc).__name__}: {exc}"
            return {"ok": False, "error": msg, "seconds": time.perf_counter() - t0}
        finally:
            progress.send_to(None)  # this worker's next study logs elsewhere
    stages = {k: round(r.seconds, 2) for k, r in study.stages.items() if r.built}
    return {"ok": True, "seconds": time.perf_counter() - t0, "built": stages}


# ---------------------------------------------------------------- backends


def _worker_init(sweep_pid: int) -> None:
    """A pool worker dies with its sweep, even one killed with SIGKILL (Linux's parent-death
    signal, SIGTERM, which unwinds the study like ctrl-c); SIGINT from a terminal is left to the
    sweep, which stops its workers with SIGTERM."""
    import threading

    from tqdm import tqdm

    unwind_on_signals()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # a worker's progress goes to its own log: a thread lock, not tqdm's default named semaphore,
    # which a stopped worker would leave behind (Python warns of it when the sweep ends)
    tqdm.set_lock(threading.RLock())
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != sweep_pid:  # the sweep died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def run_in_processes(jobs: list[tuple[str, str, int]], workers: int, on_done: Callable) -> None:
    """Each job `(config_json, run_dir, threads)` as `run_point` in a pool of `workers` spawned
    processes; `on_done(run_dir, status)` as each ends. Ctrl-c or a dead worker stops the rest,
    each unwinding its study so that finished stages are kept."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
        initargs=(os.getpid(),),
    )  # fmt: skip
    try:
        futs = {pool.submit(run_point, *job): job for job in jobs}
        for fut in as_completed(futs):
            on_done(futs[fut][1], fut.result())
    except BaseException:  # ctrl-c or a dead worker: stop the others now; finished work is kept
        procs = list((pool._processes or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.terminate()  # SIGTERM: each unwinds its study (a half-built stage is removed)
        for proc in procs:
            proc.join(timeout=60)
        raise
    pool.shutdown()


def _run_ray(
    jobs: list[tuple[str, str, int]], workers: int, on_done: Callable, address: str | None
) -> None:
    try:
        import ray
    except ImportError:
        raise RewardLabError(
            "backend 'ray' needs the ray package: pip install 'rewardlab[ray]'"
        ) from None
    started = not ray.is_initialized()
    if started:
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=workers, **kw)
    try:
        # a study whose worker or node dies is run again elsewhere (RAY_RETRIES times): it resumes
        # from the shared cache; a study that fails by itself returns its error and is not retried
        remote = ray.remote(num_cpus=1, max_retries=RAY_RETRIES)(run_point)
        refs = {remote.remote(*job): job for job in jobs}
        pending = list(refs)
        t0 = time.perf_counter()
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                res = ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # retries spent: report it, go on
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                res = {"ok": False, "seconds": time.perf_counter() - t0,
                       "error": f"lost to Ray after {RAY_RETRIES} retries: "
                                f"{type(exc).__name__}: {first}"}  # fmt: skip
            on_done(refs[ready[0]][1], res)
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------- the sweep


def run_sweep(
    cfg: SweepConfig,
    out: str | Path | None = None,
    *,
    backend: str | None = None,
    workers: int | None = None,
    address: str | None = None,
    log: Callable[[str], None] = print,
    source: str = "sweep",
) -> Path:
    """Run (or resume) every study of `cfg`, then gather and report; return the sweep folder.

    Writes ``sweep.yaml`` (resolved), ``studies.csv`` (id, swept values, status, seconds),
    ``curves.csv`` and ``summary.csv`` (every study's rows plus the swept columns),
    ``rewards.csv``, ``reward_models.csv``, ``measurements.csv`` and the sweep report.

    Raises:
        RewardLabError: when some studies failed (after the others finished and were gathered).
    """
    points = expand(cfg, source)
    out = Path(out or Path("runs") / cfg.sweep)
    out.mkdir(parents=True, exist_ok=True)
    sweep_text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    write_atomic(out / "sweep.yaml", sweep_text)
    backend = backend or cfg.backend
    workers = workers or cfg.workers or os.cpu_count() or 1
    threads = max(1, (os.cpu_count() or 1) // workers)
    by_dir = {str(out / "studies" / p.id): p for p in points}
    jobs = pending_jobs({Path(d): p.config for d, p in by_dir.items()}, threads)
    todo = {d for _, d, _ in jobs}
    status: dict[str, dict] = {
        p.id: {"ok": True, "seconds": 0.0, "resumed": True}
        for d, p in by_dir.items()
        if d not in todo
    }
    log(
        f"[sweep] {cfg.sweep}: {len(points)} studies, {len(points) - len(jobs)} already finished; "
        f"running {len(jobs)} on {backend} with {workers} workers × {threads} threads"
    )
    t0 = time.perf_counter()

    def on_done(run_dir: str, res: dict) -> None:
        p = by_dir[run_dir]
        status[p.id] = res
        mark_done(run_dir, p.key, res)
        n = sum(1 for s in status.values() if not s.get("resumed"))
        what = "done" if res["ok"] else f"FAILED: {res['error']}"
        log(
            f"[sweep] {n}/{len(jobs)} {p.id} {what} in {res['seconds']:.0f}s "
            f"(elapsed {time.perf_counter() - t0:.0f}s)"
        )

    if jobs:
        stopped = True
        try:
            if backend == "ray":
                _run_ray(jobs, workers, on_done, address)
            else:
                run_in_processes(jobs, workers, on_done)
            stopped = False
        finally:  # a stopped run's time is recorded too: its resumption adds to it
            ran = sum(1 for s in status.values() if s.get("ok") and not s.get("resumed"))
            record_timing(out, dict(backend=backend, workers=workers, threads=threads,
                                    studies_run=ran, wall_seconds=time.perf_counter() - t0,
                                    stopped=stopped))  # fmt: skip
    table = _studies_table(points, status)
    table.to_csv(out / "studies.csv", index=False)
    gather(out, points)
    from rewardlab.report.sweep import build_sweep_report

    build_sweep_report(out)
    write_provenance(out, config_text=sweep_text, seeds=[p.config.seed for p in points],
                     seconds=time.perf_counter() - t0, studies=len(points), run_now=len(jobs))  # fmt: skip
    failed = table[~table.ok]
    if len(failed):
        raise RewardLabError(
            f"{len(failed)} of {len(points)} studies failed (see {out / 'studies.csv'} and each "
            f"study's log.txt): " + "; ".join(f"{r.study}: {r.error}" for r in failed.itertuples())
        )
    return out


def record_timing(out: Path, part: dict) -> dict:
    """Add one run of a sweep (`part`: backend, workers, threads, ``studies_run``,
    ``wall_seconds``, ``stopped``) to ``out/timing.json``, whose ``parts`` lists every run that
    ran studies and whose ``studies_run`` and ``wall_seconds`` are their sums: a sweep stopped
    and resumed, or extended by new grid points, states all the time it took. A file written
    before ``parts`` existed counts as one part. Returns the record written."""
    path = out / TIMING
    old = json.loads(path.read_text()) if path.is_file() else {}
    parts = list(old.get("parts") or ([dict(old)] if old else []))
    parts.append(part)
    record = {**part, "studies_run": sum(int(q.get("studies_run", 0)) for q in parts),
              "wall_seconds": sum(float(q.get("wall_seconds", 0.0)) for q in parts),
              "parts": parts}  # fmt: skip
    record.pop("stopped", None)
    write_atomic(path, json.dumps(record, indent=1))
    return record


def _studies_table(points: list[Point], status: dict[str, dict]) -> pd.DataFrame:
    """``studies.csv``: each study's id, swept values, grids, seed, label noise and outcome."""
    swept = swept_keys(points)
    return pd.DataFrame(
        [
            {"study": p.id, **{k: _label(p.values.get(k)) for k in swept},
             "blocks": " ".join(map(str, p.blocks)), "seed": p.config.seed,
             "flip_rate": p.config.preferences.flip_rate,
             "ok": status[p.id]["ok"], "seconds": status[p.id]["seconds"],
             "error": status[p.id].get("error", "")}
            for p in points
        ]
    )  # fmt: skip


def swept_keys(points: list[Point]) -> list[str]:
    """Every key swept by some study, in order of first appearance."""
    return list(dict.fromkeys(k for p in points for k in p.values))


GATHERED = ("curves.csv", "summary.csv", "rewards.csv", "reward_models.csv", "measurements.csv")


def gather(out: Path, points: list[Point]) -> None:
    """Concatenate each finished study's tables, with `study` and the swept values as columns."""
    swept = swept_keys(points)
    for name in GATHERED:
        frames = []
        for p in points:
            f = out / "studies" / p.id / name
            if not (out / "studies" / p.id / DONE).is_file() or not f.is_file():
                continue
            df = pd.read_csv(f)
            cols = {"study": p.id, **{k: _label(p.values.get(k)) for k in swept}}
            cols.setdefault("seed", p.config.seed)
            df = df.drop(columns=[k for k in cols if k in df.columns])
            for i, (k, v) in enumerate(cols.items()):
                df.insert(i, k, v)
            frames.append(df)
        if frames:
            pd.concat(frames, ignore_index=True).to_csv(out / name, index=False)
