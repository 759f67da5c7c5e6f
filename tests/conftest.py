"""Shared test set-up: offline hub, quiet bars, and a tiny study config."""

import os

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
