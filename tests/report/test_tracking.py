"""TensorBoard and W&B logging of a finished run, read back with readers the code does not use."""

import json
import struct

import numpy as np
import pandas as pd
import pytest

from rewardlab.errors import RewardLabError
from rewardlab.report.tracking import scalars, track
from rewardlab.specs import TrackingConfig


def _run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "stages" / "grpo-rm").mkdir(parents=True)
    pd.DataFrame(
        [
            dict(optimizer="bon", reward="rm", step=1, kl=0.0, proxy=0.0, gold=0.0),
            dict(optimizer="bon", reward="rm", step=4, kl=0.64, proxy=1.1, gold=0.4),
            dict(optimizer="grpo", reward="rm", step=0, kl=0.0, proxy=np.nan, gold=0.0),
            dict(optimizer="grpo", reward="rm", step=5, kl=0.3, proxy=0.7, gold=-0.2),
        ]
    ).to_csv(run / "curves.csv", index=False)
    (run / "stages" / "grpo-rm" / "trainer_log.json").write_text(
        json.dumps([{"loss": 0.5, "step": 1, "note": "x"}, {"loss": 0.25, "step": 2}])
    )
    pd.DataFrame([dict(stage="rm-rm", test_accuracy=0.75)]).to_csv(
        run / "reward_models.csv", index=False
    )
    return run


EXPECTED = {
    ("gold/bon/rm", 1): 0.0, ("proxy/bon/rm", 1): 0.0, ("kl/bon/rm", 1): 0.0,
    ("gold/bon/rm", 4): 0.4, ("proxy/bon/rm", 4): 1.1, ("kl/bon/rm", 4): 0.64,
    ("gold/grpo/rm", 0): 0.0, ("kl/grpo/rm", 0): 0.0,  # no proxy value: nothing logged
    ("gold/grpo/rm", 5): -0.2, ("proxy/grpo/rm", 5): 0.7, ("kl/grpo/rm", 5): 0.3,
    ("train/grpo-rm/loss", 1): 0.5, ("train/grpo-rm/loss", 2): 0.25,
    ("reward_model/rm-rm/test_accuracy", 0): 0.75,
}  # fmt: skip


def test_scalars_keep_gold_and_proxy_apart(tmp_path):
    got = {(n, s): v for n, s, v in scalars(_run_folder(tmp_path))}
    assert got == EXPECTED


def test_tensorboard_events_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = _run_folder(tmp_path)
    said = track(run, TrackingConfig(tensorboard=True), {})
    assert "tensorboard --logdir" in said[0]
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    got = {(tag, e.step): e.value for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)}
    assert got.keys() == EXPECTED.keys()
    assert all(got[k] == pytest.approx(v, abs=1e-6) for k, v in EXPECTED.items())  # float32


def _wandb_history(path):
    """History rows of an offline .wandb file: a LevelDB-style log (7-byte ':W&B' header, 32 KiB
    blocks of records: crc32, length, type) of W&B's protobuf Records."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, rows, buf, kinds = 7, 32768, [], b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, n, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if n == 0 and kind == 0:  # block padding
            pos += left - 7
            continue
        buf, pos = buf + data[pos : pos + n], pos + n
        if kind in (1, 4):  # a full record, or the last part of one
            rec = pb.Record()
            rec.ParseFromString(buf)
            buf = b""
            kinds.append(rec.WhichOneof("record_type"))
            if kinds[-1] == "history":
                rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                             for i in rec.history.item})  # fmt: skip
    assert "exit" in kinds, f"an unfinished log of {len(data)} bytes: records {kinds}"
    return rows


def test_wandb_offline_run_reads_back(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = _run_folder(tmp_path)
    track(run, TrackingConfig(wandb=True), {"seed": 3})
    files = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    got = {}
    for row in _wandb_history(files[0]):
        names = [k for k in row if not k.startswith("_") and not k.endswith("/step")]
        assert len(names) == 1  # one series per row, with its own step axis
        got[(names[0], row[names[0] + "/step"])] = row[names[0]]
    assert got == pytest.approx(EXPECTED)
    cfg_file = next((run / "wandb").glob("offline-run-*/files/config.yaml"), None)
    assert cfg_file is None or "seed" in cfg_file.read_text()


def test_a_missing_package_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_tensorboard(name, *a, **k):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(RewardLabError, match=r"pip install 'rewardlab\[track\]'"):
        track(_run_folder(tmp_path), TrackingConfig(tensorboard=True), {})


def test_a_study_with_tensorboard_on_logs_its_curves(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rewardlab.config import StudyConfig
    from rewardlab.study import run_study
    from tests.conftest import tiny_config_dict

    cfg = StudyConfig.model_validate(
        {**tiny_config_dict(tmp_path), "tracking": {"tensorboard": True}}
    )
    said = []
    run_study(cfg, tmp_path / "run", log=said.append)
    assert any(m.startswith("[tracking] TensorBoard events in") for m in said)
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    c = curves[(curves.optimizer == "bon") & (curves.reward == "rm-a")].sort_values("step")
    events = acc.Scalars("gold/bon/rm-a")
    assert [e.step for e in events] == c.step.tolist()
    assert np.allclose([e.value for e in events], c.gold, atol=1e-6)
    assert "proxy/bon/rm-a" in acc.Tags()["scalars"]
