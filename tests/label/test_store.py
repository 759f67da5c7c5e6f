"""The label store: one label per item and labeller, tokens hashed, schema versioned, and
nothing acknowledged lost when the server is killed with SIGKILL mid-burst."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from rewardlab.errors import RewardLabError
from rewardlab.label.store import Store, token_digest
from tests.integrations.test_openrlhf import free_port, wait_up

ROWS = [dict(prompt=f"p{i}", a=f"a{i}", b=f"b{i}", gold_a=1.0, gold_b=0.0) for i in range(5)]


def test_labels_are_counted_once_and_kept_to_their_labeller(tmp_path):
    s = Store(tmp_path / "l.sqlite")
    tok = s.add_labeller("ann")
    s.add_labeller("bob")
    ann, bob = s.who(tok)[0], s.labeller_id("bob")
    ids = s.add_items("ann", "comparison", ROWS)
    assert s.add_label(ann, ids[0], "a")["duplicate"] is False
    assert s.add_label(ann, ids[0], "a")["duplicate"] is True  # a retried POST
    with pytest.raises(ValueError, match="labelled already"):
        s.add_label(ann, ids[0], "b")
    with pytest.raises(PermissionError):
        s.add_label(bob, ids[1], "a")
    with pytest.raises(LookupError):
        s.add_label(ann, 999, "a")
    with pytest.raises(ValueError, match="choice"):
        s.add_label(ann, ids[1], "left")
    assert s.progress(ann) == {"comparison": {"done": 1, "total": 5}}
    assert s.next_item(ann, "comparison")["id"] == ids[1]
    assert s.undo(ann) == ids[0] and s.progress(ann)["comparison"]["done"] == 0
    db = sqlite3.connect(tmp_path / "l.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    stored = [r[0] for r in db.execute("SELECT token_sha256 FROM labellers")]
    assert tok not in stored and token_digest(tok) in stored  # only the digest is kept
    assert db.execute("SELECT value FROM meta").fetchone()[0] == "1"


def test_another_schema_version_is_refused(tmp_path):
    Store(tmp_path / "l.sqlite")
    db = sqlite3.connect(tmp_path / "l.sqlite")
    db.execute("UPDATE meta SET value = '9'")
    db.commit()
    with pytest.raises(RewardLabError, match="schema version 9"):
        Store(tmp_path / "l.sqlite")


def test_sigkill_mid_burst_loses_no_acknowledged_label_and_duplicates_none(tmp_path, finished_run):
    db = tmp_path / "l.sqlite"
    s = Store(db)
    tok = s.add_labeller("ann")
    ids = s.add_items("ann", "comparison", [dict(prompt=f"p{i}", a="x", b="y") for i in range(400)])
    port = free_port()
    cmd = [sys.executable, "-m", "rewardlab.cli", "label", "serve", str(finished_run), "--db", str(db),
           "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_up(url, proc)
    acked, sent = [], 0
    t0 = time.monotonic()
    try:
        for item in ids:
            if time.monotonic() - t0 > 1.0 and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # mid-burst
            try:
                r = requests.post(url + "/api/labels", json={"item": item, "choice": "a"},
                                  headers={"X-Token": tok}, timeout=5)  # fmt: skip
                sent += 1
            except requests.ConnectionError:
                break
            if r.status_code == 200:
                acked.append(item)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL and 0 < len(acked) < len(ids)
    rows = sqlite3.connect(db).execute("SELECT item_id FROM labels").fetchall()
    got = [r[0] for r in rows]
    assert set(acked) <= set(got) and len(got) == len(set(got))  # none lost, none twice
    assert len(got) <= sent
