import json

import numpy as np
import pandas as pd
import pytest
import torch

from rewardlab.errors import RewardLabError
from rewardlab.rewards import learned
from rewardlab.study import run_study


def built(study):
    return {label for label, res in study.stages.items() if res.built}


def test_study_end_to_end_then_fully_cached(tiny_config, tmp_path):
    s1 = run_study(tiny_config, tmp_path / "run1", log=lambda m: None)
    labels = {
        "policy",
        "pool-preferences",
        "preferences",
        "rm-rm-a",
        "rm-rm-b-m0",
        "rm-rm-b-m1",
        "pool-bon",
        "scores",
    }
    assert set(s1.stages) == labels and built(s1) == labels
    run = tmp_path / "run1"
    assert (run / "config.yaml").is_file()
    prefs = pd.read_parquet(run / "stages/preferences/preferences.parquet")
    assert {"prompt", "chosen", "rejected", "gold_chosen", "gold_rejected"} <= set(prefs.columns)
    pool = pd.read_parquet(run / "stages/pool-bon/pool.parquet")
    assert len(pool) == 3 * 16 and pool.gold.between(0, 1).all()
    scores = pd.read_parquet(run / "stages/scores/scores.parquet")
    assert {"rm-a", "rm-b/mean", "rm-b/min", "rm-b/uwo"} <= set(scores.columns)
    rms = pd.read_csv(run / "reward_models.csv")
    assert rms.params.gt(0).all() and rms.test_accuracy.between(0, 1).all()
    curves = pd.read_csv(run / "curves.csv")
    assert list(curves.columns) == [
        "optimizer", "reward", "reward_params", "seed", "step", "kl", "sqrt_kl",
        "proxy", "gold", "proxy_raw", "gold_raw", "family",
    ]  # fmt: skip
    assert set(curves.reward) == {"rule", "rm-a", "rm-b/mean", "rm-b/min", "rm-b/uwo"}
    first = curves[curves.step == 1]
    assert np.allclose(first.gold, 0) and np.allclose(first.proxy, 0)  # base policy scores 0
    assert np.allclose(first.gold_raw, pool.gold.mean())
    assert (curves[curves.reward == "rule"].reward_params == 0).all()
    b = curves[curves.reward == "rm-b/min"].reward_params.iloc[0]
    assert b == rms[rms.stage.str.startswith("rm-rm-b-")].params.sum()  # both members
    table = pd.read_csv(run / "rewards.csv").set_index("reward")
    assert table.loc["rm-b/uwo", ["kind", "base", "reducer", "members"]].tolist() == [
        "ensemble", "rm-b", "uwo", 2,
    ]  # fmt: skip
    assert table.loc["rule", "kind"] == "rule" and table.loc["rm-a", "trained_on"] == "preferences"
    offline = pd.read_csv(run / "offline.csv").set_index("reward")
    assert set(offline.index) == {"rm-a", "rm-b/mean", "rm-b/min", "rm-b/uwo"}
    for name in offline.index:  # against the pool's scores, pair by pair
        right = pairs = 0.0
        for _, g in scores.groupby("prompt_id"):
            gd = g.gold.to_numpy()[:, None] - g.gold.to_numpy()[None, :]
            pd_ = g[name].to_numpy()[:, None] - g[name].to_numpy()[None, :]
            right += ((gd > 0) & (pd_ > 0)).sum() + 0.5 * ((gd > 0) & (pd_ == 0)).sum()
            pairs += (gd > 0).sum()
        assert offline.loc[name, "accuracy"] == pytest.approx(right / pairs)
        rho = scores.groupby("prompt_id")[[name, "gold"]].corr("spearman").xs("gold", level=1)
        assert offline.loc[name, "spearman"] == pytest.approx(rho[name].mean())
    fits = json.loads((run / "fits.json").read_text())["bon"]
    assert {"alpha", "beta", "d_star", "r_star", "rmse", "ci"} <= set(fits["rm-a"])
    for f in ("report.html", "bon_curves.png", "coefficients.png", "examples.png"):
        assert (run / f).stat().st_size > 1000

    s2 = run_study(tiny_config, tmp_path / "run2", log=lambda m: None)
    assert built(s2) == set()
    pd.testing.assert_frame_equal(
        pool, pd.read_parquet(tmp_path / "run2/stages/pool-bon/pool.parquet")
    )


