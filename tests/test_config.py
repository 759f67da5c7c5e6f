import pytest
import yaml

from rewardlab.config import StudyConfig, dump_config, load_config
from rewardlab.errors import RewardLabError


def write(tmp_path, data) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_unknown_key_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, {"policy": {"epochz": 3}})
    with pytest.raises(RewardLabError, match=r"study\.yaml.*unknown key 'policy\.epochz'"):
        load_config(path)


@pytest.mark.parametrize(
    "override, suggestion",
    [
        ("polcy.epochs=1", "'polcy' (did you mean 'policy'?)"),
        ("policy.epochz=1", "'policy.epochz' (did you mean 'policy.epochs'?)"),
        ("rewards.0.lrr=0.1", "'rewards.0.lrr' (did you mean 'rewards.0.lr'?)"),  # a learned reward
        ("optimizers.1.stepz=3", "'optimizers.1.stepz' (did you mean 'optimizers.1.steps'?)"),
        ("pool.nn=4", "'pool.nn' (did you mean 'pool.n'?)"),
    ],
)
def test_an_unknown_key_suggests_the_closest_known_one(override, suggestion):
    with pytest.raises(RewardLabError) as err:
        load_config("studies/quick.yaml", [override])
    assert f"unknown key {suggestion}" in str(err.value)
    with pytest.raises(RewardLabError) as err:
        load_config("studies/quick.yaml", ["zzz=1"])
    assert "unknown key 'zzz'" in str(err.value) and "did you mean" not in str(err.value)


def test_wrong_value_names_the_key(tmp_path):
    path = write(tmp_path, {"preferences": {"flip_rate": 0.9}})
    with pytest.raises(RewardLabError, match=r"'preferences\.flip_rate'.*0\.5"):
        load_config(path)


def test_overrides_and_round_trip(tmp_path):
    path = write(tmp_path, {"seed": 1, "rewards": [{"name": "a", "kind": "ensemble"}]})
    cfg = load_config(path, ["seed=5", "task.name=arithmetic", "rewards.0.members=4"])
    assert (cfg.seed, cfg.task.name, cfg.rewards[0].members) == (5, "arithmetic", 4)
    again = StudyConfig.model_validate(yaml.safe_load(dump_config(cfg)))
    assert again == cfg


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(RewardLabError, match="KEY=VALUE"):
        load_config(None, ["seed"])
    with pytest.raises(RewardLabError, match="unknown key 'nope'"):
        load_config(None, ["nope=1"])
    with pytest.raises(RewardLabError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_heads_must_divide_width():
    with pytest.raises(RewardLabError, match="not divisible"):
        load_config(None, ["policy.model.n_embd=30", "policy.model.n_head=4"])


def test_duplicate_reward_model_names():
    with pytest.raises(RewardLabError, match="unique"):
        load_config(
            None, ["rewards=[{name: a, kind: learned}, {name: a, kind: function, path: f.py}]"]
        )


def test_earlier_study_files_are_told_how_to_write_them_now():
    with pytest.raises(RewardLabError, match=r"'reward_models': list them under 'rewards:'.*'rl'"):
        load_config(None, ["reward_models=[{name: a}]", "rl.steps=3"])


def test_optimizers_name_known_rewards_and_appear_once():
    with pytest.raises(RewardLabError, match=r"optimizer 'grpo' names unknown rewards \['nope'\]"):
        load_config(None, ["optimizers=[{kind: grpo, rewards: [rule, nope]}]"])
    with pytest.raises(RewardLabError, match=r"appear once; repeated: \['bon'\]"):
        load_config(None, ["optimizers=[{kind: bon}, {kind: bon}]"])
    with pytest.raises(RewardLabError, match=r"optimizers\.0.*tag 'ppo'"):
        load_config(None, ["optimizers=[{kind: ppo}]"])
    with pytest.raises(RewardLabError, match=r"'/'"):
        load_config(None, ["rewards=[{name: a/b, kind: learned}]"])


def test_every_config_field_has_a_description():
    """The descriptions are the user's documentation of every key."""
    import inspect

    import pydantic

    import rewardlab.config
    import rewardlab.gridworld.config
    import rewardlab.specs
    import rewardlab.sweep
    from rewardlab import optimize, rewards

    modules = [rewardlab.config, rewardlab.gridworld.config, rewardlab.specs, rewardlab.sweep]
    modules += [*rewards.KINDS.values(), *optimize.KINDS.values()]
    models = {
        obj
        for m in modules
        for obj in vars(m).values()
        if inspect.isclass(obj)
        and issubclass(obj, pydantic.BaseModel)
        and obj.__module__ == m.__name__
    }
    missing = [
        f"{m.__name__}.{k}" for m in models for k, f in m.model_fields.items() if not f.description
    ]
    assert len(models) >= 20 and missing == []
