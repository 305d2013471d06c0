"""``POST /ingest/<source name>``: the shop's data coming in (:mod:`regard.sources.ingest`).

The raw body is verified before it is parsed, the batch committed on the store thread, and
only then is the request answered 200 ``{"ok": true, "contacts": N, "events": N}``:

- unknown source → 404; signature or token wrong → 401 (nothing read, nothing stored);
- a body that is not what the source sends → 400 ``{"error": …}``;
- records that fail validation → 422 ``{"errors": ["events[2].occurred_at: …"]}`` for
  ``api`` (a shop's webhook gets 400: its required data is wrong); nothing stored;
- an unknown topic → 200, stored nothing, logged.

**Group commit.** A shop sends its webhooks in bursts, and a daemon's tick holds the
store's write lock for a moment: requests that arrive while the store thread is busy are
committed together, in one transaction, when it is free (each its own savepoint, so a
rejected one is rolled back alone). Every request is still answered only after the
transaction holding its writes has committed; the burst costs one ``COMMIT``, not fifty.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from regard.server.state import ServerState, state_of
from regard.sources.ingest import (
    Batch,
    MalformedBody,
    Received,
    RejectedRecords,
    Unauthorized,
    UnknownSource,
    commit_many,
    prepare,
)
from regard.times import Instant, now_instant

GROUP_MAX = 200  # requests committed in one transaction at most


class GroupCommit:
    """The requests waiting for the store thread, committed together when it is free."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.waiting: list[tuple[str, Batch, Instant, asyncio.Future[Received | RejectedRecords]]]
        self.waiting = []
        self.draining = False
        self.task: asyncio.Task[None] | None = None  # kept: a task nobody holds may vanish

    async def submit(self, name: str, batch: Batch, now: Instant) -> Received | RejectedRecords:
        """Commit ``batch``; returns when it is committed (or rejected)."""
        future: asyncio.Future[Received | RejectedRecords] = (
            asyncio.get_running_loop().create_future()
        )
        self.waiting.append((name, batch, now, future))
        if not self.draining:
            self.draining = True
            self.task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                taken, self.waiting = self.waiting[:GROUP_MAX], self.waiting[GROUP_MAX:]
                work = [(name, batch, now) for name, batch, now, _ in taken]
                try:
                    results = await self.state.call(commit_many, self.state.config, work)
                except BaseException as exc:  # the transaction failed: nobody is answered 200
                    for *_, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (*_, future), result in zip(taken, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self.draining = False


def _group(request: Request) -> GroupCommit:
    app_state = request.app.state
    group = getattr(app_state, "ingest_group", None)
    if group is None:
        group = GroupCommit(state_of(request))
        app_state.ingest_group = group
    assert isinstance(group, GroupCommit)
    return group


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
    result = await _group(request).submit(name, batch, now)
    if isinstance(result, RejectedRecords):
        status = 422 if not batch.lenient else 400
        return JSONResponse({"errors": result.problems}, status_code=status)
    return JSONResponse(result.answer())


def routes() -> list[BaseRoute]:
    return [Route("/ingest/{name}", ingest, methods=["POST"])]
