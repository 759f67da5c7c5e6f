"""A simulated rater that labels through the same HTTP API as a person: it reads each queued
item, judges it by the task's gold plus noise (and optionally a bias), waits, and posts.

Comparison: with margin m = g_a − g_b + bias_length · (len_a − len_b) (lengths in words), it
chooses a when m > 0 (b when m < 0, tie when m = 0), then flips the choice with probability
`flip_rate`. Rating: score = clip(round(1 + 6 g + ε), 1, 7), ε ~ N(0, rating_noise²), for gold g
in [0, 1] (the task's gold range mapped onto it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import requests

from rewardlab.errors import RewardLabError


def simulate(
    url: str,
    token: str,
    task,
    kind: str = "comparison",
    flip_rate: float = 0.0,
    bias_length: float = 0.0,
    rating_noise: float = 0.0,
    delay_s: float = 0.0,
    limit: int | None = None,
    seed: int = 0,
    timeout_s: float = 30.0,
    follow: Callable[[], bool] | None = None,
    poll_s: float = 0.2,
) -> int:
    """Label the queue of `token`'s labeller at `url` until it is empty (or `limit` labels);
    with `follow`, keep waiting for new items (a learner's requests) while ``follow()`` is true.
    Return how many labels were posted."""
    rng = np.random.default_rng(seed)
    lo, hi = task.gold_range
    headers = {"X-Token": token}
    done = 0
    while limit is None or done < limit:
        r = requests.get(
            f"{url}/api/next", params={"kind": kind}, headers=headers, timeout=timeout_s
        )
        if r.status_code != 200:
            raise RewardLabError(f"the label server answered {r.status_code}: {r.text[:200]}")
        item = r.json()["item"]
        if item is None:
            if follow is not None and follow():
                time.sleep(poll_s)
                continue
            return done
        if kind == "comparison":
            ga, gb = task.gold([item["prompt"]] * 2, [item["a"], item["b"]])
            m = ga - gb + bias_length * (len(item["a"].split()) - len(item["b"].split()))
            choice = "a" if m > 0 else "b" if m < 0 else "tie"
            if choice != "tie" and rng.random() < flip_rate:
                choice = "b" if choice == "a" else "a"
            body = {"item": item["id"], "choice": choice}
        else:
            g = (task.gold([item["prompt"]], [item["a"]])[0] - lo) / (hi - lo)
            score = int(np.clip(round(1 + 6 * g + rng.normal(0, rating_noise)), 1, 7))
            body = {"item": item["id"], "score": score}
        time.sleep(delay_s)
        r = requests.post(f"{url}/api/labels", json=body, headers=headers, timeout=timeout_s)
        if r.status_code != 200:
            raise RewardLabError(
                f"the label server refused a label ({r.status_code}): {r.text[:200]}"
            )
        done += 1
    return done
