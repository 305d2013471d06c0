"""``regard serve``: the HTTP server through which customers and providers answer back.

Starlette on uvicorn. Starlette is a small ASGI toolkit (routing, requests, responses,
lifespan) without an ORM or templates of its own; uvicorn is the maintained reference ASGI
server, which drains connections and shuts down gracefully on SIGTERM/SIGINT. Both speak
the ASGI standard, so the app can be put behind any other ASGI server too.

- :mod:`regard.server.state`  the config and the store, opened on one dedicated thread
- :mod:`regard.server.app`    the app: routes of every module, the middleware
- :mod:`regard.server.run`    uvicorn, in the foreground or beside the daemon's scheduler

Each route module exposes ``routes() -> list[BaseRoute]``; :mod:`regard.server.app`
collects them.
"""

from __future__ import annotations

from regard.server.app import build_app
from regard.server.state import ServerState, state_of

__all__ = ["ServerState", "build_app", "state_of"]