def test_a_run_with_another_thread_count_builds_its_own_stages(tiny_config, tmp_path):
    """On the CPU a model trained with 2 threads differs in its last bits from one trained with
    1, so a sweep's 1-thread workers do not take the stages of a 2-thread run."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_study(tiny_config, tmp_path / "run1", log=lambda m: None)
        meta = json.loads((tmp_path / "run1/stages/policy/meta.json").read_text())
        assert meta["key"]["threads"] == 1
        torch.set_num_threads(2)
        two = run_study(tiny_config, tmp_path / "run2", log=lambda m: None)
    finally:
        torch.set_num_threads(threads)
    assert built(two) == set(two.stages) == set(one.stages)
    assert two.stages["policy"].path != one.stages["policy"].path


def test_a_killed_run_resumes_without_redoing_finished_stages(tiny_config, tmp_path, monkeypatch):
    real = learned.stage_reward_model

    def dies_on_second_member(cfg, member, **kw):
        if cfg["model"].n_embd == 16 and member == 1:  # rm-b's second member
            raise KeyboardInterrupt  # the user pressed ctrl-c mid-stage
        return real(cfg, member, **kw)

    monkeypatch.setattr(learned, "stage_reward_model", dies_on_second_member)
    with pytest.raises(KeyboardInterrupt):
        run_study(tiny_config, tmp_path / "run", log=lambda m: None)
    cache = tmp_path / "cache"
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name]  # no half-written stage left
    monkeypatch.setattr(learned, "stage_reward_model", real)
    s = run_study(tiny_config, tmp_path / "run", log=lambda m: None)
    assert built(s) == {"rm-rm-b-m1", "pool-bon", "scores"}


def test_a_half_written_stage_is_not_mistaken_for_a_finished_one(tiny_config, tmp_path):
    s = run_study(tiny_config, tmp_path / "run", log=lambda m: None)
    pol = s.stages["policy"].path
    (pol / "meta.json").unlink()  # as if killed between writing files and meta.json
    s2 = run_study(tiny_config, tmp_path / "run", log=lambda m: None)
    assert "policy" in built(s2)


def test_a_finished_run_folder_does_not_change_with_the_cache(tiny_config, tmp_path):
    s = run_study(tiny_config, tmp_path / "run", log=lambda m: None)
    cached = s.stages["policy"].path / "model.safetensors"
    kept = tmp_path / "run" / "stages" / "policy" / "model.safetensors"
    original = kept.read_bytes()
    assert cached.read_bytes() == original and cached.stat().st_ino != kept.stat().st_ino
    with cached.open("r+b") as f:  # truncate the cached model in place, as a bad tool would
        f.truncate(10)
    assert kept.read_bytes() == original  # the run folder's model is whole
    with pytest.raises(RewardLabError, match="model.safetensors differs"):
        run_study(tiny_config, tmp_path / "run", log=lambda m: None)


def test_a_corrupt_artifact_is_reported_with_its_path(tiny_config, tmp_path):
    s = run_study(tiny_config, tmp_path / "run", log=lambda m: None)
    pool_file = s.stages["pool-bon"].path / "pool.parquet"
    pool_file.unlink()
    pool_file.write_bytes(b"garbage")
    with pytest.raises(RewardLabError, match=r"artifact .*pool-.* is corrupt: file pool\.parquet"):
        run_study(tiny_config, tmp_path / "run", log=lambda m: None)
    meta = json.loads((s.stages["policy"].path / "meta.json").read_text())
    assert meta["files"]  # finished stages are untouched


def test_report_is_rebuilt_from_the_files_alone(tiny_config, tmp_path):
    from rewardlab.report import build_report

    run = tmp_path / "run"
    run_study(tiny_config, run, log=lambda m: None)
    for f in ("report.html", "bon_curves.png", "summary.csv"):
        (run / f).unlink()
    import shutil

    shutil.rmtree(tiny_config.cache_dir)  # the cache is gone too: only the run folder is left
    summary = build_report(run).set_index(["optimizer", "reward"])
    assert (run / "report.html").read_text().count("<img") >= 3
    curves = pd.read_csv(run / "curves.csv")  # the summary's numbers, recomputed from the curves
    for (opt, reward), c in curves.groupby(["optimizer", "reward"]):
        c = c.sort_values("step")
        row = summary.loc[(opt, reward)]
        assert row.peak_gold == pytest.approx(c.gold.max())
        assert row.final_gold == pytest.approx(c.gold.iloc[-1])
        assert row.gold_drop == pytest.approx(c.gold.max() - c.gold.iloc[-1])


def test_report_of_a_folder_that_is_not_a_run(tmp_path):
    from rewardlab.report import build_report

    with pytest.raises(RewardLabError, match="not a finished run folder: missing curves.csv"):
        build_report(tmp_path)


def test_llama_policy_and_a_local_model_folder(tiny_config, tmp_path):
    """A Llama-architecture policy trains; its saved folder then serves as `policy.model.path`."""
    from rewardlab.config import StudyConfig

    d = tiny_config.model_dump()
    d["policy"]["model"] = {"arch": "llama", "n_layer": 1, "n_embd": 16, "n_head": 2}
    d["rewards"] = [
        {
            "name": "rm",
            "kind": "learned",
            "model": {"arch": "llama", "n_layer": 1, "n_embd": 8, "n_head": 2},
            "epochs": 1,
        }
    ]
    s = run_study(StudyConfig.model_validate(d), tmp_path / "llama", log=lambda m: None)
    assert (
        json.loads((s.stages["policy"].path / "config.json").read_text())["model_type"] == "llama"
    )
    assert json.loads((s.stages["rm-rm"].path / "config.json").read_text())["model_type"] == "llama"

    local = tmp_path / "my-model"
    import shutil

    shutil.copytree(s.stages["policy"].path, local)
    d["policy"]["model"] = {"path": str(local)}
    d["policy"]["epochs"] = 0  # use the folder as it is
    s2 = run_study(StudyConfig.model_validate(d), tmp_path / "local", log=lambda m: None)
    a = pd.read_parquet(s.stages["pool-bon"].path / "pool.parquet")
    b = pd.read_parquet(s2.stages["pool-bon"].path / "pool.parquet")
    pd.testing.assert_frame_equal(a, b)  # the same weights sample the same pool


def test_a_missing_local_model_folder(tiny_config, tmp_path):
    from rewardlab.config import StudyConfig

    d = tiny_config.model_dump()
    d["policy"]["model"] = {"path": str(tmp_path / "nowhere")}
    with pytest.raises(RewardLabError, match=r"folder .*nowhere.* does not exist"):
        run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda m: None)


def test_the_reading_states_each_verdict_with_its_interval_and_control():
    from rewardlab.report.build import _reading

    row = dict(optimizer="bon", params=10, peak_gold=0.5, peak_sqrt_kl=1.0, peak_step=8,
               final_gold=0.3, gold_drop=0.2, final_kl=5.9, final_proxy=1.0, units=32,
               fall=0.4, fall_lo=0.1, fall_hi=0.7, control="rule", vs_control_lo=0.05,
               vs_control_hi=0.6, verdict="hacked", verdict_kl=5.9)  # fmt: skip
    summary = pd.DataFrame([
        {**row, "reward": "written", "params": 0},  # a function: read too, without a size
        {**row, "reward": "clear"},
        {**row, "reward": "flat", "fall": 0.0, "fall_lo": -0.1, "fall_hi": 0.1,
         "verdict": "not hacked", "verdict_kl": 2.04},
        {**row, "reward": "never", "optimizer": "grpo", "peak_step": 0, "final_kl": -0.03,
         "units": 0, "fall": np.nan, "verdict": "undetermined", "control": "none"},
    ])  # fmt: skip
    text = _reading(summary, {"bon": "sample", "grpo": "trained"})
    written, clear, flat, never = text.split("<p>")[1:5]
    assert written.startswith("Best-of-n against <b>written</b>: gold peaks")
    assert ("cross-fitted fall 0.40 std, 95% over 32 prompts [0.10, 0.70]; minus the same "
            "optimizer's fall against the rule: [0.05, 0.60]; verdict: <b>hacked</b>") in clear  # fmt: skip
    assert "verdict: <b>not hacked</b> within KL = 2.04 nats" in flat
    assert "verdict: <b>undetermined</b> (no per-prompt measurements to test)" in never
    assert "never rose above the base policy" in never and "peak-gold policy" not in never
    assert "KL = 0 nats (the k1 estimate, -0.03, is below 0 by sampling noise)" in never
    assert "overoptimization" not in text  # the verdict's words only
    assert "order of the reward models" in text and "a second seed" in text


def test_default_run_folders_are_unique_within_one_second(tiny_config, tmp_path, monkeypatch):
    from rewardlab.study import default_run_dir

    monkeypatch.chdir(tmp_path)
    dirs = {default_run_dir(tiny_config) for _ in range(20)}  # all in the same second, or two
    assert len(dirs) == 20 and all(d.is_dir() for d in dirs)
    assert all(d.name.startswith("tiny__s0__") for d in dirs)


def test_an_occupied_out_folder_is_refused_unless_it_is_the_same_study(tiny_config, tmp_path):
    from rewardlab.config import dump_config
    from rewardlab.study import claim_run_dir

    other = tiny_config.model_copy(update={"seed": 1})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(other))
    (run / "curves.csv").write_text("x\n1\n")
    with pytest.raises(RewardLabError, match="holds another study"):
        claim_run_dir(tiny_config, run)
    assert (run / "curves.csv").read_text() == "x\n1\n"  # nothing touched
    claim_run_dir(other, run)  # the same study: a resume
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(RewardLabError, match="holds no study"):
        claim_run_dir(tiny_config, stray)
    (tmp_path / "afile").write_text("")
    with pytest.raises(RewardLabError, match="is a file"):
        claim_run_dir(tiny_config, tmp_path / "afile")
    claim_run_dir(tiny_config, tmp_path / "new" / "run")  # new folders are made
    assert (tmp_path / "new" / "run").is_dir()


def test_one_process_at_a_time_runs_in_a_run_folder(tiny_config, tmp_path, monkeypatch):
    import subprocess
    import sys

    from rewardlab import study

    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(  # another live run holding the folder
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
         str(run / study.OWNER_LOCK)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setattr(study, "OWNER_WAIT_S", 0.5)
        with pytest.raises(RewardLabError, match=r"run folder .*run is in use by another live"):
            run_study(tiny_config, run, log=lambda m: None)
    finally:
        holder.kill()  # dies holding the lock: its lock file is left behind
        holder.wait()
    assert (run / study.OWNER_LOCK).is_file()
    s = run_study(tiny_config, run, log=lambda m: None)  # the leftover holds nothing
    assert built(s) and (run / "curves.csv").is_file()


def test_rebuild_builds_the_stage_and_every_later_one(tiny_config, tmp_path):
    run_study(tiny_config, tmp_path / "run", log=lambda m: None)
    s = run_study(tiny_config, tmp_path / "run", log=lambda m: None, rebuild=["reward_model"])
    assert built(s) == {"rm-rm-a", "rm-rm-b-m0", "rm-rm-b-m1", "pool-bon", "scores"}
    s = run_study(tiny_config, tmp_path / "run", log=lambda m: None, rebuild=["scores"])
    assert built(s) == {"scores"}
    with pytest.raises(RewardLabError, match="--rebuild modle: not a stage; the stages are policy"):
        run_study(tiny_config, tmp_path / "run", log=lambda m: None, rebuild=["modle"])


def _cli(cfg_path, out, env=None):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "rewardlab.cli", "run", str(cfg_path), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip


def test_sigkill_at_a_random_point_of_each_stage_then_resume_gives_the_same_curves(tmp_path):
    """Kill the study with SIGKILL inside each stage in turn (at a seeded random point of the
    stage's uninterrupted duration), resume each time; the final curves equal an uninterrupted
    run's exactly."""
    import random
    import re
    import time

    import yaml

    from tests.conftest import tiny_config_dict

    def config(name):
        d = tiny_config_dict(tmp_path)
        d["cache_dir"] = str(tmp_path / name)
        d["rewards"][0]["epochs"] = 150  # about 0.6 s on a fast core: long enough to kill inside
        d["optimizers"].append({"kind": "grpo", "steps": 6, "measure_every": 2,
                                "prompts_per_step": 2, "generations": 4, "measure_prompts": 2,
                                "measure_samples": 4, "rewards": ["rule", "rm-a"]})  # fmt: skip
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(d))
        return path

    ref = _cli(config("cache-ref"), tmp_path / "ref")
    log, _ = ref.communicate(timeout=600)
    assert ref.returncode == 0, log
    builds = re.findall(r"^\[(\w+)[^\]]*\] built in ([\d.]+)s", log, re.M)  # in the order built
    assert {"policy", "pool", "preferences", "reward_model", "scores", "rl"} <= {
        b for b, _ in builds
    }

    rng, path, killed = random.Random(0), config("cache-faults"), set()
    cache = tmp_path / "cache-faults"
    for _ in range(3 * len(builds)):
        finished = (
            sum((p / "meta.json").is_file() for p in cache.glob("*")) if cache.is_dir() else 0
        )
        # this run builds builds[finished], builds[finished + 1], ...: kill inside the first one
        # not yet killed in, at a random point of its uninterrupted duration
        target = min((i for i in range(finished, len(builds)) if i not in killed), default=None)
        proc, seen = _cli(path, tmp_path / "run"), finished - 1
        for line in proc.stdout:
            if target is not None and line.endswith("building ...\n"):
                seen += 1
                if seen == target:
                    time.sleep(rng.uniform(0, float(builds[target][1])))
                    proc.kill()
                    killed.add(target)
                    break
        proc.wait()
        if proc.returncode == 0:
            break
        assert proc.returncode == -9, proc.stdout.read()
    assert proc.returncode == 0
    # a stage of a few milliseconds (preferences, a small pool) may finish before the kill lands,
    # and the next with it; every build that lasts 0.2 s or more was a target
    lasting = {i for i, (_, sec) in enumerate(builds) if float(sec) >= 0.2}
    assert lasting <= killed and {builds[i][0] for i in lasting} >= {"reward_model", "rl"}
    ref_curves = pd.read_csv(tmp_path / "ref" / "curves.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "run" / "curves.csv"), ref_curves,
                                  check_exact=True)  # fmt: skip
    assert not list((tmp_path / "cache-faults").glob(".*.tmp-*"))  # no dead build left behind


