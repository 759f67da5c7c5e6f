import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rewardlab.config import StudyConfig
from rewardlab.errors import RewardLabError
from rewardlab.seeds import GATHERED, run_seeds, seed_dir, workers_and_threads
from rewardlab.study import run_study
from tests.conftest import tiny_config_dict

RL = dict(steps=4, measure_every=2, prompts_per_step=2, generations=4, measure_prompts=4,
          measure_samples=4, rewards=["rule", "rm"])  # fmt: skip


def base(tmp_path: Path) -> dict:
    d = tiny_config_dict(tmp_path)
    d["rewards"] = [{"name": "rm", "kind": "learned", "epochs": 1,
                     "model": {"n_layer": 1, "n_embd": 8, "n_head": 2}}]  # fmt: skip
    d["pool"] = {"prompts": 4, "n": 16}
    d["optimizers"].append({"kind": "grpo", **RL})
    return d


def test_seeds_in_one_folder_equal_single_seed_runs_byte_for_byte(tmp_path):
    seeds = [0, 1, 2]
    cfg = StudyConfig.model_validate({**base(tmp_path), "seeds": seeds})
    msgs = []
    study = run_seeds(cfg, tmp_path / "multi", log=msgs.append)
    multi = study.run_dir
    workers, threads = workers_and_threads(len(seeds))
    assert f"in {workers} workers × {threads} threads" in "\n".join(msgs)

    # each seed alone, through the command line, on its own empty cache, with as many threads
    study_file = tmp_path / "one.yaml"
    study_file.write_text(yaml.safe_dump({**base(tmp_path), "cache_dir": str(tmp_path / "c2")}))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    for s in seeds:
        out = tmp_path / f"single{s}"
        subprocess.run([sys.executable, "-m", "rewardlab", "run", str(study_file), "--set",
                        f"seed={s}", "--out", str(out)], check=True, env=env,
                       capture_output=True)  # fmt: skip
        for name in ("curves.csv", "summary.csv", "offline.csv", "measurements.csv",
                     "curves_by_prompt.parquet", "rewards.csv"):  # fmt: skip
            mine = (seed_dir(multi, s) / name).read_bytes()
            assert mine == (out / name).read_bytes(), f"seed {s}: {name} differs"
        # the reward models' table, but for its one wall-clock column
        mine, alone = (pd.read_csv(d / "reward_models.csv").drop(columns="seconds").to_csv()
                       for d in (seed_dir(multi, s), out))  # fmt: skip
        assert mine == alone

    # the folder's tables are the seeds' rows one after another, with the seed
    for name in GATHERED:
        own = [pd.read_csv(seed_dir(multi, s) / name) for s in seeds]
        if name != "curves.csv":  # the curves carry their seed already
            own = [df.assign(seed=s) for df, s in zip(own, seeds, strict=True)]
        both = pd.read_csv(multi / name)
        expected = pd.concat(own, ignore_index=True)[both.columns]
        pd.testing.assert_frame_equal(both, expected, check_dtype=False)
    verdicts = pd.read_csv(multi / "verdicts.csv")
    assert len(verdicts) == len(pd.read_csv(multi / "summary.csv")) // len(seeds)
    assert (verdicts.seeds == len(seeds)).all()
    assert json.loads((multi / "provenance.json").read_text())["seeds"] == seeds
    page = (multi / "report.html").read_text()
    assert "Verdicts over seeds" in page and 'href="seeds/s2/report.html"' in page
    (multi / "report.html").unlink()  # rebuilt from the folder's files alone
    r = subprocess.run([sys.executable, "-m", "rewardlab", "report", str(multi)],
                       capture_output=True, text=True, check=True)  # fmt: skip
    assert "verdicts over seeds:" in r.stdout and (multi / "report.html").is_file()

    # resumed: a finished seed is kept, an unfinished one runs again from the cache
    (seed_dir(multi, 1) / "done.json").unlink()
    msgs.clear()
    again = run_seeds(cfg, multi, log=msgs.append)
    text = "\n".join(msgs)
    assert "seed 0: finished before, kept" in text and "seed 2: finished before" in text
    assert "running 1 of 3 seeds" in text
    assert json.loads((seed_dir(multi, 1) / "done.json").read_text())["built"] == {}
    pd.testing.assert_frame_equal(again.verdicts, verdicts)


def test_seeds_are_refused_where_a_study_takes_one(tmp_path):
    with pytest.raises(ValueError, match="distinct"):
        StudyConfig.model_validate({**base(tmp_path), "seeds": [1, 1]})
    cfg = StudyConfig.model_validate({**base(tmp_path), "seeds": [0, 1]})
    with pytest.raises(RewardLabError, match="run_seeds"):
        run_study(cfg, tmp_path / "run")
    r = subprocess.run([sys.executable, "-m", "rewardlab", "run", "tiny", "--seeds", "0,x"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and "--seeds '0,x'" in r.stderr


def test_workers_are_the_cores_and_threads_divide_them():
    assert workers_and_threads(3, cores=2) == (2, 1)
    assert workers_and_threads(1, cores=2) == (1, 2)
    assert workers_and_threads(2, cores=8) == (2, 4)
