"""The ASGI app: the routes of every route module, behind the server's middleware.

The middleware (outermost first, pure ASGI so streamed bodies are counted as they come):

- one JSON log line per request on the ``regard.server`` logger: method, the route's
  template (``/u/{token}``, never the raw path, so tokens and addresses stay out), status
  and milliseconds; nothing personal, no query string, no client address;
- bodies over :data:`MAX_BODY` bytes → 413, by ``Content-Length`` before the app runs, and
  for a streamed (chunked) body by reading and counting it before the app runs (it is
  then replayed to the app);
- any exception → a plain 500 ``{"error": "internal error"}``, never a traceback (the log
  line names the exception's type and, as ``at``, the innermost line of regard's own code
  it came from: never its message, which may quote personal data).

Unknown paths → 404 ``{"error": "not found"}``, a known path with another method → 405.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from regard.config import Config
from regard.server import health, hooks, ingest, unsubscribe
from regard.server.state import ServerState

MAX_BODY = 1024 * 1024  # 1 MiB
ROUTE_MODULES = (health, unsubscribe, hooks, ingest)  # each has routes() -> list[BaseRoute]

access_log = logging.getLogger("regard.server")


def build_app(config: Config, *, state: ServerState | None = None) -> Starlette:
    """The app for ``config``: every route module's routes, the middleware, a lifespan
    that opens the store on its thread at start and closes it at shutdown."""
    shared = state or ServerState(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await shared.start()
        try:
            yield
        finally:
            await shared.close()

    routes: list[BaseRoute] = [r for module in ROUTE_MODULES for r in module.routes()]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )
    app.state.regard = shared
    app.add_middleware(Guard, max_body=MAX_BODY)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    words = {404: "not found", 405: "method not allowed"}
    return JSONResponse(
        {"error": words.get(exc.status_code, exc.detail)},
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


class Guard:
    """The server's outermost middleware: the access log line, the body limit, and the
    plain 500 for whatever an endpoint raised."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 0
        started = False

        async def send_logged(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started = True
            await send(message)

        declared = _declared_length(scope)
        replay: list[Message] = []
        if declared is None and _has_body(scope):
            # a streamed body (no Content-Length) is read here, counted, and replayed to the
            # app: the limit holds for every route, whether or not it reads the body
            received = 0
            while True:
                message = await receive()
                replay.append(message)
                if message["type"] != "http.request":
                    break
                received += len(message.get("body", b""))
                if received > self.max_body:
                    await _plain(send_logged, 413, "request body larger than 1 MiB")
                    _log(scope, status, began, None)
                    return
                if not message.get("more_body", False):
                    break

        async def receive_counted() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        error: str | None = None
        at: str | None = None
        try:
            if declared is not None and declared > self.max_body:
                await _plain(send_logged, 413, "request body larger than 1 MiB")
            else:
                await self.app(scope, receive_counted, send_logged)
        except Exception as exc:  # never a traceback on the wire; the type in the log
            error = type(exc).__name__
            at = _origin(exc)
            if not started:
                await _plain(send_logged, 500, "internal error")
        finally:
            _log(scope, status, began, error, at)


def _declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when it has none (a streamed body)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _has_body(scope: Scope) -> bool:
    """The request streams a body (``Transfer-Encoding: chunked``)."""
    return any(
        name == b"transfer-encoding" and b"chunked" in value.lower()
        for name, value in scope.get("headers", ())
    )


async def _plain(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def route_template(scope: Scope) -> str:
    """The template of the route that served ``scope`` (``/u/{token}``), or ``-`` when no
    route matched: the raw path is never logged, it may hold a token or an address."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "-"


def _origin(exc: BaseException) -> str | None:
    """``regard/store/inbound.py:33``: the innermost frame of the traceback in regard's own
    code (the store's database adapters left out: the statement's caller says more), or
    None when no frame is ours."""
    found = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        path = Path(frame.f_code.co_filename)
        if _PACKAGE in path.parents and _ADAPTERS not in path.parents:
            found = f"{path.relative_to(_PACKAGE.parent).as_posix()}:{line}"
    return found


_PACKAGE = Path(__file__).resolve().parent.parent
_ADAPTERS = _PACKAGE / "store" / "backends"


def _log(scope: Scope, status: int, began: float, error: str | None, at: str | None = None) -> None:
    fields: dict[str, Any] = {
        "event": "request",
        "method": scope.get("method", ""),
        "route": route_template(scope),
        "status": status,
        "ms": round((time.perf_counter() - began) * 1000, 1),
    }
    if error:
        fields["error"] = error
    if at:
        fields["at"] = at
    level = logging.ERROR if error or status >= 500 else logging.INFO
    access_log.log(level, json.dumps(fields), extra=fields)
