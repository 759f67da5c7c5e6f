"""The built-in partial rules against scores computed by hand, and task descriptions."""

import pytest

from rewardlab.errors import RewardLabError
from rewardlab.rewards.program import ProgramReward, builtin_programs, resolve
from rewardlab.sandbox import check_available
from rewardlab.tasks import BUILTIN, load_task

try:
    check_available()
    SANDBOX = True
except RewardLabError:  # pragma: no cover
    SANDBOX = False

CASES = {
    # program: (prompts, completions, scores by hand)
    "topics_required_only": (
        ["write about river lamp :"] * 3,
        ["river lamp a b c d", "river river river", "x y"],
        [1.0, 0.5, 0.0],
    ),
    "topics_required_count": (
        ["write about river lamp :"] * 3,
        ["river lamp a b c d", "river river river", "x y"],
        [1.0, 1.5, 0.0],  # repeating a required word scores more: the flaw
    ),
    "topics_required_and_length": (
        ["write about river lamp :"] * 3,
        ["river lamp a b c d", "river river river", "river x x x x x x"],
        [1.0, 0.25, 0.75],  # 0.5·1 + 0.5·1; 0.5·0.5 + 0; 0.5·0.5 + 0.5 (repeats not seen)
    ),
    "arithmetic_format_only": (
        ["3 4 7 + 5 8 ="] * 3, ["4 0 5", "9 9 9", "4 0 + 5"], [1.0, 1.0, 0.0],
    ),
    "arithmetic_last_digit": (
        ["3 4 7 + 5 8 ="] * 3, ["4 0 5", "1 1 5", "4 0 4"], [1.0, 1.0, 0.0],
    ),
    "sorting_ascending_only": (
        ["sort 5 2 9 2 :"] * 3, ["2 2 5 9", "1 1 1", "9 5 2 2"], [1.0, 1.0, 0.0],
    ),
    "sorting_same_digits": (
        ["sort 5 2 9 2 :"] * 3, ["2 2 5 9", "9 5 2 2", "2 5 9"], [1.0, 1.0, 0.0],
    ),
}  # fmt: skip


def test_every_builtin_program_has_a_hand_computed_case():
    assert sorted(CASES) == builtin_programs()


@pytest.mark.skipif(not SANDBOX, reason="no Landlock or libseccomp on this machine")
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_partial_rule_scores_as_computed_by_hand(name):
    prompts, comps, want = CASES[name]
    assert ProgramReward(resolve(f"builtin:{name}"))(prompts, comps) == pytest.approx(want)


def test_each_partial_rule_misses_what_the_gold_rule_sees():
    """Where the program gives full marks, the task's own gold does not (the flaw is real)."""
    gold = load_task("topics").gold(["write about river lamp :"], ["river river river"])[0]
    assert gold < 1.0  # while topics_required_count gives it 1.5
    ar = load_task("arithmetic").gold(["3 4 7 + 5 8 ="], ["9 9 9"])[0]
    assert ar == pytest.approx(0.1)  # well formed, wrong: format-only gives 1
    so = load_task("sorting").gold(["sort 5 2 9 2 :"], ["1 1 1"])[0]
    assert so < 0.5  # ascending but not the input's digits


def test_an_unknown_builtin_program_lists_the_known_ones():
    with pytest.raises(RewardLabError, match="no built-in reward program 'nope'; there are: arith"):
        resolve("builtin:nope")


def test_every_builtin_task_describes_itself():
    for name in BUILTIN:
        task = load_task(name)
        assert len(task.description) > 40 and "gold" not in task.description
        assert "prompts like" in task.reward_inputs
