"""Progress off a terminal: timed lines with fraction, rate and ETA; the mode from the env."""

import subprocess
import sys

import pytest
import yaml
from conftest import tiny_config_dict

from rewardlab import progress


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock_and_lines(monkeypatch):
    """A clock the test moves, and the progress lines said, in order."""
    clock, said = Clock(), []
    monkeypatch.setattr(progress.time, "monotonic", clock)
    progress.send_to(said.append)
    yield clock, said
    progress.send_to(None)


def test_lines_say_fraction_rate_and_eta_at_their_interval(clock_and_lines):
    clock, said = clock_and_lines
    p = progress.Lines(None, "sft", total=10, every=5.0)
    clock.t += 2.0
    p.update(4)  # 2 s after the start: under the interval, silent
    assert said == []
    clock.t += 3.0
    p.set_postfix(loss="0.500")
    p.update(1)  # 5 of 10 in 5 s: 1/s, 5 s to go
    assert said == ["[sft] 50% (5/10) 1/s ETA 5s loss=0.500"]
    clock.t += 1.0
    p.update(5)  # 1 s after the last line: silent
    p.close()
    assert said[-1] == "[sft] 100% (10/10) 1.67/s ETA 0s loss=0.500 done in 6s"


def test_a_resumed_count_rates_only_this_processs_work(clock_and_lines):
    clock, said = clock_and_lines
    p = progress.Lines(None, "grpo", total=100, every=1.0)
    p.n = p.n0 = 60  # 60 steps were done before a restart
    clock.t += 10.0
    p.update(20)  # 20 steps in 10 s: 2/s, 20 left: 10 s
    assert said == ["[grpo] 80% (80/100) 2/s ETA 10s"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", "bar"),
        ("bar", "bar"),
        ("lines", "lines"),
        ("0", "off"),
        ("off", "off"),
        ("", "lines"),
    ],  # fmt: skip
)
def test_the_mode_comes_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("REWARDLAB_PROGRESS", value)
    assert progress.mode() == expected  # stderr is not a terminal under pytest: lines by default


def test_a_piped_run_prints_progress_lines(tmp_path):
    cfg = tiny_config_dict(tmp_path)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    env = {"REWARDLAB_PROGRESS_EVERY": "0", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-m", "rewardlab.cli", "run", str(tmp_path / "s.yaml"), "--out",
         str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.startswith("[")]
    assert any(x.startswith("[sft] ") and "% (" in x and "/s ETA" in x for x in lines), lines[:5]
    assert any(x.endswith("s") and " done in " in x for x in lines)
