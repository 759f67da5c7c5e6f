"""Agreement with gold and between labellers on a hand-made case, and the whole path a person
takes: label 20 comparisons, export them, train a reward model on them, read the agreement in
the report."""

import math

import pandas as pd
import yaml

from rewardlab.label.agreement import agreement
from tests.test_cli import run_cli


def L(who, a, b, choice, ga=None, gb=None, prompt="p"):
    return dict(kind="comparison", labeller=who, prompt=prompt, a=a, b=b, choice=choice,
                gold_a=ga, gold_b=gb)  # fmt: skip


def test_agreement_by_hand():
    labels = [
        L("ann", "x", "y", "a", 1.0, 0.0),  # agrees with gold
        L("ann", "u", "v", "a", 0.0, 1.0),  # against gold
        L("ann", "s", "t", "a", 0.5, 0.5),  # equal gold: not counted with gold
        L(
            "bob", "y", "x", "b", 0.0, 1.0
        ),  # the same comparison as ann's first, other order: agrees
        L("bob", "u", "v", "b", 0.0, 1.0),  # disagrees with ann, agrees with gold
        L("bob", "q", "r", "tie"),  # ties carry no preference
    ]
    per, pairs = agreement(labels)
    assert per.set_index("labeller").to_dict("index") == {
        "ann": {"labels": 3, "with_gold_n": 2, "with_gold": 0.5},
        "bob": {"labels": 2, "with_gold_n": 2, "with_gold": 1.0},
    }
    assert pairs.to_dict("records") == [
        dict(labeller_a="ann", labeller_b="bob", shared=2, agree=0.5)
    ]
    assert math.isnan(agreement([L("eve", "a", "b", "a")])[0].with_gold[0])


def test_label_twenty_train_a_reward_model_and_read_agreement(
    monkeypatch, capsys, tmp_path, finished_run
):
    import subprocess  # noqa: E401
    import sys

    import requests

    from tests.integrations.test_openrlhf import free_port, wait_up
    from tests.label.test_app import TASK, _labeller

    db = tmp_path / "labels.sqlite"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", "label", "serve", str(finished_run),
                             "--db", str(db), "--port", str(port)], stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc)
        admin = (tmp_path / "labels.sqlite.admin-token").read_text().strip()
        for name in ("ann", "bob"):  # both get the same 20 comparisons (same seed)
            tok = _labeller(url, admin, name, 20)
            for _ in range(20):
                item = requests.get(url + "/api/next", headers={"X-Token": tok}, timeout=5).json()[
                    "item"
                ]
                ga, gb = TASK.gold([item["prompt"]] * 2, [item["a"], item["b"]])
                choice = ("a" if ga >= gb else "b") if name == "ann" else "a"  # bob always left
                requests.post(url + "/api/labels", json={"item": item["id"], "choice": choice},
                              headers={"X-Token": tok}, timeout=5)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)
    out = tmp_path / "labels.jsonl"
    code, said, _ = run_cli(
        monkeypatch, capsys, "label", "export", "--db", str(db), "--out", str(out)
    )
    assert code == 0 and "40 rows" in said
    cfg = yaml.safe_load((finished_run / "config.yaml").read_text())
    cfg.update(cache_dir=str(tmp_path / "cache"), rewards=[cfg["rewards"][0]])
    cfg["preferences"]["file"] = str(out)
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(cfg))
    code, _, err = run_cli(monkeypatch, capsys, "run", str(study), "--out", str(tmp_path / "run"))
    assert code == 0, err
    per = pd.read_csv(tmp_path / "run" / "stages" / "preferences" / "labellers.csv").set_index(
        "labeller"
    )
    rows = pd.read_json(out, lines=True)
    ann = rows[(rows.labeller == "ann") & (rows.gold_chosen != rows.gold_rejected)]
    assert per.loc["ann", "with_gold"] == 1.0 and per.loc["ann", "with_gold_n"] == len(ann)
    bob = rows[(rows.labeller == "bob") & (rows.gold_chosen != rows.gold_rejected)]
    assert per.loc["bob", "with_gold"] == (bob.gold_chosen > bob.gold_rejected).mean()
    assert "Labellers" in (tmp_path / "run" / "report.html").read_text()
    assert pd.read_csv(tmp_path / "run" / "reward_models.csv").train_pairs.iloc[0] > 0
