"""verl's custom reward function: ``compute_score`` (naive reward manager, one sample a call) and
``compute_score_batch`` (batch reward manager) scoring with a reward of a lab run.

verl calls ``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...,
**reward_kwargs)``; `reward_kwargs` (from ``custom_reward_function.reward_kwargs``) say which
run (``run``), which reward (``reward``), which others to log beside it (``log``) and where the
prompt is (``prompt_key`` of `extra_info`, ``"prompt"`` by default: verl does not pass the prompt
itself). The answer is ``{"score": r, <logged reward>: ..., <ensemble>/member<j>: ...,
<ensemble>/disagreement: ...}``; verl trains on ``score`` and logs the rest.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from rewardlab.errors import RewardLabError
from rewardlab.integrations.runs import Scorer, load_run_rewards


@functools.lru_cache(maxsize=8)
def _scorer(run: str, names: tuple[str, ...], device: str) -> Scorer:
    return Scorer(load_run_rewards(run, device=device), names)


def _prompt(extra_info, key: str, i: int | None = None) -> str:
    where = "extra_info" if i is None else f"extra_infos[{i}]"
    if not isinstance(extra_info, dict) or not isinstance(extra_info.get(key), str):
        raise RewardLabError(
            f"rewardlab's compute_score needs the prompt as a string in {where}[{key!r}] (verl "
            "passes only the response): put it in the dataset's extra_info column, or set "
            "reward_kwargs.prompt_key"
        )
    return extra_info[key]


def _settings(run, reward) -> None:
    if not run or not reward:
        raise RewardLabError(
            "set custom_reward_function.reward_kwargs.run (a run folder) and .reward (one of its "
            "rewards) for rewardlab's compute_score"
        )


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence,
    extra_infos: Sequence[dict] | None = None,
    *,
    run: str | None = None,
    reward: str | None = None,
    log: Sequence[str] = (),
    prompt_key: str = "prompt",
    device: str = "cpu",
    **kwargs,
) -> list[dict]:
    """One ``{"score": ...}`` dict per sample, as verl's batch reward manager expects."""
    _settings(run, reward)
    extra_infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    if len(extra_infos) != len(solution_strs):
        raise RewardLabError(f"{len(solution_strs)} solutions but {len(extra_infos)} extra_infos")
    prompts = [_prompt(e, prompt_key, i) for i, e in enumerate(extra_infos)]
    out = _scorer(str(run), (reward, *log), device).score(
        prompts, [s.strip() for s in solution_strs]
    )
    return [
        {"score": r, **{k: v[i] for k, v in out["extra_logs"].items()}}
        for i, r in enumerate(out["rewards"])
    ]


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth=None,
    extra_info: dict | None = None,
    **kwargs,
) -> dict:
    """The score of one sample, as verl's naive reward manager calls it."""
    _settings(kwargs.get("run"), kwargs.get("reward"))
    _prompt(extra_info, kwargs.get("prompt_key", "prompt"))  # named as verl names it here
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info],
                               **kwargs)[0]  # fmt: skip
