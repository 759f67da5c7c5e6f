"""The sweep report's tables: intervals only with enough seeds, and every column explained."""

import math

import pandas as pd

from rewardlab.report.sweep.page import _table


def test_intervals_over_two_seeds_are_left_blank_and_columns_are_explained():
    df = pd.DataFrame(dict(x=[1, 2], seeds=[2, 5], test_accuracy=[0.7, 0.8],
                           test_accuracy_ci95=[2.95, 0.04], rises=[math.nan, True]))  # fmt: skip
    html = _table(df)
    assert "2.95" not in html  # a 2-seed half-width on an accuracy means nothing: blank
    assert "0.04" in html  # 5 seeds: shown
    assert "<b>rises</b>: whether the mean test accuracy is above that of the level below" in html
    assert "<b>X_ci95</b>: half-width of the 95% interval of X over seeds" in html
    assert "blank with fewer than 3 seeds" in html
