"""Ratings by people behind the scenes (kind `human`): in a trainer's reward call, each sample is
sent for a 1-7 rating with probability p and the call waits, the learner paused, until every
rating sent has arrived or `timeout_s` has passed; the other samples get a fallback reward.

A sample i of the call at trainer step k is sent when u < p, u drawn from the stream (seed,
"human", k, i); its request is keyed by SHA-256 of (k, i, prompt, completion), so a learner that
restarts and asks again at the same step finds its earlier requests (and any ratings they got) in
the label store instead of asking twice (the key also holds the seed and p). A rating s becomes the reward r = (s − 4) / 3, in
[−1, 1]; a request that times out scores None (no advantage under TRL; counted). Nothing in the
policy's inputs changes: the prompts and completions go to the store, not back to the policy.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from rewardlab.errors import RewardLabError
from rewardlab.rewards.base import Reward, RewardBase
from rewardlab.seeding import rng
from rewardlab.specs import Strict, input_field

if TYPE_CHECKING:  # a type only: the context is built by the study
    from rewardlab.context import StudyContext


class SimulatedRater(Strict):
    """A simulated rater (`label.simulate`) served in this process, for unattended studies."""

    rating_noise: float = Field(0.0, ge=0, description="sd of the noise added to 1 + 6 g")
    delay_s: float = Field(0.0, ge=0, description="seconds before each rating")


STAGES = ()  # the cache stages it builds (`rewardlab run --rebuild` names them)


class Config(RewardBase):
    """Ratings from people (through the labelling app's store) for a fraction of the samples."""

    kind: Literal["human"] = Field("human", description="reward source: people's 1-7 ratings")
    db: str = input_field(..., "database", "the label database the labelling app serves")
    labeller: str = Field(..., description="whose queue the rating requests go to")
    p: float = Field(0.1, ge=0, le=1, description="probability a sample is sent for a rating")
    timeout_s: float = Field(600.0, gt=0, description="longest a reward call waits for ratings")
    poll_s: float = Field(0.2, gt=0, description="seconds between looks at the store")
    fallback: str | None = Field(
        None, description="a reward listed before this one that scores the samples not sent (and "
        "stands in for this one in measurements); null: they get no reward",
    )  # fmt: skip
    simulated: SimulatedRater | None = Field(
        None, description="rate with a simulated rater that this process runs against the "
        "labelling app (served here on a free loopback port), for unattended studies; null: "
        "people rate through `rewardlab label serve`",
    )  # fmt: skip


_SIMULATED: dict[tuple, str] = {}  # (db, labeller, rater) -> the labeller this process rates as


def simulated_labeller(cfg: Config, task) -> str:
    """Start (once per process) the labelling app on a free loopback port and a simulated rater
    following `cfg.labeller`'s queue through its HTTP API; the labeller it rates as (named per
    process, so the workers of a sweep never rate each other's requests)."""
    import socket
    import threading

    import uvicorn

    from rewardlab.label.app import make_app
    from rewardlab.label.simulate import simulate
    from rewardlab.label.store import Store

    key = (str(Path(cfg.db).resolve()), cfg.labeller, cfg.simulated.model_dump_json())
    if key in _SIMULATED:
        return _SIMULATED[key]
    name = f"{cfg.labeller}-sim-{os.getpid()}-{len(_SIMULATED)}"
    store = Store(cfg.db)
    token = store.add_labeller(name)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(make_app(store), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True, name="label-app").start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RewardLabError("the simulated rater's labelling app did not start within 30 s")
        time.sleep(0.05)
    sim = cfg.simulated
    threading.Thread(target=simulate, daemon=True, name="simulated-rater", kwargs=dict(
        url=url, token=token, task=task, kind="rating", rating_noise=sim.rating_noise,
        delay_s=sim.delay_s, follow=lambda: True, poll_s=0.02)).start()  # fmt: skip
    _SIMULATED[key] = name
    return name


class HumanReward:
    """The reward function: TRL's signature, pausing the caller until the ratings arrive."""

    may_skip = True  # a timed-out or unsent sample without fallback scores None, on purpose

    def __init__(self, cfg: Config, seed: int, fallback=None, labeller: str | None = None):
        from rewardlab.label.store import Store

        self.cfg, self.seed, self.fallback = cfg, seed, fallback
        self.labeller = labeller or cfg.labeller
        self.store = Store(cfg.db)
        self.store.labeller_id(self.labeller)  # an unknown labeller is an error now, not mid-run
        self.calls = 0
        self.log: list[dict] = []
        self.__name__ = f"human:{cfg.name}"

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kw) -> list:
        state = kw.get("trainer_state")
        step = int(state.global_step) if state is not None else self.calls
        self.calls += 1
        u = rng(self.seed, "human", step).random(len(prompts))
        sent = np.flatnonzero(u < self.cfg.p)
        out: list = [None] * len(prompts)
        if self.fallback is not None and len(sent) < len(prompts):
            rest = [i for i in range(len(prompts)) if i not in set(sent)]
            part = {
                k: [v[i] for i in rest]
                for k, v in kw.items()
                if isinstance(v, list) and len(v) == len(prompts)
            }
            for i, s in zip(
                rest,
                self.fallback([prompts[i] for i in rest], [completions[i] for i in rest], **part),
                strict=True,
            ):
                out[i] = s
        t0 = time.monotonic()
        answered = 0
        if len(sent):
            rows = [dict(prompt=prompts[i], a=completions[i],
                         key=hashlib.sha256(f"{self.cfg.name}|{self.seed}|{self.cfg.p}|{step}|{i}|{prompts[i]}|{completions[i]}".encode()).hexdigest())
                    for i in sent]  # fmt: skip
            ids = self.store.request_ratings(
                self.labeller, rows, source=f"{self.cfg.name} step {step}"
            )
            got: dict[int, int] = {}
            while True:
                got = self.store.scores(ids)
                if len(got) == len(ids) or time.monotonic() - t0 > self.cfg.timeout_s:
                    break
                time.sleep(self.cfg.poll_s)
            for i, item in zip(sent, ids, strict=True):
                out[i] = (got[item] - 4) / 3 if item in got else None
            answered = len(got)
        self.log.append(dict(step=step, step_after=int(state.global_step) if state is not None else step,
                             samples=len(prompts), sent=int(len(sent)), answered=answered,
                             timed_out=int(len(sent)) - answered, wait_s=time.monotonic() - t0))  # fmt: skip
        return out

    def report(self) -> list[dict]:
        """One entry per call: the step at its start and end (equal: no optimizer step happened
        while it waited), samples, sent, answered, timed out, seconds waited."""
        return self.log


def build(cfg: Config, ctx: StudyContext) -> list[Reward]:
    """The human reward over the store at `cfg.db`, its fallback one of the rewards before it."""
    fb = None
    if cfg.fallback is not None:
        if cfg.fallback not in ctx.rewards:
            raise RewardLabError(
                f"reward {cfg.name!r}: fallback {cfg.fallback!r} is not a reward listed before it "
                f"(those are {', '.join(ctx.rewards) or 'none'})"
            )
        fb = ctx.rewards[cfg.fallback]
    labeller = simulated_labeller(cfg, ctx.task) if cfg.simulated is not None else None
    fn = HumanReward(cfg, ctx.seed, fb.fn if fb else None, labeller)
    key = {k: v for k, v in cfg.model_dump(mode="json").items() if k != "name"}
    key["fallback_key"] = fb.cache_key() if fb else None  # a retrained fallback: a new reward
    return [Reward(cfg.name, "human", fn, key, meta={"fallback": cfg.fallback, "p": cfg.p},
                   pool=False, stand_in=fb)]  # fmt: skip
