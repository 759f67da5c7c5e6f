"""Ratings behind the scenes: GRPO pauses on each rating request until the simulated rater
(through the labelling app's HTTP API) answers; requests survive a restart; a timeout skips."""

import json
import subprocess
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from rewardlab.config import StudyConfig
from rewardlab.errors import RewardLabError
from rewardlab.label.simulate import simulate
from rewardlab.label.store import Store
from rewardlab.rewards.guard import GuardedReward
from rewardlab.rewards.human import Config, HumanReward
from rewardlab.study import run_study
from rewardlab.tasks import load_task
from tests.conftest import tiny_config_dict
from tests.integrations.test_openrlhf import free_port, wait_up

TASK = load_task("sorting", {"min_len": 3, "max_len": 4})
DELAY = 0.3


def test_grpo_waits_for_each_rating_and_no_step_happens_meanwhile(tmp_path, finished_run):
    db = tmp_path / "labels.sqlite"
    tok = Store(db).add_labeller("sim")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", "label", "serve", str(finished_run),
                             "--db", str(db), "--port", str(port)], stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    rater = threading.Thread(target=simulate, daemon=True, kwargs=dict(
        url=url, token=tok, task=TASK, kind="rating", delay_s=DELAY, follow=lambda: not stop.is_set()))  # fmt: skip
    try:
        wait_up(url, proc)
        rater.start()
        d = tiny_config_dict(tmp_path)
        d["rewards"] = [d["rewards"][0], dict(name="people", kind="human", db=str(db), labeller="sim",
                                              p=0.5, timeout_s=60, fallback="rm-a")]  # fmt: skip
        d["optimizers"] = [{"kind": "bon", "n_boot": 10},
                           dict(kind="grpo", rewards=["people"], steps=3, prompts_per_step=2, generations=2,
                                measure_every=3, measure_prompts=2, measure_samples=2)]  # fmt: skip
        s = run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda _: None)
    finally:
        stop.set()
        if rater.is_alive():
            rater.join(10)  # the rater stops before the server does
        proc.terminate()
        proc.wait(10)
    log = json.loads((s.stages["grpo-people"].path / "rewards.json").read_text())["requests"]
    assert [e["step"] for e in log] == [0, 1, 2]
    assert all(e["step"] == e["step_after"] for e in log)  # no optimizer step while waiting
    assert sum(e["sent"] for e in log) > 0 and all(e["answered"] == e["sent"] for e in log)
    assert all(e["wait_s"] >= DELAY * e["sent"] for e in log)  # the rater answers one at a time
    labels = [r for r in Store(db).labels() if r["kind"] == "rating"]
    assert len(labels) == sum(e["sent"] for e in log)
    gold = TASK.gold([r["prompt"] for r in labels], [r["a"] for r in labels])
    assert [r["score"] for r in labels] == [int(np.clip(round(1 + 6 * g), 1, 7)) for g in gold]
    assert (
        "people" not in s.summary.reward[s.summary.optimizer == "bon"].tolist()
    )  # not on the pool


def _reward(tmp_path, p, timeout_s=30.0, fallback=None):
    db = tmp_path / "labels.sqlite"
    Store(db).add_labeller("ann")
    cfg = Config(name="people", db=str(db), labeller="ann", p=p, timeout_s=timeout_s, poll_s=0.05)
    return HumanReward(cfg, seed=0, fallback=fallback), Store(db)


def test_a_restarted_learner_finds_its_requests_and_their_ratings(tmp_path):
    h, store = _reward(tmp_path, p=1.0, timeout_s=0.3)
    state = SimpleNamespace(global_step=5)
    prompts, comps = ["sort 2 1 :", "sort 3 1 :"], ["1 2", "3 1"]
    assert h(prompts, comps, trainer_state=state) == [None, None]  # nobody answered: timed out
    assert h.report()[-1]["timed_out"] == 2
    ann = store.labeller_id("ann")
    store.add_label(ann, store.next_item(ann, "rating")["id"], score=7)  # the first is rated
    restarted = HumanReward(h.cfg, seed=0)  # a new learner process, the same step and samples
    out = restarted(prompts, comps, trainer_state=state)
    assert out[0] == pytest.approx(1.0) and out[1] is None  # (7 - 4) / 3; the other still pending
    assert len(store.labels()) == 1
    with store.connect() as db:
        assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 2  # not asked twice


def test_unsent_samples_get_the_fallback_and_a_timeout_is_a_counted_skip(tmp_path):
    h, _ = _reward(tmp_path, p=0.5, timeout_s=0.2, fallback=lambda p, c, **kw: [len(x) for x in c])
    g = GuardedReward(h, "people", "stop")  # stop mode: a None the reward means is still allowed
    out = g(["a"] * 8, ["x" * i for i in range(8)], trainer_state=SimpleNamespace(global_step=0))
    sent = h.report()[0]["sent"]
    assert 0 < sent < 8 and out.count(None) == sent and g.skipped == sent
    assert [o for o in out if o is not None] == [i for i, o in enumerate(out) if o is not None]


def test_a_fallback_not_listed_before_is_an_error(tmp_path):
    db = tmp_path / "l.sqlite"
    Store(db).add_labeller("ann")
    d = tiny_config_dict(tmp_path)
    d["rewards"] = [dict(name="people", kind="human", db=str(db), labeller="ann", fallback="rm-a")]
    with pytest.raises(RewardLabError, match="fallback 'rm-a' is not a reward listed before it"):
        run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda _: None)


def test_a_simulated_rater_in_process_answers_every_request(tmp_path):
    """`simulated:` serves the labelling app in the study's own process and rates through it."""
    d = tiny_config_dict(tmp_path)
    db = tmp_path / "labels.sqlite"
    d["rewards"] = [d["rewards"][0], dict(name="people", kind="human", db=str(db), labeller="rater",
                                          p=1.0, timeout_s=60, fallback="rm-a", simulated={})]  # fmt: skip
    d["optimizers"] = [dict(kind="grpo", rewards=["people"], steps=2, prompts_per_step=2, generations=2,
                            measure_every=2, measure_prompts=2, measure_samples=2)]  # fmt: skip
    s = run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda _: None)
    log = json.loads((s.stages["grpo-people"].path / "rewards.json").read_text())["requests"]
    assert [(e["sent"], e["answered"]) for e in log] == [(4, 4), (4, 4)]
    labels = Store(db).labels()
    assert len(labels) == 8 and all(r["labeller"].startswith("rater-sim-") for r in labels)
    gold = TASK.gold([r["prompt"] for r in labels], [r["a"] for r in labels])
    assert [r["score"] for r in labels] == [int(np.clip(round(1 + 6 * g), 1, 7)) for g in gold]
