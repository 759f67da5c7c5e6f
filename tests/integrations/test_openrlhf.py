"""The reward server, started for real, answered with requests shaped as OpenRLHF's client sends
them (``requests.post(url, json=data, headers={"Content-Type": "application/json"})``)."""

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import requests
import uvicorn

from rewardlab.integrations.openrlhf import ServerConfig, make_app
from rewardlab.integrations.runs import RunRewards
from rewardlab.rewards import Reward
from rewardlab.tasks import load_task

HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc=None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(url + "/health", timeout=2).status_code in (200, 401, 403):
                return
        time.sleep(0.2)
    raise AssertionError("server did not come up")


@pytest.fixture(scope="module")
def served(finished_run):
    port = free_port()
    cmd = [sys.executable, "-m", "rewardlab.cli", "serve-reward", str(finished_run),
           "rm-b/mean", "rule", "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "REWARDLAB_PROGRESS": "off"})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_scores_and_extra_logs_match_the_run(served, finished_run):
    pool = pd.read_parquet(finished_run / "stages" / "scores" / "scores.parquet").head(20)
    prompts = pool.prompt.tolist()
    data = {"query": [p + " " + c for p, c in zip(prompts, pool.completion, strict=True)],
            "prompts": prompts, "labels": [""] * len(prompts)}  # fmt: skip
    r = requests.post(served + "/get_reward", json=data, headers=HEADERS, timeout=180)
    assert r.status_code == 200, r.text
    out = r.json()
    np.testing.assert_allclose(out["rewards"], pool["rm-b/mean"], rtol=1e-5, atol=1e-6)
    assert out["scores"] == out["rewards"]
    logs = out["extra_logs"]
    task = load_task("sorting", {"min_len": 3, "max_len": 4})
    np.testing.assert_allclose(logs["rule"], task.gold(prompts, pool.completion.tolist()))
    m = np.array([logs["rm-b/mean/member0"], logs["rm-b/mean/member1"]])
    np.testing.assert_allclose(m.mean(0), out["rewards"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logs["rm-b/mean/disagreement"], np.abs(m[0] - m[1]) / 2, atol=1e-6)
    health = requests.get(served + "/health", timeout=5).json()
    assert health["rewards"] == ["rm-b/mean", "rule"] and health["samples"] >= 20


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"query": "a b", "prompts": ["a"]}', 400, "'query' must be a list of strings"),
        (b'{"query": ["a b"]}', 400, "'prompts' must be a list"),
        (b'{"query": ["a b", "c"], "prompts": ["a"]}', 400, "2 items and 'prompts' 1"),
        (b'{"query": ["x y"], "prompts": ["a"]}', 400, "does not start with its prompt"),
        (b'{"query": ["a b"], "prompts": ["a"], "labels": [1, 2]}', 400, "'labels'"),
        (b"x" * (17 << 20), 413, "larger than"),
    ],
)
def test_a_malformed_body_is_a_json_4xx(served, body, status, words):
    r = requests.post(served + "/get_reward", data=body, headers=HEADERS, timeout=30)
    assert r.status_code == status and words in r.json()["error"]


def test_wrong_paths_and_methods_are_json_errors(served):
    r = requests.get(served + "/get_reward", timeout=5)
    assert r.status_code == 405 and "GET" in r.json()["error"]
    r = requests.post(served + "/score", json={}, timeout=5)
    assert r.status_code == 404 and "/get_reward" in r.json()["error"]


def test_an_unknown_reward_is_refused_before_serving(finished_run):
    cmd = [sys.executable, "-m", "rewardlab.cli", "serve-reward", str(finished_run), "rm-z"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "no reward 'rm-z'; its rewards are asc, rm-a" in p.stderr


@contextlib.contextmanager
def in_thread(app):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url)
        yield url
    finally:
        server.should_exit = True
        t.join(10)


def _run_of(fn, tmp_path):
    return RunRewards(tmp_path, None, {"r": Reward("r", "function", fn, key=None)}, task=None)


BODY = {"query": ["p a"], "prompts": ["p"]}


def test_callers_outside_the_allowed_networks_or_without_the_token_are_refused(tmp_path):
    rr = _run_of(lambda p, c, **kw: [len(x) for x in c], tmp_path)
    with in_thread(make_app(rr, ["r"], ServerConfig(allow=("10.0.0.0/8",)))) as url:
        r = requests.post(url + "/get_reward", json=BODY, timeout=5)
        assert r.status_code == 403 and "127.0.0.1" in r.json()["error"]
    with in_thread(make_app(rr, ["r"], ServerConfig(token="s3cret"))) as url:
        assert requests.post(url + "/get_reward", json=BODY, timeout=5).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert (
            requests.post(url + "/get_reward", json=BODY, headers=bad, timeout=5).status_code == 401
        )
        ok = {"Authorization": "Bearer s3cret"}
        r = requests.post(url + "/get_reward", json=BODY, headers=ok, timeout=5)
        assert r.status_code == 200 and r.json()["rewards"] == [1.0]


def test_a_slow_reward_is_answered_504_and_a_busy_server_503_never_a_hang(tmp_path):
    release = threading.Event()

    def slow(prompts, completions, **kw):
        release.wait(30)
        return [0.0] * len(prompts)

    cfg = ServerConfig(max_concurrency=1, timeout_s=1.0)
    with in_thread(make_app(_run_of(slow, tmp_path), ["r"], cfg)) as url:
        t0 = time.monotonic()
        r = requests.post(url + "/get_reward", json=BODY, timeout=30)
        assert r.status_code == 504 and "longer than 1 s" in r.json()["error"]
        r = requests.post(url + "/get_reward", json=BODY, timeout=30)  # the slot is still held
        assert r.status_code == 503 and "busy" in r.json()["error"]
        assert time.monotonic() - t0 < 10
        release.set()
        time.sleep(0.5)
        r = requests.post(url + "/get_reward", json=BODY, timeout=30)
        assert r.status_code == 200 and r.json()["rewards"] == [0.0]


def test_a_reward_returning_nan_is_a_500_naming_it(tmp_path):
    rr = _run_of(lambda p, c, **kw: [float("nan")] * len(p), tmp_path)
    with in_thread(make_app(rr, ["r"])) as url:
        r = requests.post(url + "/get_reward", json=BODY, timeout=10)
        assert r.status_code == 500 and "reward 'r' returned nan" in r.json()["error"]
