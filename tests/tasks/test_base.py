import math

import numpy as np
import pytest

from rewardlab.errors import RewardLabError
from rewardlab.tasks import BUILTIN, build_tokenizer, checked_gold, load_task

USER_TASK = '''
from dataclasses import dataclass, field

@dataclass
class Echo:
    """Repeat the prompt's word; gold 1 for the word, 0.5 for anything else."""
    name: str = "echo"
    vocab: list = field(default_factory=lambda: ["say", "x", "y", ":"])
    max_new_tokens: int = 2
    gold_range: tuple = (0.0, 1.0)
    bad: str = "none"

    def prompts(self, n, rng):
        return ["say " + str(rng.choice(["x", "y"])) + " :" for _ in range(n)]

    def demonstrations(self, prompts, noise, rng):
        return [p.split()[1] for p in prompts]

    def gold(self, prompts, completions, **kw):
        if self.bad == "raise" and any(c == "y" for c in completions):
            raise ValueError("no y please")
        if self.bad == "nan":
            return [1.0 if c == p.split()[1] else float("nan") for p, c in zip(prompts, completions)]
        return [1.0 if c == p.split()[1] else 0.5 for p, c in zip(prompts, completions)]

def make_task(**params):
    return Echo(**params)
'''


@pytest.fixture
def user_task_file(tmp_path):
    path = tmp_path / "echo_task.py"
    path.write_text(USER_TASK)
    return path


@pytest.mark.parametrize("name", list(BUILTIN))
def test_tokenizer_round_trip(name):
    task = load_task(name)
    tok = build_tokenizer(task.vocab)
    rng = np.random.default_rng(0)
    prompts = task.prompts(50, rng)
    for text in prompts + task.demonstrations(prompts, 0.5, rng):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == text


def test_tokenizer_specials_come_first():
    tok = build_tokenizer(["a", "b"])
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert tok("a b c", add_special_tokens=False)["input_ids"] == [4, 5, 3]


def test_unknown_task():
    with pytest.raises(RewardLabError, match="unknown task 'nope'|'nope' is not a built-in"):
        load_task("nope")


def test_user_task_file(user_task_file):
    task = load_task(str(user_task_file))
    assert task.name == "echo"
    assert task.gold(["say x :", "say x :"], ["x", "y"]) == [1.0, 0.5]


def test_user_task_that_fails_to_import(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import not_a_module_anywhere\n")
    with pytest.raises(RewardLabError, match=r"broken\.py.*failed to import.*ModuleNotFoundError"):
        load_task(str(bad))


def test_user_task_missing_file():
    with pytest.raises(RewardLabError, match="does not exist"):
        load_task("no/such/task.py")


def test_gold_that_raises_names_the_sample(user_task_file):
    task = load_task(str(user_task_file), {"bad": "raise"})
    with pytest.raises(RewardLabError, match=r"raised ValueError: no y please on sample 2 .*'y'"):
        checked_gold(task, ["say x :"] * 3, ["x", "x", "y"])


def test_gold_that_returns_nan_names_the_sample(user_task_file):
    task = load_task(str(user_task_file), {"bad": "nan"})
    with pytest.raises(RewardLabError, match=r"returned nan .* on sample 1 .*completion 'y'"):
        checked_gold(task, ["say x :"] * 2, ["x", "y"])
    assert checked_gold(task, ["say x :"], ["x"]) == [1.0]
    assert not math.isnan(checked_gold(task, ["say x :"], ["x"])[0])


def test_the_worked_example_task_loads_and_scores():
    task = load_task("examples/tasks/reverse.py", {"length": 3})
    assert task.gold(["reverse a b c :"] * 3, ["c b a", "c a b", ""]) == [1.0, 1 / 3, 0.0]
    rng = np.random.default_rng(0)
    prompts = task.prompts(20, rng)
    assert np.mean(task.gold(prompts, task.demonstrations(prompts, 0.0, rng))) == 1.0


def test_tokenizer_adds_bos_only_when_asked():
    tok = build_tokenizer(["a", "b"])
    assert tok("a b")["input_ids"] == [tok.bos_token_id, 4, 5]
    assert tok("a b", add_special_tokens=False)["input_ids"] == [4, 5]
    assert tok.decode(tok("a b")["input_ids"], skip_special_tokens=True) == "a b"