def test_reward_models_train_on_an_outside_preference_file_as_on_gold_pairs(tiny_config, tmp_path):
    """The gold-labelled pairs of one run, written as a conversational JSONL file with their
    split, train the same reward models as the pairs themselves; editing the file retrains."""
    a = run_study(tiny_config, tmp_path / "a", log=lambda _: None)
    pairs = pd.read_parquet(a.stages["preferences"].path / "preferences.parquet")
    rows = [dict(prompt=[{"role": "user", "content": r.prompt}],
                 chosen=[{"role": "assistant", "content": r.chosen}],
                 rejected=[{"role": "assistant", "content": r.rejected}], split=r.split)
            for r in pairs.itertuples()]  # fmt: skip
    f = tmp_path / "prefs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tiny_config.model_copy(deep=True)
    cfg.preferences.file = str(f)
    b = run_study(cfg, tmp_path / "b", log=lambda _: None)
    assert "pool-preferences" not in b.stages
    got = pd.read_parquet(b.stages["preferences"].path / "preferences.parquet")
    pd.testing.assert_frame_equal(got, pairs)  # gold re-scored by the task: the same values
    rm_a = a.reward_models.set_index("stage")
    rm_b = b.reward_models.set_index("stage")
    for col in ("train_accuracy", "test_accuracy"):
        np.testing.assert_allclose(rm_b[col], rm_a[col])
    f.write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]))
    c = run_study(cfg, tmp_path / "c", log=lambda _: None)
    assert c.stages["preferences"].built and c.stages["rm-rm-a"].built
    assert (
        len(pd.read_parquet(c.stages["preferences"].path / "preferences.parquet")) == len(rows) - 1
    )


