"""The config reference: docs/CONFIG.md is the models' current reference, and `config show`
prints YAML that loads back to the same study with each key described."""

from pathlib import Path

import yaml

from rewardlab.config import StudyConfig, load_config, validated
from rewardlab.config_reference import markdown, show, type_name

DOC = Path(__file__).resolve().parents[1] / "docs" / "CONFIG.md"


def test_docs_config_md_is_the_models_reference():
    assert DOC.read_text() == markdown(), (
        "docs/CONFIG.md is stale: rewardlab config reference > docs/CONFIG.md"
    )


def test_the_reference_has_the_keys_a_newcomer_looks_for_with_their_defaults():
    text = DOC.read_text()
    for row in (
        "| `policy.epochs` | int | `3` |",
        "| `pool.n` | int | `1024` |",
        "| `optimizers.N.steps` | int | `100` |",
        "| `optimizers.N.measure_every` | int | `10` |",
        "| `rewards.N.path` | str | `required` |",
        "| `sweep` | str | `required` |",
    ):
        assert row in text, row
    assert "### rewards.N with kind: learned" in text
    assert "### optimizers.N with kind: grpo" in text


def test_every_study_key_has_a_row():
    # walked here by hand over the nested models, not with the module's own walker
    def keys(model, prefix=""):
        for name, f in model.model_fields.items():
            yield prefix + name
            ann = f.annotation
            if isinstance(ann, type) and issubclass(ann, StudyConfig.__mro__[1]):
                yield from keys(ann, f"{prefix}{name}.")

    text = DOC.read_text()
    for k in keys(StudyConfig):
        assert f"| `{k}` |" in text, k


def test_type_names_read_as_written():
    from typing import Literal

    assert type_name(int | None) == "int | None"
    assert type_name(list[str]) == "list[str]"
    assert type_name(Literal["a", "b"]) == "'a' | 'b'"


def test_show_loads_back_to_the_same_study_with_descriptions():
    cfg = load_config("tiny", ["seed=3", "optimizers.1.steps=7"])
    text = show(cfg)
    again = validated(yaml.safe_load(text), "shown")
    assert again == cfg
    lines = text.splitlines()
    assert "seed: 3  # every random stream of the study derives from it" in lines
    assert any(ln.strip().startswith("steps: 7  # ") for ln in lines)
    assert all("#" in ln for ln in lines)  # every key described


def test_config_show_from_another_folder_finds_the_packaged_study(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rewardlab.cli import app

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["config", "show", "tiny", "--set", "pool.n=32"])
    assert res.exit_code == 0, res.output
    data = yaml.safe_load(res.output)
    assert data["study"] == "tiny" and data["pool"]["n"] == 32
