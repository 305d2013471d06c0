"""What every request handler shares: the config, and the store on its own thread.

SQLite connections are bound to the work of one thread at a time, and a write waits for
the store's lock (``busy_timeout``) while a daemon's tick holds it: done on the event loop,
that wait would stall every other request. So the server opens its store on ONE dedicated
worker thread and every store call a handler makes is sent there with :meth:`ServerState.call`;
the loop keeps answering (``/healthz`` included) while a write waits, and the connection's
transactions stay serialised.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from starlette.requests import HTTPConnection

from regard.config import Config, ServerSettings
from regard.store import Store, open_store

if TYPE_CHECKING:
    from collections.abc import Callable

P = ParamSpec("P")
T = TypeVar("T")


class ServerState:
    """The server's config, its ``[server]`` settings, the link secret and the store.

    :meth:`start` opens the store on the store thread and reads (or makes) the secret;
    :meth:`close` closes it. Between them, :meth:`call` runs store work on that thread.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.server: ServerSettings = config.server or ServerSettings()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="regard-store")
        self._store: Store | None = None
        self._secret: str | None = None

    @property
    def base_url(self) -> str:
        """What links in messages start with (``public_url``, else ``http://<listen>``)."""
        return self.server.base_url

    @property
    def secret(self) -> str:
        """The key that signs links: ``[server] secret``, else the one kept in the store."""
        if self._secret is None:
            raise RuntimeError("the server state is not started")
        return self._secret

    @property
    def store(self) -> Store:
        """The store; only for code already running on the store thread (inside :meth:`call`)."""
        if self._store is None:
            raise RuntimeError("the server state is not started")
        return self._store

    async def start(self) -> None:
        """Open the store on the store thread and settle the secret."""
        loop = asyncio.get_running_loop()
        self._store = await loop.run_in_executor(
            self._executor, open_store, self.config.store_target
        )
        configured = self.server.secret
        if configured is not None:
            self._secret = configured.get_secret_value()
        else:
            self._secret = await self.call(lambda store: store.settings.server_secret())

    async def call(
        self, fn: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(store, *args, **kwargs)`` on the store thread; its result, or its exception.
        Every write it makes is committed when it returns (store.write() commits on exit),
        so a handler answers 2xx only after its change is durable."""
        store = self.store
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(fn, store, *args, **kwargs)
        )

    async def close(self) -> None:
        """Close the store on its thread and stop the thread."""
        store, self._store = self._store, None
        if store is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, store.close)
        self._executor.shutdown(wait=True)


def state_of(request: HTTPConnection) -> ServerState:
    """The :class:`ServerState` of the app serving ``request``."""
    state: Any = request.app.state.regard
    assert isinstance(state, ServerState)
    return state
