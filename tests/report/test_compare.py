"""`rewardlab compare`: the curves of separate runs in one table and one plot."""

import pandas as pd
import pytest

from rewardlab.errors import RewardLabError
from rewardlab.report.compare import compare


def _run(folder, golds, proxies):
    folder.mkdir(parents=True)
    steps = [0, 5, 10]
    pd.DataFrame(
        dict(
            optimizer="grpo",
            reward="rm",
            step=steps,
            kl=[0.0, 0.25, 1.0],
            sqrt_kl=[0.0, 0.5, 1.0],
            gold=golds,
            proxy=proxies,
        )  # fmt: skip
    ).to_csv(folder / "curves.csv", index=False)
    return folder


def test_compare_overlays_runs_and_reads_their_peaks(tmp_path):
    a = _run(tmp_path / "x" / "seed0", [0.0, 0.6, 0.1], [0.0, 1.0, 2.0])
    b = _run(tmp_path / "y" / "seed0", [0.0, 0.2, 0.3], [0.0, 0.5, 0.9])  # the same folder name
    summary = compare([a, b], tmp_path / "cmp").set_index("run")
    assert list(summary.index) == ["x/seed0", "y/seed0"]
    assert summary.loc["x/seed0", ["peak_gold", "peak_step", "final_gold"]].tolist() == [
        0.6,
        5,
        0.1,
    ]
    assert summary.loc["y/seed0", ["peak_gold", "peak_step", "final_kl"]].tolist() == [0.3, 10, 1.0]
    table = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert len(table) == 6 and set(table.run) == {"x/seed0", "y/seed0"}
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 5000


def test_compare_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        RewardLabError, match=r"empty is not a finished run folder \(no curves.csv\)"
    ):
        compare([tmp_path / "empty"], tmp_path / "cmp")


def test_compare_warns_when_runs_differ_in_task_and_draws_no_empty_panel(tmp_path):
    import matplotlib.image as mpimg
    import yaml

    a = _run(tmp_path / "a", [0.0, 0.6, 0.1], [0.0, 1.0, 2.0])
    b = _run(tmp_path / "b", [0.0, 0.2, 0.3], [0.0, 0.5, 0.9])
    c = _run(tmp_path / "c", [0.0, 0.2, 0.3], [0.0, 0.5, 0.9])
    for run, task in ((a, "topics"), (b, "sorting"), (c, "topics")):
        (run / "config.yaml").write_text(yaml.safe_dump({"task": {"name": task}, "policy": {}}))
    compare([a, b, c], tmp_path / "cmp")
    warned = (tmp_path / "cmp" / "warnings.txt").read_text().splitlines()
    assert warned == ["the runs differ in 'task' (a, c; b): their curves are not on one scale"]
    compare([a, c], tmp_path / "same")
    assert not (tmp_path / "same" / "warnings.txt").exists()

    # a DPO curve has no proxy: its column keeps the gold panel and drops the proxy panel
    d = tmp_path / "d"
    d.mkdir()
    pd.DataFrame(dict(optimizer="dpo", reward="preferences", step=[0, 5], kl=[0.0, 1.0],
                      sqrt_kl=[0.0, 1.0], gold=[0.0, 0.4], proxy=[float("nan")] * 2)
                 ).to_csv(d / "curves.csv", index=False)  # fmt: skip
    compare([a, d], tmp_path / "mixed")
    png = mpimg.imread(tmp_path / "mixed" / "compare.png")
    h, w = png.shape[:2]
    lower_right = png[int(h * 0.6) : int(h * 0.95), int(w * 0.6) : int(w * 0.95), :3]
    assert lower_right.min() > 0.99  # blank: no axes drawn where DPO's proxy would be
    lower_left = png[int(h * 0.6) : int(h * 0.95), int(w * 0.1) : int(w * 0.45), :3]
    assert lower_left.min() < 0.5  # grpo's proxy panel is there
