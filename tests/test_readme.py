"""The README and docs/USAGE.md as a newcomer uses them: the quickstart's reward, study and task
run as written, the measuring example runs, and every `rewardlab` command in them parses."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
USAGE = ROOT / "docs" / "USAGE.md"


def block(text: str, lang: str, first_line: str) -> str:
    """The fenced `lang` block of `text` whose first line is `first_line`."""
    m = re.search(rf"```{lang}\n({re.escape(first_line)}\n.*?)```", text, re.S)
    assert m, f"no {lang} block starting {first_line!r}"
    return m.group(1)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewardlab.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_the_first_reward_runs_as_written_and_is_hacked(tmp_path):
    text = README.read_text()
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "my_reward.py").write_text(block(text, "python", "# my_reward.py"))
    (folder / "my_study.yaml").write_text(block(text, "yaml", "# my_study.yaml"))
    assert ".venv/bin/rewardlab run my_study.yaml" in block(
        text, "bash", ".venv/bin/rewardlab run my_study.yaml     # about 20 s"
    )
    p = cli("run", "mine/my_study.yaml", "--out", str(tmp_path / "run"),
            "--set", f"cache_dir={tmp_path / 'cache'}", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    s = pd.read_csv(tmp_path / "run" / "summary.csv").set_index(["optimizer", "reward"])
    # what the README says of it: best-of-n against `mine` peaks, then loses gold (the fall's
    # interval over prompts above zero); GRPO raises `mine` by about 2 std and gold does not rise
    bon = s.loc[("bon", "mine")]
    assert bon.gold_drop > 0 and bon.drop_lo > 0
    grpo = s.loc[("grpo", "mine")]
    assert grpo.final_proxy > 1.5 and grpo.final_gold < 0.1
    shown = cli("config", "show", "mine/my_study.yaml", cwd=tmp_path)
    assert shown.returncode == 0 and f"path: {folder / 'my_reward.py'}  # " in shown.stdout


def test_the_first_task_command_runs(tmp_path):
    line = block(
        README.read_text(),
        "bash",
        ".venv/bin/rewardlab run tiny --task examples/tasks/reverse.py --out runs/reverse",
    )
    args = shlex.split(line)[1:]
    args[args.index("--out") + 1] = str(tmp_path / "run")
    p = cli(*args, "--set", f"cache_dir={tmp_path / 'cache'}", cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "run" / "report.html").is_file()
    assert "reverse" in (tmp_path / "run" / "config.yaml").read_text()


def commands(path: Path) -> list[list[str]]:
    """Every `.venv/bin/rewardlab ...` line of a bash block of `path`, comments dropped."""
    out = []
    for b in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        for line in b.splitlines():
            if line.startswith(".venv/bin/rewardlab "):
                out.append(shlex.split(line, comments=True)[1:])
    return out


@pytest.mark.parametrize("doc", [README, USAGE], ids=lambda p: p.name)
def test_every_command_in_the_docs_parses(doc):
    """Each command resolves to a real subcommand whose options and arguments parse (nothing is
    run: the commands name runs and servers a reader has)."""
    from rewardlab.cli import app

    found = commands(doc)
    assert found
    for args in found:
        cmd, rest = typer.main.get_command(app), list(args)
        while hasattr(cmd, "resolve_command"):  # a group: descend to the subcommand
            name, cmd, rest = cmd.resolve_command(
                cmd.make_context("rewardlab", list(rest), resilient_parsing=True), rest
            )
        cmd.make_context(name, rest)  # raises on an unknown option or a bad value


def test_the_measure_example_runs_as_written(tmp_path, monkeypatch):
    code = block(USAGE.read_text(), "python", "import numpy as np")
    rng = np.random.default_rng(0)
    gold = rng.normal(size=(40, 256))
    proxy = gold + rng.normal(size=gold.shape)  # a noisy proxy: gold rises with n
    monkeypatch.chdir(tmp_path)
    np.save("proxy.npy", proxy)
    np.save("gold.npy", gold)
    env: dict = {}
    exec(code, env)
    G, curve, fit = env["G"], env["curve"], env["fit"]
    assert G[:, 0].mean() == pytest.approx(0.0, abs=1e-9)  # normalised: the base policy scores 0
    assert np.allclose(G.mean(0), curve.gold.to_numpy())  # per-prompt curves average to the curve
    # the fit is least squares of the mean curve on (d, -d^2), solved here independently
    d = np.sqrt(curve.kl.to_numpy())
    (a, b), *_ = np.linalg.lstsq(np.stack([d, -(d**2)], 1), G.mean(0), rcond=None)
    assert (fit.alpha, fit.beta) == pytest.approx((a, b), rel=1e-6)
