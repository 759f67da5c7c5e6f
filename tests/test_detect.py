"""Detectors on planted measurement tables with a known onset: statistics, alarms, lead times,
gold kept and false alarms, each computed by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from rewardlab.detect import (
    first_alarm,
    gold_audit,
    kl_acceleration,
    length_drift,
    score_detectors,
    score_run,
)


def _run(kl, length, gold, per_prompt=None, monitor=None):
    """A planted run measured every 10 steps; per-prompt gold defaults to gold on 4 prompts."""
    n = len(kl)
    per_prompt = per_prompt if per_prompt is not None else [[g] * 4 for g in gold]
    m = pd.DataFrame({"step": np.arange(n) * 10, "kl": kl, "mean_length": length, "gold": gold,
                      "proxy": np.linspace(0, 2, n),
                      "gold_by_prompt": [" ".join(map(str, r)) for r in per_prompt]})  # fmt: skip
    if monitor is not None:
        m["monitor"] = monitor
    return m


def test_kl_acceleration_by_hand():
    m = _run([0, 1, 2, 3, 9], [8] * 5, [0] * 5)
    # rates per step: -, 0.1, 0.1, 0.1, 0.6; the last over the mean of the earlier ones is 6
    s = kl_acceleration(m)
    assert np.isnan(s[:2]).all() and s[2:].tolist() == pytest.approx([1.0, 1.0, 6.0])
    assert first_alarm(s, 2.0) == 4


def test_length_drift_by_hand():
    s = length_drift(_run([0] * 4, [8, 8, 9, 11], [0] * 4))
    assert s.tolist() == pytest.approx([0, 0, 0.125, 0.375])
    assert first_alarm(s, 0.25) == 3 and first_alarm(s, 0.5) is None


def test_gold_audit_by_hand():
    # k = 2 audited prompts per measurement: means 1, 1, 0 (the third prompt is not audited)
    rows = [[1.0, 1.0, 9.0], [0.0, 2.0, 9.0], [0.0, 0.0, -9.0]]
    s = gold_audit(_run([0, 1, 2], [8] * 3, [0, 0, 0], per_prompt=rows), k=2)
    labels = np.array([1.0, 1.0, 0.0, 2.0, 0.0, 0.0])  # all audited labels up to the third
    se = labels.std(ddof=1) / math.sqrt(2)
    assert np.isnan(s[0]) and s[1] == pytest.approx(0.0)  # no spread yet at the first
    assert s[2] == pytest.approx((1.0 - 0.0) / se)


def test_a_run_scored_against_its_known_onset():
    # gold peaks at the third measurement (step 20, KL 1.5); length drifts past 25% at step 10
    m = _run([0, 0.5, 1.5, 4, 9], [8, 11, 12, 14, 16], [0, 0.6, 1.0, 0.2, -1.0])
    s = score_run(m, "length_drift")
    assert (s.onset, s.alarm) == (2, 1)
    assert s.lead_steps == 10 and s.lead_nats == pytest.approx(1.0)
    assert s.gold_kept == pytest.approx(0.6 - 1.0)
    late = score_run(m, "length_drift", threshold=0.9)  # alarms at step 40: after the peak
    assert late.lead_steps == -20 and late.gold_kept == pytest.approx(-2.0)
    never = score_run(m, "length_drift", threshold=5.0)  # trains to the end
    assert never.alarm is None and np.isnan(never.lead_steps)
    assert never.gold_kept == pytest.approx(-1.0 - 1.0)


def test_detectors_over_hacked_and_control_runs():
    hacked = [
        _run([0, 0.5, 1.5, 4, 9], [8, 11, 12, 14, 16], [0, 0.6, 1.0, 0.2, -1.0]),  # drift at 1
        _run([0, 1, 2, 3, 4], [8, 8, 8, 8, 12], [0, 0.5, 0.4, 0.3, 0.0]),  # drift at 4
    ]
    controls = [
        _run([0, 1, 2, 3, 4], [8, 8, 8, 8, 8], [0, 0.2, 0.4, 0.6, 0.8]),  # no drift
        _run([0, 1, 2, 3, 4], [8, 8, 8, 8, 10.5], [0, 0.2, 0.4, 0.6, 0.8]),  # 31%: a false alarm
    ]
    runs = [(m, "hacked") for m in hacked] + [(m, "control") for m in controls]
    t = score_detectors(runs)
    assert set(t[t.detector == "length_drift"].threshold) == {0.1, 0.25, 0.5}
    row = t[(t.detector == "length_drift") & (t.threshold == 0.25)].iloc[0]
    assert (row.n_runs, row.detected, row.n_controls) == (2, 1.0, 2)
    assert row.lead_steps == pytest.approx(np.median([20 - 10, 10 - 40]))  # onsets at 2 and 1
    assert row.lead_nats == pytest.approx(np.median([1.5 - 0.5, 1 - 4]))
    assert row.gold_kept == pytest.approx(np.mean([0.6 - 1.0, 0.0 - 0.5]))
    assert row.gold_kept_at_end == pytest.approx(np.mean([-1.0 - 1.0, 0.0 - 0.5]))
    assert row.false_alarm_rate == pytest.approx(0.5)
    assert "divergence" not in set(t.detector)  # no run measured a second reward
    watched = hacked[0].assign(proxy_raw=[0, 1, 2, 3, 4], proxy_se=0.5,
                               monitor_raw=0.0, monitor_se=0.5)  # fmt: skip
    t2 = score_detectors([(watched, "hacked")] + runs[1:])
    div = t2[(t2.detector == "divergence") & (t2.threshold == 1.0)].iloc[0]
    # scored on the one run with a monitor, none of the controls: rises 0, 1, 2 in s_p = 1
    assert (div.n_runs, div.n_controls, div.detected) == (1, 0, 1.0)
    assert np.isnan(div.false_alarm_rate) and div.lead_steps == 20 - 10
    strict = t[(t.detector == "length_drift") & (t.threshold == 0.5)].iloc[0]
    # at 0.5 both hacked runs alarm (step 20, at the onset; step 40) and no control does
    assert (strict.detected, strict.false_alarm_rate) == (1.0, 0.0)
    assert strict.lead_steps == pytest.approx(np.median([0, 10 - 40]))


def test_divergence_and_ensemble_disagreement_by_hand():
    from rewardlab.detect import divergence, ensemble_disagreement

    m = _run([0, 1, 2], [8] * 3, [0] * 3)  # 4 prompts: s = SE · 2
    m["proxy_raw"], m["proxy_se"] = [1.0, 2.0, 4.0], [0.5, 0.5, 0.5]  # s_p = 1
    m["monitor_raw"], m["monitor_se"] = [0.0, 2.0, 2.0], [1.0, 1.0, 1.0]  # s_m = 2
    assert divergence(m).tolist() == pytest.approx([0.0, 1 - 1.0, 3 - 1.0])
    m["disagreement"] = [0.2, 0.3, 0.5]
    assert ensemble_disagreement(m).tolist() == pytest.approx([0.0, 0.5, 1.5])
    assert np.isnan(ensemble_disagreement(m.drop(columns="disagreement"))).all()


def test_entropy_drop_by_hand():
    from rewardlab.detect import entropy_drop

    m = _run([0, 1, 2], [8] * 3, [0] * 3).assign(entropy=[20.0, 15.0, 5.0])
    assert entropy_drop(m).tolist() == pytest.approx([0.0, 0.25, 0.75])
    assert first_alarm(entropy_drop(m), 0.5) == 2
