"""Labels out and in: TRL's preference layout (``prompt``, ``chosen``, ``rejected``) and Label
Studio's pairwise tasks with their annotations (the Pairwise template: data ``prompt``,
``answer1``, ``answer2``; a result of type ``pairwise`` whose ``value.selected`` is ``left`` or
``right``)."""

from __future__ import annotations

from collections.abc import Sequence

from rewardlab.errors import RewardLabError

SIDE = {"a": "left", "b": "right"}


def trl_pairs(labels: Sequence[dict]) -> list[dict]:
    """One row per comparison labelled left or right (ties and skips carry no preference):
    prompt, chosen, rejected, the labeller, and the gold of each side (for agreement)."""
    out = []
    for r in labels:
        if r["kind"] != "comparison" or r["choice"] not in SIDE:
            continue
        win, lose = ("a", "b") if r["choice"] == "a" else ("b", "a")
        out.append(dict(prompt=r["prompt"], chosen=r[win], rejected=r[lose], labeller=r["labeller"],
                        gold_chosen=r[f"gold_{win}"], gold_rejected=r[f"gold_{lose}"]))  # fmt: skip
    return out


def label_studio(labels: Sequence[dict]) -> list[dict]:
    """Label Studio tasks, one per labelled comparison (left or right), with its annotation."""
    tasks = []
    for r in labels:
        if r["kind"] != "comparison" or r["choice"] not in SIDE:
            continue
        result = {"from_name": "comparison", "to_name": "answer1", "type": "pairwise",
                  "value": {"selected": SIDE[r["choice"]]}}  # fmt: skip
        tasks.append({"id": r["item"], "data": {"prompt": r["prompt"], "answer1": r["a"],
                                                "answer2": r["b"]},
                      "annotations": [{"completed_by": r["labeller"], "result": [result]}]})  # fmt: skip
    return tasks


def from_label_studio(tasks) -> list[dict]:
    """TRL rows (prompt, chosen, rejected, labeller) from Label Studio pairwise tasks: one row per
    annotation whose pairwise result selects left or right.

    Raises:
        RewardLabError: not a list of tasks, or a task without prompt/answer1/answer2.
    """
    if not isinstance(tasks, list):
        raise RewardLabError("a Label Studio export is a JSON list of tasks")
    out = []
    for k, t in enumerate(tasks):
        data = t.get("data") if isinstance(t, dict) else None
        if not isinstance(data, dict) or not all(
            isinstance(data.get(f), str) for f in ("prompt", "answer1", "answer2")
        ):
            raise RewardLabError(
                f"Label Studio task {k}: data needs prompt, answer1 and answer2 strings"
            )
        for ann in t.get("annotations") or []:
            for res in ann.get("result") or []:
                sel = (
                    (res.get("value") or {}).get("selected")
                    if res.get("type") == "pairwise"
                    else None
                )
                if sel not in ("left", "right"):
                    continue
                win, lose = ("answer1", "answer2") if sel == "left" else ("answer2", "answer1")
                out.append(dict(prompt=data["prompt"], chosen=data[win], rejected=data[lose],
                                labeller=str(ann.get("completed_by", ""))))  # fmt: skip
    return out
