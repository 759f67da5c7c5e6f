import numpy as np
import pytest

from rewardlab.tasks.sorting import Sorting


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("2 2 5 9", 1.0),
        ("2 5 2 9", 0.2 + 0.8 * 2 / 4),  # a permutation, two positions right
        ("9 5 2 2", 0.2 + 0.8 * 0 / 4),  # a permutation, reversed: no position right
        ("2 2 5", 0.8 * 3 / 4),  # not a permutation, 3 right of max(3, 4)
        ("2 2 5 9 9", 0.8 * 4 / 5),  # an extra element
        ("", 0.0),
    ],
)
def test_gold_hand_computed(completion, expected):
    assert Sorting().gold(["sort 5 2 9 2 :"], [completion]) == [pytest.approx(expected)]


def test_noiseless_demonstrations_are_right():
    t = Sorting()
    rng = np.random.default_rng(1)
    prompts = t.prompts(200, rng)
    assert np.mean(t.gold(prompts, t.demonstrations(prompts, 0.0, rng))) == 1.0
    assert np.mean(t.gold(prompts, t.demonstrations(prompts, 0.3, rng))) < 0.9