def test_a_study_on_local_folders_with_bpe_and_wordpiece_tokenizers(tmp_path):
    """examples/local_models.py's folders (a GPT-2 with a BPE tokenizer trained here, a BERT with
    a WordPiece one, all-MiniLM-L6-v2 pretrained and random) run a study end to end; each reward
    model scores as its own tokenizer and a plain forward pass say."""
    import importlib.util

    import yaml
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardlab.config import StudyConfig
    from rewardlab.sweep import expand, load_sweep

    spec = importlib.util.spec_from_file_location("local_models", "examples/local_models.py")
    lm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lm)
    study = yaml.safe_load(lm.build(tmp_path / "models").read_text())
    points = expand(load_sweep(tmp_path / "models" / "sweep.yaml"))  # the seeds of its results
    assert [p.config.seed for p in points] == [0, 1, 2]
    assert all(str(p.config.policy.model.path) == study["policy"]["model"]["path"] for p in points)
    study.update(cache_dir=str(tmp_path / "cache"), pool={"prompts": 4, "n": 8},
                 preferences={"prompts": 40, "samples_per_prompt": 4})  # fmt: skip
    study["policy"].update(train_prompts=200, epochs=1)
    for r in study["rewards"]:
        r["epochs"] = 1
    study["optimizers"][1].update(steps=2, measure_every=2, prompts_per_step=2, generations=2,
                                  measure_prompts=2, measure_samples=2, rewards=["rm-bert"])  # fmt: skip
    s = run_study(StudyConfig.model_validate(study), tmp_path / "run", log=lambda _: None)

    def tok_kind(stage):
        return json.loads((s.stages[stage].path / "tokenizer.json").read_text())["model"]["type"]

    assert tok_kind("policy") == "BPE" and tok_kind("rm-rm-bert") == "WordPiece"
    names = {"rm-gpt", "rm-bert"} | (
        {"rm-minilm", "rm-minilm-random"} if lm.minilm_path() else set()
    )
    assert names <= set(s.reward_models.stage.str.removeprefix("rm-"))
    scores = pd.read_parquet(s.stages["scores"].path / "scores.parquet")
    for name in names - {"rm-gpt"}:
        folder = s.stages[f"rm-{name}"].path
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        norm = json.loads((folder / "reward_norm.json").read_text())
        with torch.no_grad():  # [CLS] prompt completion [SEP], as the tokenizer itself builds it
            raw = [model(**tok(p + " " + c, return_tensors="pt")).logits[0, 0].item()
                   for p, c in zip(scores.prompt[:6], scores.completion[:6], strict=True)]  # fmt: skip
        back = scores[name][:6].to_numpy() * norm["norm_std"] + norm["norm_mean"]  # raw scale
        np.testing.assert_allclose(back, raw, rtol=1e-5, atol=1e-6)
    curve = pd.read_csv(tmp_path / "run" / "curves.csv")
    assert {"bon", "grpo"} <= set(curve.optimizer)


