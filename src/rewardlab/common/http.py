"""What both HTTP servers do against hostile callers: Host and Origin checks (DNS rebinding and
cross-site requests), bounded JSON bodies read within a deadline, JSON errors for everything, no
file-system paths in answers, and uvicorn run with header timeouts and a connection limit.

A web page the user visits can make the browser send requests to ``127.0.0.1``; it cannot choose
the ``Origin`` header the browser adds, and a page that rebinds its own name to ``127.0.0.1``
still sends its name as ``Host``. So a request is refused (403) when its ``Host`` names anything
but the bound address, a loopback name when bound to loopback, or a name the user allowed, and
when it carries an ``Origin`` (or ``Sec-Fetch-Site: cross-site``) from any other site.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import h11
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
HEADER_TIMEOUT_S = 10.0  # a client has this long to send a request's headers
BODY_TIMEOUT_S = 30.0  # ... and this long to send its body
MAX_CONNECTIONS = 64  # open connections; past it, requests are answered 503
_PATH = re.compile(r"(?<![\w.])(?:/[\w.+@%=~-]+)+/?")


def error(status: int, message: str) -> JSONResponse:
    """``{"error": message}`` with `status`."""
    return JSONResponse({"error": message}, status_code=status)


def errors_as_json(app: FastAPI, not_found: str = "no page or endpoint", hint: str = "") -> None:
    """An unknown path (404: "`not_found` METHOD PATH`hint`") or method (405) answers in the
    `error` form, as every other refusal of the app does."""

    @app.exception_handler(404)
    async def _not_found(request: Request, exc):
        return error(404, f"{not_found} {request.method} {request.url.path}{hint}")

    @app.exception_handler(405)
    async def _wrong_method(request: Request, exc):
        return error(405, f"{request.method} is not allowed on {request.url.path}")


def strip_paths(text: str) -> str:
    """`text` with every absolute path shortened to its last component (``/a/b/run`` -> ``run``)."""
    return _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names a request may carry: the bound address, the loopback names when bound to
    loopback (or to every address), and `extra`."""
    names = {bound.strip("[]").lower(), *(e.lower() for e in extra)}
    try:
        addr = ipaddress.ip_address(bound.strip("[]"))
        if addr.is_loopback or addr.is_unspecified:
            names |= set(LOOPBACK_NAMES)
    except ValueError:
        pass
    return frozenset(names)


def _hostname(value: str) -> str:
    """The host part of a ``Host`` header or an origin, lower-cased, without port or brackets."""
    return (urlsplit(f"//{value}").hostname or "").lower()


def foreign(request: Request, hosts: frozenset[str], any_ip: bool = False) -> str | None:
    """Why the request comes from another site ('' never), or None when it may proceed.
    `any_ip`: bound to every address, a ``Host`` that is an IP literal is accepted too (a
    rebinding page can only send a name)."""
    host = _hostname(request.headers.get("host", ""))
    if host not in hosts and not (any_ip and _is_ip(host)):
        return f"Host {request.headers.get('host', '')!r} is not this server's address"
    origin = request.headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or _hostname(parts.netloc) not in hosts | {host}:
            return f"requests from the web page at {origin!r} are not allowed"
    if request.headers.get("sec-fetch-site") == "cross-site":
        return "cross-site requests are not allowed"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def guard(app: FastAPI, bound: str, extra_hosts: Iterable[str] = ()) -> None:
    """Refuse foreign Host and Origin (403) before any route runs, and answer every unhandled
    error with a JSON 500 that says nothing of the server's files."""
    hosts = allowed_hosts(bound, extra_hosts)
    any_ip = _is_ip(bound.strip("[]")) and ipaddress.ip_address(bound.strip("[]")).is_unspecified

    @app.middleware("http")
    async def same_site(request: Request, call_next):
        why = foreign(request, hosts, any_ip)
        if why is not None:
            return error(403, why)
        try:
            return await call_next(request)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer JSON, not a traceback
            return error(500, f"internal error ({type(exc).__name__})")


async def read_body(request: Request, max_bytes: int, timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    """The request's body, at most `max_bytes`, received within `timeout_s` seconds.

    Raises:
        OverflowError: the body is larger (answer 413).
        TimeoutError: the client sent it too slowly (answer 408).
    """
    size = request.headers.get("content-length")
    if size is not None and (not size.isdigit() or int(size) > max_bytes):
        raise OverflowError(f"the body is larger than {max_bytes} bytes")

    async def collect() -> bytes:
        parts, n = [], 0
        async for chunk in request.stream():
            parts.append(chunk)
            n += len(chunk)
            if n > max_bytes:
                raise OverflowError(f"the body is larger than {max_bytes} bytes")
        return b"".join(parts)

    try:
        return await asyncio.wait_for(collect(), timeout_s)
    except TimeoutError:
        raise TimeoutError(f"the body was not received within {timeout_s:g} s") from None


def loads(body: bytes):
    """The JSON value of `body`.

    Raises:
        ValueError: not JSON, or nested too deeply to parse (answer 400).
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the body is not JSON ({exc})") from None


class BoundedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's headers: a client that
    holds a connection open without finishing its headers within `HEADER_TIMEOUT_S` is closed
    (uvicorn has no such timeout of its own, so slow clients could hold every connection)."""

    header_timeout_s = HEADER_TIMEOUT_S

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._headers_due = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_headers_due", None) is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _too_slow(self) -> None:
        self._headers_due = None
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request's headers are complete
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._disarm()
            self._arm()  # the next request's headers are due in time too

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run `app` under uvicorn until interrupted, bounded against slow clients."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", http=BoundedH11,
                limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=5,
                timeout_graceful_shutdown=5)  # fmt: skip
