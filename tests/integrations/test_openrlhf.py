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

from rewardlab.common.http import MAX_CONNECTIONS, BoundedH11
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
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           http=BoundedH11, limit_concurrency=MAX_CONNECTIONS))  # fmt: skip
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


# --- issue 25: requests from web pages, a starved slot, slow clients, odd bodies ---


def test_a_foreign_origin_or_host_is_refused(served):
    evil = [
        {"Content-Type": "text/plain", "Origin": "http://evil.example"},  # a page's simple POST
        {**HEADERS, "Host": "attacker.example"},  # DNS rebinding: the page's own name as Host
        {**HEADERS, "Host": f"attacker.example:{served.rsplit(':', 1)[1]}"},
        {**HEADERS, "Origin": "null"},
        {**HEADERS, "Sec-Fetch-Site": "cross-site"},
    ]
    body = '{"query": ["p a"], "prompts": ["p"]}'
    for h in evil:
        r = requests.post(served + "/get_reward", data=body, headers=h, timeout=10)
        assert r.status_code == 403 and "error" in r.json(), h
    assert (
        requests.get(
            served + "/health", headers={"Host": "attacker.example"}, timeout=5
        ).status_code
        == 403
    )
    same = {**HEADERS, "Origin": served, "Host": "localhost:" + served.rsplit(":", 1)[1]}
    assert (
        requests.post(served + "/get_reward", data=body, headers=same, timeout=60).status_code
        == 200
    )


def test_health_and_errors_name_no_file_system_paths(served, finished_run):
    text = requests.get(served + "/health", timeout=5).text
    assert str(finished_run) not in text and "/" not in text.replace("rm-b/mean", "")


@pytest.mark.parametrize(
    "body", [b"[" * 100000 + b"]" * 100000, b'{"query": ' + b"[" * 50000 + b"}"]
)
def test_a_deeply_nested_body_is_a_json_400(served, body):
    r = requests.post(served + "/get_reward", data=body, headers=HEADERS, timeout=30)
    assert r.status_code == 400 and "error" in r.json()


def _batches(seconds: float):
    def reward(prompts, completions, **kw):
        time.sleep(seconds)
        return [1.0] * len(prompts)

    return reward


def test_a_request_answered_504_frees_its_slot_within_about_a_second(tmp_path):
    cfg = ServerConfig(max_concurrency=1, timeout_s=2.0, batch_size=16)
    with in_thread(make_app(_run_of(_batches(0.25), tmp_path), ["r"], cfg)) as url:
        big = {"query": [f"p {i}" for i in range(4096)], "prompts": ["p"] * 4096}
        r = requests.post(url + "/get_reward", json=big, timeout=60)  # 256 batches: 64 s of work
        assert r.status_code == 504
        t0 = time.monotonic()
        r = requests.post(url + "/get_reward", json=BODY, timeout=60)
        assert r.status_code == 200 and r.json()["rewards"] == [1.0]
        assert time.monotonic() - t0 < 1.5  # one batch of the old request, then this one


def test_each_of_a_dozen_concurrent_requests_is_answered_within_its_timeout(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    cfg = ServerConfig(max_concurrency=2, timeout_s=3.0, batch_size=1)
    with in_thread(make_app(_run_of(_batches(1.0), tmp_path), ["r"], cfg)) as url:

        def call(_):
            t0 = time.monotonic()
            r = requests.post(url + "/get_reward", json=BODY, timeout=60)
            return r.status_code, time.monotonic() - t0

        with ThreadPoolExecutor(12) as ex:
            answers = list(ex.map(call, range(12)))
    assert {code for code, _ in answers} <= {200, 503, 504}
    assert sum(code == 200 for code, _ in answers) >= 2
    assert max(sec for _, sec in answers) < 3.0 + 1.5, answers  # queueing counts in the timeout


def test_slow_clients_cannot_hold_the_server(tmp_path, monkeypatch):
    monkeypatch.setattr(BoundedH11, "header_timeout_s", 1.0)
    cfg = ServerConfig(timeout_s=2.0)
    with in_thread(make_app(_run_of(_batches(0.0), tmp_path), ["r"], cfg)) as url:
        port = int(url.rsplit(":", 1)[1])
        slow = []
        for _ in range(MAX_CONNECTIONS + 6):  # every connection the server allows, and more
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST /get_reward HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
            slow.append(s)
        time.sleep(2.0)
        closed = sum(s.recv(100) == b"" for s in slow[:MAX_CONNECTIONS])
        assert closed == MAX_CONNECTIONS  # every slow client was dropped at its header deadline
        for s in slow:
            s.close()
        t0 = time.monotonic()
        assert requests.post(url + "/get_reward", json=BODY, timeout=10).status_code == 200
        assert time.monotonic() - t0 < 2
        # a body that never arrives whole is answered 408 at the request's timeout
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /get_reward HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\"")  # fmt: skip
        assert b" 408 " in s.recv(1000).split(b"\r\n")[0]
        s.close()


def test_numpy_scalar_scores_are_served(tmp_path):
    rr = _run_of(lambda p, c, **kw: [np.float32(0.5), np.int64(2)][: len(p)], tmp_path)
    with in_thread(make_app(rr, ["r"])) as url:
        two = {"query": ["p a", "p b"], "prompts": ["p", "p"]}
        r = requests.post(url + "/get_reward", json=two, timeout=10)
        assert r.status_code == 200 and r.json()["rewards"] == [0.5, 2.0]
