"""The labelling app started for real: who may do what, queues from a run's pool, exports,
the simulated rater through the same API, and a real browser labelling by click and keyboard."""

import contextlib
import json
import subprocess
import sys

import pytest
import requests

from rewardlab.label.formats import from_label_studio
from rewardlab.label.simulate import simulate
from rewardlab.label.store import Store
from rewardlab.tasks import load_task
from tests.integrations.test_openrlhf import free_port, wait_up

TASK = load_task("sorting", {"min_len": 3, "max_len": 4})


@contextlib.contextmanager
def label_server(db, run):
    """`rewardlab label serve RUN --db DB` on a free port, stopped afterwards; yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "rewardlab.cli", "label", "serve", str(run), "--db", str(db),
           "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def served(tmp_path, finished_run):
    db = tmp_path / "labels.sqlite"
    with label_server(db, finished_run) as url:
        yield url, (tmp_path / "labels.sqlite.admin-token").read_text().strip(), db


def _post(url, path, token, body=None, data=None):
    h = {"X-Token": token} if token else {}
    return requests.post(url + path, json=body, data=data, headers=h, timeout=10)


def _labeller(url, admin, name, pairs):
    tok = _post(url, "/api/admin/labellers", admin, {"name": name}).json()["token"]
    assert _post(url, "/api/admin/queue", admin, {"labeller": name, "pairs": pairs}).json() == {
        "queued": pairs
    }
    return tok


def test_who_may_do_what(served):
    url, admin, db = served
    ann = _labeller(url, admin, "ann", 3)
    bob = _labeller(url, admin, "bob", 3)
    item = requests.get(url + "/api/next", headers={"X-Token": ann}, timeout=5).json()["item"]
    assert "gold_a" not in item  # gold is never shown
    cases = [
        (None, {"item": item["id"], "choice": "a"}, None, 401, "no X-Token"),
        ("wrong", {"item": item["id"], "choice": "a"}, None, 401, "unknown token"),
        (bob, {"item": item["id"], "choice": "a"}, None, 403, "another labeller"),
        (ann, {"item": 10**6, "choice": "a"}, None, 404, "no item"),
        (ann, None, b"{not json", 400, "not JSON"),
        (ann, {"item": item["id"], "choice": "left"}, None, 400, "choice"),
        (ann, {"item": item["id"], "choice": "a", "x": 1}, None, 400, "a label is"),
        (ann, None, b"x" * (70 << 10), 413, "larger than"),
    ]
    for token, body, data, status, words in cases:
        r = _post(url, "/api/labels", token, body, data)
        assert r.status_code == status and words in r.json()["error"], (status, r.text)
    r = _post(url, "/api/admin/labellers", ann, {"name": "eve"})
    assert r.status_code == 403 and "not the admin" in r.json()["error"]
    assert Store(db).labels() == []  # nothing written by any of them
    assert _post(url, "/api/labels", ann, {"item": item["id"], "choice": "a"}).status_code == 200
    assert _post(url, "/api/labels", ann, {"item": item["id"], "choice": "a"}).json()["duplicate"]
    r = _post(url, "/api/labels", ann, {"item": item["id"], "choice": "b"})
    assert r.status_code == 409
    assert len(Store(db).labels()) == 1
    assert requests.get(url + "/nowhere", timeout=5).json()["error"].startswith("no page")


def test_simulated_rater_labels_by_gold_and_exports_read_back(served, finished_run):
    url, admin, _ = served
    tok = _labeller(url, admin, "sim", 12)
    assert simulate(url, tok, TASK) == 12
    rows = requests.get(
        url + "/api/admin/export?format=trl", headers={"X-Token": admin}, timeout=5
    ).json()["rows"]
    assert rows and all(r["gold_chosen"] >= r["gold_rejected"] for r in rows)  # no flips: gold wins
    ties = 12 - len(rows)
    me = requests.get(url + "/api/me", headers={"X-Token": tok}, timeout=5).json()
    assert me["progress"]["comparison"] == {"done": 12, "total": 12} and ties >= 0
    tasks = requests.get(url + "/api/admin/export?format=label-studio", headers={"X-Token": admin},
                         timeout=5).json()["tasks"]  # fmt: skip
    back = from_label_studio(json.loads(json.dumps(tasks)))
    assert [(b["prompt"], b["chosen"], b["rejected"]) for b in back] == [
        (r["prompt"], r["chosen"], r["rejected"]) for r in rows
    ]


def test_a_real_browser_labels_by_click_and_by_keyboard(served):
    pw = pytest.importorskip("playwright.sync_api")
    url, admin, db = served
    tok = _labeller(url, admin, "ann", 4)
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])  # fmt: skip
        page = browser.new_page()
        page.goto(url + "/")
        page.fill("#token", tok)
        page.click("#go")
        page.wait_for_selector("#progress:has-text('0 / 4')")
        first = page.text_content("#a")
        page.click("#left")
        page.wait_for_selector("#progress:has-text('1 / 4')")
        page.keyboard.press("2")
        page.wait_for_selector("#progress:has-text('2 / 4')")
        page.keyboard.press("u")  # undo the keyboard label
        page.wait_for_selector("#progress:has-text('1 / 4')")
        page.keyboard.press("3")
        page.wait_for_selector("#progress:has-text('2 / 4')")
        page.click("#skip")
        page.wait_for_selector("#progress:has-text('3 / 4')")
        browser.close()
    labels = Store(db).labels()
    assert [r["choice"] for r in labels] == ["a", "tie", "skip"]
    assert labels[0]["a"] == first and {r["labeller"] for r in labels} == {"ann"}


# --- issue 25: requests from web pages, odd bodies, private files ---


def test_foreign_origin_and_host_are_refused_and_bad_bodies_are_json_400s(served):
    url, admin, db = served
    port = url.rsplit(":", 1)[1]
    for h in ({"Origin": "http://evil.example"}, {"Host": "attacker.example"},
              {"Host": f"attacker.example:{port}"}):  # fmt: skip
        r = requests.get(url + "/api/me", headers={"X-Token": admin, **h}, timeout=5)
        assert r.status_code == 403 and "error" in r.json(), h
        r = requests.post(url + "/api/admin/labellers", data='{"name": "eve"}', timeout=5,
                          headers={"X-Token": admin, "Content-Type": "text/plain", **h})  # fmt: skip
        assert r.status_code == 403
    assert "eve" not in requests.get(url + "/api/me", headers={"X-Token": admin}, timeout=5).text
    same = {"X-Token": admin, "Origin": url}
    assert requests.get(url + "/api/me", headers=same, timeout=5).status_code == 200
    r = _post(url, "/api/admin/labellers", admin, data=b"[" * 30000 + b"]" * 30000)
    assert r.status_code == 400 and "nested" in r.json()["error"]
    _post(url, "/api/admin/labellers", admin, {"name": "ann"})
    r = _post(url, "/api/admin/queue", admin, {"labeller": "ann", "pairs": 2, "seed": None})
    assert r.status_code == 400 and "seed" in r.json()["error"]


def test_the_database_its_wal_and_the_admin_token_are_private(tmp_path, finished_run):
    import os
    import stat

    db = tmp_path / "labels.sqlite"
    token = tmp_path / "labels.sqlite.admin-token"
    token.write_text("old\n")
    os.chmod(token, 0o644)  # a token file left readable by others
    with label_server(db, finished_run) as url:
        admin = token.read_text().strip()
        assert admin != "old"
        import sqlite3

        held = sqlite3.connect(db)  # the -wal and -shm files exist while a connection is open
        held.execute("SELECT count(*) FROM labellers").fetchone()
        _post(url, "/api/admin/labellers", admin, {"name": "ann"})
        files = [db, token, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        held.close()
        assert modes == {f.name: 0o600 for f in files}
    os.chmod(db, 0o644)  # an existing database is made private again when opened
    Store(db)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
