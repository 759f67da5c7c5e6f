import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from rewardlab.config import StudyConfig
from rewardlab.optimize.dpo import pairs_for_dpo
from rewardlab.study import run_study
from rewardlab.tasks import build_tokenizer
from tests.conftest import tiny_config_dict

DPO = dict(epochs=1, batch_size=8, measure_every=1, measure_prompts=2, measure_samples=4, lr=1e-3)


@pytest.mark.parametrize(("loss_type", "algorithm"), [("sigmoid", "dpo"), ("ipo", "ipo")])
def test_dpo_and_ipo_train_on_the_pairs_and_are_measured_like_rl(tmp_path, loss_type, algorithm):
    d = tiny_config_dict(tmp_path)
    d["optimizers"].append({"kind": "dpo", "loss_type": loss_type, "beta": 0.1, **DPO})
    s = run_study(StudyConfig.model_validate(d), tmp_path / "run", log=lambda m: None)
    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    rows = curves[curves.optimizer == algorithm].sort_values("step")
    train = pd.read_parquet(s.stages["preferences"].path / "preferences.parquet").query(
        "split == 'train'"
    )
    steps = math.ceil(len(train) / 8)
    assert rows.step.tolist() == list(range(steps + 1)) and set(rows.reward) == {"preferences"}
    assert abs(rows.kl.iloc[0]) < 1e-4 and rows.proxy.isna().all()  # no proxy unless tracked
    log = json.loads((s.stages[algorithm].path / "trainer_log.json").read_text())
    first = next(r["loss"] for r in log if "loss" in r)
    # at step 1 the policy is the reference: every log-ratio is 0, so the DPO loss is
    # -log sigmoid(0) = log 2 and the IPO loss (0 - 1/(2 beta))^2 = 25 for beta = 0.1
    assert first == pytest.approx(math.log(2) if loss_type == "sigmoid" else 25.0, rel=1e-4)
    before = load_file(s.stages["policy"].path / "model.safetensors")
    after = load_file(s.stages[algorithm].path / "final" / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert abs(rows.kl.iloc[-1]) > 1e-4


def test_pairs_are_tokenised_as_the_lab_reads_them():
    tok = build_tokenizer(["sort", ":", "1", "2"])
    prefs = pd.DataFrame(dict(prompt=["sort 2 1 :"], chosen=["1 2"], rejected=[""]))
    p = pairs_for_dpo(prefs).iloc[0]
    ids = tok(p.prompt + p.chosen)["input_ids"]  # what TRL does: text concatenated, <bos> added
    assert tok.convert_ids_to_tokens(ids) == ["<bos>", "sort", "2", "1", ":", "1", "2", "<eos>"]
    ids = tok(p.prompt + p.rejected)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<bos>", "sort", "2", "1", ":", "<eos>"]
    assert np.all(tok(p.prompt)["input_ids"] == ids[:5])
