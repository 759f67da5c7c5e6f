import numpy as np
import pytest

from rewardlab.tasks.topics import Topics

P = "write about river lamp :"


@pytest.mark.parametrize(
    "completion, expected",
    [
        # both words, 7 distinct words, inside the window [6, 10]
        ("the river runs past a quiet lamp", 1.0),
        # one word of two: coverage 1/2
        ("the river runs past a quiet", 0.5 * 0.5 + 0.25 + 0.25),
        # 8 words, 4 distinct (river lamp a the): distinct 4/8
        ("river river river lamp lamp a a the", 0.5 + 0.25 * 4 / 8 + 0.25),
        # 3 words: 3 short of the window, length 1 - 3/6
        ("river lamp the", 0.5 + 0.25 + 0.25 * 0.5),
        # 13 words, all distinct: 3 over the window
        (
            "river lamp the a and of to in past over quiet bright old",
            0.5 + 0.25 + 0.25 * (1 - 3 / 6),
        ),
        ("", 0.0),
    ],
)
def test_gold_hand_computed(completion, expected):
    assert Topics().gold([P], [completion]) == [pytest.approx(expected)]


def test_demonstrations_graded():
    t = Topics()
    rng = np.random.default_rng(2)
    prompts = t.prompts(300, rng)
    assert np.mean(t.gold(prompts, t.demonstrations(prompts, 0.0, rng))) == 1.0
    noisy = np.array(t.gold(prompts, t.demonstrations(prompts, 0.4, rng)))
    assert noisy.mean() < 0.9 and len(np.unique(noisy)) > 5
