"""The report's takeaway: read off hand-made tables, every word a verdict's or a measured order's."""

import pandas as pd

from rewardlab.report.takeaway import GLOSSARY, takeaway

FAMS = {"bon": "sample", "grpo": "trained", "dpo": "trained"}


def _summary(rows):
    cols = ["optimizer", "reward", "params", "peak_step", "final_kl", "verdict", "censored"]
    return pd.DataFrame(rows, columns=cols)


SUMMARY = _summary([
    ("bon", "rule", 0, 1024, 2.01, "not hacked", True),  # censored, but best-of-n: not marked
    ("bon", "rm-xs", 684, 40, 5.93, "hacked", False),
    ("bon", "rm-s", 8320, 900, 5.93, "undetermined", False),
    ("bon", "rm-m", 107008, 1024, 5.93, "not hacked", True),
    ("grpo", "rm-xs", 684, 50, 30.0, "hacked", False),
    ("grpo", "rule", 0, 150, 3.0, "not hacked", True),  # peak at the last of 150 steps
    ("dpo", "preferences", 0, 104, 1.0, "hacked", False),
])  # fmt: skip
RMS = pd.DataFrame({"stage": ["rm-rm-xs", "rm-rm-s", "rm-rm-m"],
                    "test_accuracy": [0.694, 0.822, 0.93]})  # fmt: skip


def test_three_lines_from_accuracy_and_verdicts():
    lines = takeaway(SUMMARY, FAMS, RMS)
    assert lines == [
        "Reward models: held-out accuracy 0.694 (rm-xs, 684 parameters), 0.822 (rm-s, 8,320 "
        "parameters), 0.930 (rm-m, 107,008 parameters): it rises with size.",
        "BON up to KL = 5.93 nats: hacked: rm-xs; not hacked: rule, rm-m; undetermined: rm-s.",
        "GRPO: hacked: rm-xs; not hacked: rule (censored). DPO: hacked: preferences.",
    ]


def test_accuracy_that_falls_with_size_is_said_so():
    rms = RMS.assign(test_accuracy=[0.644, 0.692, 0.641])
    assert takeaway(SUMMARY, FAMS, rms)[0].endswith("it does NOT rise with size.")


def test_no_reward_models_no_trained_optimizers_one_line():
    only = SUMMARY[SUMMARY.optimizer == "bon"]
    assert takeaway(only, FAMS, pd.DataFrame()) == [
        "BON up to KL = 5.93 nats: hacked: rm-xs; not hacked: rule, rm-m; undetermined: rm-s."
    ]


def test_the_glossary_names_every_term_the_issue_asks_for():
    terms = {t for t, _ in GLOSSARY}
    assert {"gold", "proxy", "std units", "√KL", "nats", "k1 / k3", "censored"} <= terms