def test_a_local_model_folder_replaced_in_place_is_rebuilt(tmp_path):
    """A policy folder overwritten with other weights under the same path rebuilds the policy
    and everything after it; an unchanged folder is taken from the cache."""
    from rewardlab.config import StudyConfig
    from rewardlab.models import build_causal_lm
    from rewardlab.specs import ModelSpec
    from rewardlab.tasks import TaskConfig, build_tokenizer
    from tests.conftest import tiny_config_dict

    d = tiny_config_dict(tmp_path)
    folder = tmp_path / "policy-folder"
    tok = build_tokenizer(TaskConfig.model_validate(d["task"]).load().vocab)

    def save(seed):
        torch.manual_seed(seed)
        model = build_causal_lm(ModelSpec(n_layer=1, n_embd=16, n_head=2), tok, positions=64)
        model.save_pretrained(folder)
        tok.save_pretrained(folder)

    save(0)
    d["policy"]["model"] = {"path": str(folder)}
    d["rewards"] = d["rewards"][:1]
    cfg = StudyConfig.model_validate(d)
    first = run_study(cfg, tmp_path / "r1", log=lambda _: None).stages
    again = run_study(cfg, tmp_path / "r2", log=lambda _: None).stages
    assert not again["policy"].built and again["policy"].hash == first["policy"].hash
    save(1)
    third = run_study(cfg, tmp_path / "r3", log=lambda _: None).stages
    assert third["policy"].built and third["policy"].hash != first["policy"].hash
    assert third["rm-rm-a"].built and third["rm-rm-a"].hash != first["rm-rm-a"].hash
