"""Shared test set-up: offline hub, quiet bars, a tiny study config and a finished tiny run."""

import os
import shutil

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def tiny_config_dict(tmp_path) -> dict:
    """A study small enough to run end to end in seconds."""
    return {
        "study": "tiny",
        "seed": 0,
        "cache_dir": str(tmp_path / "cache"),
        "task": {"name": "sorting", "params": {"min_len": 3, "max_len": 4}},
        "policy": {
            "model": {"n_layer": 1, "n_embd": 16, "n_head": 2},
            "train_prompts": 200,
            "epochs": 1,
        },
        "preferences": {"prompts": 40, "samples_per_prompt": 4},
        "rewards": [
            {
                "name": "rm-a",
                "kind": "learned",
                "model": {"n_layer": 1, "n_embd": 8, "n_head": 2},
                "epochs": 1,
            },
            {
                "name": "rm-b",
                "kind": "ensemble",
                "model": {"n_layer": 1, "n_embd": 16, "n_head": 2},
                "epochs": 1,
                "members": 2,
            },
        ],
        "pool": {"prompts": 3, "n": 16},
        "optimizers": [{"kind": "bon", "n_boot": 50}],
    }


@pytest.fixture
def tiny_config(tmp_path):
    from rewardlab.config import StudyConfig

    return StudyConfig.model_validate(tiny_config_dict(tmp_path))


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A finished tiny run (rule, a reward model, a 2-member ensemble, a program), its cache
    removed so that only the run folder is left to serve from."""
    tmp = tmp_path_factory.mktemp("integrations")
    data = tiny_config_dict(tmp)
    data["rewards"].append(
        {"name": "asc", "kind": "program", "path": "builtin:sorting_ascending_only"}
    )
    from rewardlab.config import StudyConfig
    from rewardlab.study import run_study

    cfg = StudyConfig.model_validate(data)
    run = tmp / "run"
    run_study(cfg, run, log=lambda _: None)
    shutil.rmtree(cfg.cache_dir)
    return run
