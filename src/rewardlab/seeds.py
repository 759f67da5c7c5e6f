"""Several seeds of one study in one run folder: each seed's study side by side in worker
processes that share the stage cache, then their tables gathered and judged over seeds.

A study with ``seeds: [0, 1, 2]`` (or ``rewardlab run --seeds 0,1,2``) writes::

    <run>/config.yaml          the study as given, with its seeds
    <run>/seeds/s<seed>/       each seed's own run folder, as `rewardlab run --set seed=<seed>`
                               writes it (stages, tables, report, log.txt, done.json)
    <run>/curves.csv, summary.csv, rewards.csv, reward_models.csv, offline.csv,
    <run>/measurements.csv     every seed's rows, with a ``seed`` column
    <run>/verdicts.csv         each (optimizer, reward) judged over seeds (`verdict.over_seeds`)
    <run>/curves_over_seeds.csv, report.html, provenance.json

The seeds run in ``min(seeds, cores)`` workers with the cores' threads divided between them; a
seed's tables equal those of a one-seed run with as many threads. A killed run resumes: a seed
whose folder holds ``done.json`` for the same config is not run again, and the unfinished ones
take their finished stages from the cache.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from rewardlab.cache import digest, exclusive_lock
from rewardlab.common.io import write_atomic
from rewardlab.config import StudyConfig, config_json, dump_config
from rewardlab.errors import RewardLabError
from rewardlab.inputs import check
from rewardlab.provenance import write_provenance
from rewardlab.study import OWNER_LOCK, OWNER_WAIT_S, Study, claim_run_dir, default_run_dir
from rewardlab.sweep import mark_done, pending_jobs, run_in_processes
from rewardlab.verdict import over_seeds

GATHERED = ("curves.csv", "summary.csv", "rewards.csv", "reward_models.csv", "offline.csv",
            "measurements.csv")  # fmt: skip
VERDICTS = "verdicts.csv"


def seed_configs(cfg: StudyConfig) -> dict[int, StudyConfig]:
    """The one-seed study of each of `cfg.seeds`: `cfg` with ``seed`` set and ``seeds`` unset."""
    return {s: cfg.model_copy(update={"seed": s, "seeds": None}, deep=True) for s in cfg.seeds}


def seed_dir(run_dir: Path, seed: int) -> Path:
    """The run folder of one seed inside a several-seed run folder."""
    return Path(run_dir) / "seeds" / f"s{seed}"


def workers_and_threads(n_seeds: int, cores: int | None = None) -> tuple[int, int]:
    """As many workers as cores (no more than seeds), the cores' threads divided between them."""
    cores = cores or os.cpu_count() or 1
    workers = max(1, min(n_seeds, cores))
    return workers, max(1, cores // workers)


def run_seeds(
    cfg: StudyConfig, run_dir: Path | None = None, log: Callable[[str], None] = print
) -> Study:
    """Run (or resume) every seed of `cfg` (``cfg.seeds``) in `run_dir` (default
    ``runs/<study>__s0-1-2__<time>__<hex>``; an occupied one must hold the same study), gather
    and judge them; return the study with every seed's summary rows and the verdicts over seeds.

    Raises:
        RewardLabError: a bad input or folder (before anything runs), or some seeds failed
            (after the others finished), naming their logs.
    """
    check(cfg)  # every file the study names, before a folder or a worker is made
    cfg.task.load()
    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
    claim_run_dir(cfg, run_dir)
    with exclusive_lock(run_dir / OWNER_LOCK, timeout_s=OWNER_WAIT_S, what=f"run folder {run_dir}"):
        write_atomic(run_dir / "config.yaml", dump_config(cfg))
        summary, judged = _run_seeds(cfg, run_dir, log)
    return Study(run_dir, cfg, summary=summary, verdicts=judged)


def _run_seeds(
    cfg: StudyConfig, run_dir: Path, log: Callable[[str], None]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    t0 = time.perf_counter()
    cfgs = seed_configs(cfg)
    workers, threads = workers_and_threads(len(cfgs))
    keys = {str(seed_dir(run_dir, s)): (s, digest(config_json(c))) for s, c in cfgs.items()}
    jobs = pending_jobs({seed_dir(run_dir, s): c for s, c in cfgs.items()}, threads)
    todo = {d for _, d, _ in jobs}
    for d, (s, _) in keys.items():
        if d not in todo:
            log(f"[seeds] seed {s}: finished before, kept")
    failed: dict[int, str] = {}

    def on_done(d: str, res: dict) -> None:
        s, key = keys[d]
        mark_done(d, key, res)
        if not res["ok"]:
            failed[s] = res["error"]
        what = "done" if res["ok"] else f"FAILED: {res['error']}"
        log(f"[seeds] seed {s} {what} in {res['seconds']:.0f}s (log: {Path(d) / 'log.txt'})")

    if jobs:
        log(f"[seeds] running {len(jobs)} of {len(cfgs)} seeds in {workers} workers × "
            f"{threads} threads; each seed's progress is in seeds/s<seed>/log.txt")  # fmt: skip
        run_in_processes(jobs, min(workers, len(jobs)), on_done)
    if failed:
        raise RewardLabError(
            f"{len(failed)} of {len(cfgs)} seeds failed (finished seeds are kept; run again to "
            "resume): " + "; ".join(f"seed {s}: {e} (see {seed_dir(run_dir, s) / 'log.txt'})"
                                    for s, e in failed.items())
        )  # fmt: skip
    gather(run_dir, list(cfgs))
    summary = pd.read_csv(run_dir / "summary.csv")
    judged = over_seeds(summary)
    judged.to_csv(run_dir / VERDICTS, index=False)
    from rewardlab.report.seeds import build_seeds_report

    build_seeds_report(run_dir)
    write_provenance(run_dir, config_text=dump_config(cfg), seeds=list(cfgs),
                     seconds=time.perf_counter() - t0, workers=workers, threads=threads)  # fmt: skip
    return summary, judged


def gather(run_dir: Path, seeds: list[int]) -> None:
    """Each of `GATHERED` over the seeds' folders, one after another in seed order, with a
    ``seed`` column first where the seed's own table has none."""
    for name in GATHERED:
        frames = []
        for s in seeds:
            f = seed_dir(run_dir, s) / name
            if f.is_file():
                df = pd.read_csv(f)
                if "seed" not in df:
                    df.insert(0, "seed", s)
                frames.append(df)
        if frames:
            pd.concat(frames, ignore_index=True).to_csv(run_dir / name, index=False)
