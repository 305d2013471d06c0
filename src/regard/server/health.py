"""``GET /healthz``: 200 ``{"ok": true}`` while the server answers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


def routes() -> list[BaseRoute]:
    return [Route("/healthz", healthz, methods=["GET"])]
