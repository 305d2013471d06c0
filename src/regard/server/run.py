"""Run the server with uvicorn: in the foreground (``regard serve``) or on a thread beside
the daemon's scheduler (``regard daemon`` with ``[server]``).

In the foreground uvicorn handles SIGTERM and SIGINT itself: it stops accepting, lets the
requests in flight finish (up to :data:`GRACE_SECONDS`), runs the app's shutdown (the store
is closed) and returns. On a thread it cannot take signals; whoever started it calls
:meth:`ServerThread.stop`, which does the same.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from types import FrameType, TracebackType

import uvicorn

from regard.config import Config, ServerSettings
from regard.errors import ConfigError
from regard.server.app import build_app

GRACE_SECONDS = 10  # requests in flight get this long to finish on shutdown

logger = logging.getLogger("regard.server")


def uvicorn_server(config: Config) -> uvicorn.Server:
    """A uvicorn server for ``config``'s app on ``[server] listen``: no access log of its
    own (the app logs one JSON line per request), no ``Server`` header, regard's logging."""
    settings = config.server or ServerSettings()
    uv = uvicorn.Config(
        build_app(config),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,  # keep the process's logging: regard's handlers, no uvicorn dictConfig
        access_log=False,
        server_header=False,
        proxy_headers=False,  # links and signatures use public_url, never forwarded headers
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    return uvicorn.Server(uv)


def serve(config: Config) -> int:
    """Serve in the foreground until SIGTERM/SIGINT; 0 after a clean shutdown. Raises
    ConfigError when the server cannot start (the address is taken)."""
    server = uvicorn_server(config)
    settings = config.server or ServerSettings()
    # uvicorn handles the signals while it runs and raises them again once it has shut
    # down; these handlers take that second delivery, so a clean stop exits 0
    previous = {sig: signal.signal(sig, _stopped) for sig in STOP_SIGNALS}
    try:
        server.run()
    except SystemExit:
        raise ConfigError(_cannot_start(settings)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise ConfigError(_cannot_start(settings))
    return 0


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stopped(signum: int, frame: FrameType | None) -> None:
    """The signal uvicorn raises again after its graceful shutdown: nothing left to do."""


def _cannot_start(settings: ServerSettings) -> str:
    return (
        f"[server] listen = {settings.listen!r}: the server could not start there "
        "(is another process using the address? see the line above)"
    )


class ServerThread:
    """The server on its own thread with its own event loop, for the daemon.

    ``with ServerThread(config):`` starts it and waits until it listens (ConfigError when
    it cannot); leaving the block stops it gracefully and waits for it."""

    def __init__(self, config: Config) -> None:
        self.server = uvicorn_server(config)
        self.settings = config.server or ServerSettings()
        self._thread = threading.Thread(target=self._run, name="regard-server", daemon=True)
        self._failed: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve())
        except BaseException as exc:  # SystemExit from uvicorn when it cannot bind
            self._failed = exc

    def start(self) -> None:
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise ConfigError(_cannot_start(self.settings))
            self._thread.join(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(GRACE_SECONDS + 5)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class AccessLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """For ``regard serve`` on its own: request lines are printed as the JSON they are;
    other records (start, stop, errors) as ``LEVEL message``."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "event", None) == "request":
            return record.getMessage()
        return f"{record.levelname} {record.getMessage()}"


def setup_serve_logging(level: int = logging.INFO) -> logging.Handler:
    """Send the server's and uvicorn's records to stderr; returns the handler."""
    handler = AccessLineHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
