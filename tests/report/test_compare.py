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
