import numpy as np
import pandas as pd
import pytest

from rewardlab.errors import RewardLabError
from rewardlab.preferences import PreferenceConfig, make_pairs, read_preference_file


def pool(golds_per_prompt):
    rows = []
    for pid, golds in enumerate(golds_per_prompt):
        for sid, g in enumerate(golds):
            rows.append(dict(prompt_id=pid, prompt=f"p{pid}", completion=f"c{pid}_{sid}", gold=g))
    return pd.DataFrame(rows)


def test_deterministic_labels_drop_ties_and_keep_trl_columns():
    df = make_pairs(pool([[0.1, 0.2, 0.5, 0.5]] * 1), PreferenceConfig(), np.random.default_rng(0))
    assert list(df.columns) == [
        "prompt",
        "chosen",
        "rejected",
        "gold_chosen",
        "gold_rejected",
        "split",
    ]
    assert (df.gold_chosen > df.gold_rejected).all()
    # four samples make two disjoint pairs; a tie (0.5, 0.5) is dropped if drawn
    assert 1 <= len(df) <= 2


def test_flip_rate_is_the_fraction_of_flipped_labels():
    rng = np.random.default_rng(1)
    golds = rng.random((2000, 2))
    df = make_pairs(pool(golds), PreferenceConfig(flip_rate=0.25), np.random.default_rng(2))
    flipped = (df.gold_chosen < df.gold_rejected).mean()
    se = np.sqrt(0.25 * 0.75 / len(df))
    assert abs(flipped - 0.25) < 4 * se


def test_bradley_terry_labels_follow_the_sigmoid():
    # every pair differs by exactly 0.1 in gold: P(higher chosen) = sigmoid(bt_scale * 0.1)
    golds = [[0.3, 0.4]] * 3000
    cfg = PreferenceConfig(label="bradley_terry", bt_scale=10.0)
    df = make_pairs(pool(golds), cfg, np.random.default_rng(3))
    p = 1 / (1 + np.exp(-1.0))
    right = (df.gold_chosen > df.gold_rejected).mean()
    assert abs(right - p) < 4 * np.sqrt(p * (1 - p) / len(df))


def test_test_split_is_by_prompt():
    df = make_pairs(
        pool(np.random.default_rng(4).random((50, 4))),
        PreferenceConfig(test_fraction=0.2),
        np.random.default_rng(5),
    )
    by_prompt = df.groupby("prompt")["split"].nunique()
    assert (by_prompt == 1).all()
    assert df.drop_duplicates("prompt").split.eq("test").sum() == pytest.approx(10, abs=1)


def test_min_margin_drops_exactly_the_near_ties():
    # two samples a prompt: one pair each, with gold gaps 0.01, 0.04, 0.05, 0.3
    golds = [[0.5, 0.51], [0.2, 0.24], [0.0, 0.05], [0.9, 0.6]]
    kept = make_pairs(pool(golds), PreferenceConfig(min_margin=0.05), np.random.default_rng(0))
    gaps = sorted((kept.gold_chosen - kept.gold_rejected).round(6))
    assert gaps == [0.05, 0.3]
    assert len(make_pairs(pool(golds), PreferenceConfig(), np.random.default_rng(0))) == 4


# ---------------------------------------------------------------- outside preference files

PAIRS = [("sort 3 1 :", "1 3", "3 1"), ("sort 2 5 :", "2 5", "5"), ("sort 9 4 :", "4 9", "9 9")]


