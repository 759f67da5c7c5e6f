"""A reward server that speaks OpenRLHF's remote reward-model protocol, serving a run's rewards.

``POST /get_reward`` takes ``{"query": [...], "prompts": [...], "labels": [...]}`` (each query is
the prompt followed by the response, as OpenRLHF's ``remote_rm_fn`` sends it) and answers
``{"rewards": [...], "scores": [...], "extra_logs": {...}}``: `rewards` and `scores` are the first
served reward's scores r_i; `extra_logs` holds, per sample, every other served reward (e.g.
``rule``, the gold, logged beside the proxy without steering training) and, for an ensemble,
each member's score ``<name>/member<j>`` and the members' disagreement
``<name>/disagreement`` = sqrt((1/k) sum_j (R_j - mean_j R_j)^2) (their population standard
deviation). ``GET /health`` says what is served (no file-system paths).

The response of query i is ``query[i][len(prompts[i]):]`` stripped of surrounding white space (the
lab's completions are stripped). Requests are scored in batches of `batch_size`; at most
`max_concurrency` are scored at once. A request has `timeout_s` from its arrival, waiting for a slot
included: past it, it is answered 503 (no slot came free) or 504 (scoring took too long), and the
scoring of a request answered 504 is stopped before its next batch, so its slot is free within a
batch's time. Callers are checked: only addresses in `allow` (loopback by default), only requests
whose ``Host`` is the bound address and that no other site's page sent (`rewardlab.common.http`),
and, when a token is set, only requests that carry ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fastapi import FastAPI, Request

from rewardlab.common.http import error as _error
from rewardlab.common.http import errors_as_json, guard, loads, read_body, strip_paths
from rewardlab.errors import RewardLabError
from rewardlab.integrations.runs import RunRewards, Scorer

LOOPBACK = ("127.0.0.0/8", "::1/128")


@dataclass
class ServerConfig:
    """How the reward server batches, bounds and checks its callers."""

    batch_size: int = 256  # samples scored per call of a reward
    max_concurrency: int = 2  # requests scored at once; the others wait for a slot
    timeout_s: float = 120.0  # longest a request may take from its arrival, queueing included
    max_body_bytes: int = 16 << 20  # larger bodies are refused (413)
    max_samples: int = 65536  # more queries in one request are refused (413)
    allow: Sequence[str] = LOOPBACK  # client networks allowed to call
    token: str | None = None  # when set, required as ``Authorization: Bearer <token>``
    bind: str = "127.0.0.1"  # the address the server listens on (requests must name it as Host)
    hosts: Sequence[str] = ()  # other names requests may carry as Host (e.g. a proxy's)
    reward_timeout_s: float = 60.0  # per batch, for rewards run in a child process
    stats: dict = field(default_factory=lambda: {"requests": 0, "samples": 0, "errors": 0})


def parse_request(body: bytes, max_samples: int) -> tuple[list[str], list[str]]:
    """(prompts, responses) of a ``/get_reward`` body.

    Raises:
        ValueError: the body's problem, in one sentence (answered 400).
    """
    data = loads(body)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object with 'query' and 'prompts'")
    query, prompts = data.get("query"), data.get("prompts")
    for key, val in (("query", query), ("prompts", prompts)):
        if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
            raise ValueError(f"'{key}' must be a list of strings (prompt + response, and prompt)")
    if len(query) != len(prompts):
        raise ValueError(f"'query' has {len(query)} items and 'prompts' {len(prompts)}")
    labels = data.get("labels")
    if labels is not None and (not isinstance(labels, list) or len(labels) != len(query)):
        raise ValueError("'labels', when given, must be a list with one item per query")
    if len(query) > max_samples:
        raise OverflowError(f"{len(query)} queries in one request; at most {max_samples}")
    responses = []
    for i, (q, p) in enumerate(zip(query, prompts, strict=True)):
        if not q.startswith(p):
            raise ValueError(f"query {i} does not start with its prompt ({p[:80]!r})")
        responses.append(q[len(p) :].strip())
    return prompts, responses


def _allowed(host: str | None, nets) -> bool:
    try:
        addr = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return any(addr in n for n in nets)


def make_app(rr: RunRewards, names: Sequence[str], cfg: ServerConfig | None = None) -> FastAPI:
    """The ASGI app serving `names` (of run `rr`; the first is ``rewards``) under `cfg`."""
    cfg = cfg or ServerConfig()
    scorer = Scorer(rr, names, cfg.batch_size, cfg.reward_timeout_s)
    nets = [ipaddress.ip_network(a, strict=False) for a in cfg.allow]
    slots: asyncio.Semaphore | None = None  # made in the server's loop
    pool = ThreadPoolExecutor(max_workers=cfg.max_concurrency, thread_name_prefix="reward")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)
        scorer.close()

    app = FastAPI(title="rewardlab reward server", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.middleware("http")
    async def who_is_calling(request: Request, call_next):
        if not _allowed(request.client.host if request.client else None, nets):
            return _error(
                403, f"address {request.client.host if request.client else '?'} may not call"
            )
        if cfg.token is not None:
            got = request.headers.get("authorization", "")
            if not hmac.compare_digest(got.encode(), f"Bearer {cfg.token}".encode()):
                return _error(401, "a valid 'Authorization: Bearer <token>' header is required")
        return await call_next(request)

    guard(app, cfg.bind, cfg.hosts)  # outermost: Host and Origin first

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "run": rr.run_dir.name, "rewards": scorer.names, **cfg.stats}

    @app.post("/get_reward")
    async def get_reward(request: Request):
        nonlocal slots
        deadline = time.monotonic() + cfg.timeout_s
        try:
            body = await read_body(request, cfg.max_body_bytes, cfg.timeout_s)
            prompts, responses = parse_request(body, cfg.max_samples)
        except OverflowError as exc:
            return _error(413, str(exc))
        except TimeoutError as exc:
            return _error(408, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        slots = slots or asyncio.Semaphore(cfg.max_concurrency)
        try:
            await asyncio.wait_for(slots.acquire(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return _error(
                503, f"all {cfg.max_concurrency} scoring slots stayed busy for {cfg.timeout_s:g} s"
            )
        loop, cancel = asyncio.get_running_loop(), threading.Event()
        fut = pool.submit(scorer.score, prompts, responses, cancel)
        # the slot is held while the work runs, and freed from the loop's thread when it ends
        fut.add_done_callback(lambda _: loop.call_soon_threadsafe(slots.release))
        try:
            out = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(fut)), max(0.0, deadline - time.monotonic())
            )
        except TimeoutError:
            cancel.set()  # stops before its next batch
            cfg.stats["errors"] += 1
            return _error(
                504, f"scoring {len(prompts)} samples took longer than {cfg.timeout_s:g} s"
            )
        except RewardLabError as exc:  # Cancelled included
            cfg.stats["errors"] += 1
            return _error(500, strip_paths(str(exc)))
        cfg.stats["requests"] += 1
        cfg.stats["samples"] += len(prompts)
        return out

    errors_as_json(app, "no endpoint", "; use POST /get_reward")
    return app


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Run `app` under uvicorn until interrupted (header timeouts, a connection limit)."""
    from rewardlab.common.http import serve as serve_bounded

    serve_bounded(app, host, port)
