import numpy as np
import pytest

from rewardlab.tasks.arithmetic import Arithmetic


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("4 6", 1.0),  # 12 + 34 = 46
        ("4 7", 0.1 + 0.9 * 1 / 2),  # ones digit wrong
        ("5 6", 0.1 + 0.9 * 1 / 2),  # tens digit wrong
        ("1 4 6", 0.1 + 0.9 * 2 / 3),  # an extra leading digit: 2 right of max(3, 2)
        ("6", 0.1 + 0.9 * 1 / 2),  # only the ones digit
        ("9 9", 0.1),  # well formed, nothing right
        ("1 1 4 6", 0.0),  # too long: more than len(t) + 1 digits
        ("4 +", 0.0),  # not all digits
        ("", 0.0),
    ],
)
def test_gold_hand_computed(completion, expected):
    assert Arithmetic().gold(["1 2 + 3 4 ="], [completion]) == [pytest.approx(expected)]


def test_gold_carry():
    # 9 9 9 + 1 = 1000
    assert Arithmetic().gold(["9 9 9 + 1 ="], ["1 0 0 0"]) == [1.0]
    assert Arithmetic().gold(["9 9 9 + 1 ="], ["0 0 0"]) == [pytest.approx(0.1 + 0.9 * 3 / 4)]


def test_noiseless_demonstrations_are_right_and_noisy_ones_are_not():
    t = Arithmetic(digits=3)
    rng = np.random.default_rng(0)
    prompts = t.prompts(300, rng)
    assert np.mean(t.gold(prompts, t.demonstrations(prompts, 0.0, rng))) == 1.0
    noisy = np.array(t.gold(prompts, t.demonstrations(prompts, 0.3, rng)))
    assert 0.4 < noisy.mean() < 0.95
    assert len(np.unique(noisy)) > 3  # graded, not 0/1


def test_prompts_are_seeded():
    t = Arithmetic()
    assert t.prompts(5, np.random.default_rng(3)) == t.prompts(5, np.random.default_rng(3))