def _write_jsonl(path, rows):
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_standard_conversational_and_implicit_prompt_files_read_alike(tmp_path):
    std = [dict(prompt=p, chosen=c, rejected=r) for p, c, r in PAIRS]
    conv = [dict(prompt=[{"role": "user", "content": p}],
                 chosen=[{"role": "assistant", "content": c}],
                 rejected=[{"role": "assistant", "content": r}]) for p, c, r in PAIRS]  # fmt: skip
    implicit = [dict(chosen=[{"role": "user", "content": p}, {"role": "assistant", "content": c}],
                     rejected=[{"role": "user", "content": p}, {"role": "assistant", "content": r}])
                for p, c, r in PAIRS]  # fmt: skip
    pd.DataFrame(implicit).to_parquet(tmp_path / "implicit.parquet")
    files = [_write_jsonl(tmp_path / "std.jsonl", std), _write_jsonl(tmp_path / "conv.jsonl", conv),
             tmp_path / "implicit.parquet"]  # fmt: skip
    for f in files:
        df = read_preference_file(str(f), 0.34, np.random.default_rng(0))
        assert list(zip(df.prompt, df.chosen, df.rejected, strict=True)) == PAIRS, f
        assert sorted(df.split) == ["test", "train", "train"]  # one of three prompts held out


def test_a_split_column_is_kept(tmp_path):
    rows = [dict(prompt=p, chosen=c, rejected=r, split=s)
            for (p, c, r), s in zip(PAIRS, ["train", "test", "train"], strict=True)]  # fmt: skip
    df = read_preference_file(
        str(_write_jsonl(tmp_path / "s.jsonl", rows)), 0.5, np.random.default_rng(0)
    )
    assert df.split.tolist() == ["train", "test", "train"]


@pytest.mark.parametrize(
    "rows, words",
    [
        ([dict(prompt="a", chosen="b")], "lacks the column(s) rejected; it has prompt, chosen"),
        ([dict(prompt="a", chosen=3, rejected="c")], "row 0: chosen must be a string"),
        (
            [
                dict(
                    chosen=[
                        {"role": "user", "content": "a"},
                        {"role": "assistant", "content": "b"},
                    ],
                    rejected=[
                        {"role": "user", "content": "z"},
                        {"role": "assistant", "content": "c"},
                    ],
                )
            ],
            "do not share their messages",
        ),  # fmt: skip
        ([dict(prompt="a", chosen="b", rejected="c", split="dev")], "train or test, got ['dev']"),
        ([dict(prompt="a", chosen="b", rejected="c", split="test")], "no training pairs"),
    ],
)
def test_a_malformed_file_names_its_problem(tmp_path, rows, words):
    f = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(RewardLabError) as err:
        read_preference_file(str(f), 0.1, np.random.default_rng(0))
    assert words in str(err.value) and str(f) in str(err.value)


def test_an_unreadable_or_unknown_file_is_an_error(tmp_path):
    (tmp_path / "x.jsonl").write_text("{not json\n")
    with pytest.raises(RewardLabError, match="unreadable"):
        read_preference_file(str(tmp_path / "x.jsonl"), 0.1, np.random.default_rng(0))
    with pytest.raises(RewardLabError, match="give a .parquet or .jsonl"):
        read_preference_file(str(tmp_path / "x.csv"), 0.1, np.random.default_rng(0))


def test_split_pairs_skips_then_takes(finished_run):
    """Two reward models on separate pairs: skip N, then take M, read against the file itself."""
    from rewardlab.cache import StageResult
    from rewardlab.preferences import split_pairs

    stage = StageResult("preferences", finished_run / "stages" / "preferences", "h", False, 0.0)
    prefs = pd.read_parquet(stage.path / "preferences.parquet")
    train = prefs[prefs.split == "train"]
    first, _ = split_pairs(stage, 10, "a")
    second, test = split_pairs(stage, 10, "b", skip=10)
    pd.testing.assert_frame_equal(first, train.iloc[:10])
    pd.testing.assert_frame_equal(second, train.iloc[10:20])
    assert not set(first.index) & set(second.index) and (test.split == "test").all()
    with pytest.raises(RewardLabError, match="after skipping 10"):
        split_pairs(stage, len(train), "c", skip=10)
    with pytest.raises(RewardLabError, match="none are left"):
        split_pairs(stage, None, "d", skip=len(train))
