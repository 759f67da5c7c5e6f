"""A finished tiny run (rule, a reward model, a 2-member ensemble, a program) shared by the
integration tests, its cache removed so that only the run folder is left to serve from."""

import shutil

import pytest

from rewardlab.config import StudyConfig
from rewardlab.study import run_study
from tests.conftest import tiny_config_dict


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("integrations")
    data = tiny_config_dict(tmp)
    data["rewards"].append(
        {"name": "asc", "kind": "program", "path": "builtin:sorting_ascending_only"}
    )
    cfg = StudyConfig.model_validate(data)
    run = tmp / "run"
    run_study(cfg, run, log=lambda _: None)
    shutil.rmtree(cfg.cache_dir)
    return run
