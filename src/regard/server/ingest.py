"""``POST /ingest/<source name>``: the shop's data coming in (:mod:`regard.sources.ingest`).

The raw body is verified before it is parsed, the batch committed on the store thread, and
only then is the request answered 200 ``{"ok": true, "contacts": N, "events": N}``:

- unknown source → 404; signature or token wrong → 401 (nothing read, nothing stored);
- a body that is not what the source sends → 400 ``{"error": …}``;
- records that fail validation → 422 ``{"errors": ["events[2].occurred_at: …"]}`` for
  ``api`` (a shop's webhook gets 400: its required data is wrong); nothing stored;
- an unknown topic → 200, stored nothing, logged.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from regard.server.state import state_of
from regard.sources.ingest import (
    MalformedBody,
    RejectedRecords,
    Unauthorized,
    UnknownSource,
    commit,
    prepare,
)
from regard.times import now_instant


async def ingest(request: Request) -> Response:
    state = state_of(request)
    name = request.path_params["name"]
    body = await request.body()
    now = now_instant()
    try:
        batch = prepare(state.config, name, request.headers, body, now)
    except UnknownSource:
        return JSONResponse({"error": "no such source"}, status_code=404)
    except Unauthorized as exc:
        bearer = state.config.sources[name].type == "api"
        headers = {"WWW-Authenticate": "Bearer"} if bearer else None
        return JSONResponse({"error": str(exc)}, status_code=401, headers=headers)
    except MalformedBody as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    try:
        received = await state.call(commit, state.config, name, batch, now)
    except RejectedRecords as exc:
        status = 422 if not batch.lenient else 400
        return JSONResponse({"errors": exc.problems}, status_code=status)
    return JSONResponse(received.answer())


def routes() -> list[BaseRoute]:
    return [Route("/ingest/{name}", ingest, methods=["POST"])]
