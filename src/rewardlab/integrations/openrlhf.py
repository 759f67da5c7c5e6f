"""A reward server that speaks OpenRLHF's remote reward-model protocol, serving a run's rewards.

``POST /get_reward`` takes ``{"query": [...], "prompts": [...], "labels": [...]}`` (each query is
the prompt followed by the response, as OpenRLHF's ``remote_rm_fn`` sends it) and answers
``{"rewards": [...], "scores": [...], "extra_logs": {...}}``: `rewards` and `scores` are the first
served reward's scores r_i; `extra_logs` holds, per sample, every other served reward (e.g.
``rule``, the gold, logged beside the proxy without steering training) and, for an ensemble,
each member's score ``<name>/member<j>`` and the members' disagreement
``<name>/disagreement`` = sqrt((1/k) sum_j (R_j - mean_j R_j)^2) (their population standard
deviation). ``GET /health`` says what is served.

The response of query i is ``query[i][len(prompts[i]):]`` stripped of surrounding white space (the
lab's completions are stripped). Requests are scored in batches of `batch_size`; at most
`max_concurrency` are scored at once, and one that waits for a slot or for its scores longer than
`timeout_s` is answered 503 or 504 with a JSON error, never left hanging. Callers are checked:
only addresses in `allow` (loopback by default) and, when a token is set, only requests that carry
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rewardlab.errors import RewardLabError
from rewardlab.integrations.runs import RunRewards, Scorer

LOOPBACK = ("127.0.0.0/8", "::1/128")


@dataclass
class ServerConfig:
    """How the reward server batches, bounds and checks its callers."""

    batch_size: int = 256  # samples scored per call of a reward
    max_concurrency: int = 2  # requests scored at once; the others wait for a slot
    timeout_s: float = 120.0  # longest wait for a slot, and for a request's scores
    max_body_bytes: int = 16 << 20  # larger bodies are refused (413)
    max_samples: int = 65536  # more queries in one request are refused (413)
    allow: Sequence[str] = LOOPBACK  # client networks allowed to call
    token: str | None = None  # when set, required as ``Authorization: Bearer <token>``
    reward_timeout_s: float = 60.0  # per batch, for rewards run in a child process
    stats: dict = field(default_factory=lambda: {"requests": 0, "samples": 0, "errors": 0})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def parse_request(body: bytes, max_samples: int) -> tuple[list[str], list[str]]:
    """(prompts, responses) of a ``/get_reward`` body.

    Raises:
        ValueError: the body's problem, in one sentence (answered 400).
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the body is not JSON ({exc})") from None
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
    slots = threading.BoundedSemaphore(cfg.max_concurrency)
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

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "run": str(rr.run_dir), "rewards": scorer.names, **cfg.stats}

    @app.post("/get_reward")
    async def get_reward(request: Request):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > cfg.max_body_bytes):
            return _error(413, f"the body is larger than {cfg.max_body_bytes} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > cfg.max_body_bytes:
                return _error(413, f"the body is larger than {cfg.max_body_bytes} bytes")
        try:
            prompts, responses = parse_request(body, cfg.max_samples)
        except OverflowError as exc:
            return _error(413, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        loop = asyncio.get_running_loop()
        got = await loop.run_in_executor(None, slots.acquire, True, cfg.timeout_s)
        if not got:
            return _error(
                503, f"all {cfg.max_concurrency} scoring slots busy for {cfg.timeout_s:g} s"
            )
        fut = pool.submit(scorer.score, prompts, responses)
        fut.add_done_callback(lambda _: slots.release())  # a slot is held while its work runs
        try:
            out = await asyncio.wait_for(asyncio.wrap_future(fut), cfg.timeout_s)
        except TimeoutError:
            cfg.stats["errors"] += 1
            return _error(
                504, f"scoring {len(prompts)} samples took longer than {cfg.timeout_s:g} s"
            )
        except RewardLabError as exc:
            cfg.stats["errors"] += 1
            return _error(500, str(exc))
        cfg.stats["requests"] += 1
        cfg.stats["samples"] += len(prompts)
        return out

    @app.exception_handler(404)
    async def not_found(request: Request, exc):
        return _error(404, f"no endpoint {request.method} {request.url.path}; use POST /get_reward")

    @app.exception_handler(405)
    async def wrong_method(request: Request, exc):
        return _error(405, f"{request.method} is not allowed on {request.url.path}")

    return app


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Run `app` under uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
