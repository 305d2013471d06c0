"""``regard daemon``: tick every ``scheduler.interval`` until SIGTERM or SIGINT.

The config (store, providers, secrets, interval) is read once at start: change it, then
restart the service. Campaigns and templates are read again at every tick, so editing a
campaign needs no restart, and a campaign file broken meanwhile is skipped and logged
while the others keep running.

One daemon per SQLite store (an OS lock the kernel releases when the process dies); on a
PostgreSQL store any number, on one machine or many: each tick's evaluation takes the
store's ``tick`` advisory lock (one evaluates at a time) and their dispatch claims share
the work (a claimed row is skipped by the others). Each daemon registers in ``store.daemons`` and
renews its heartbeat there, for ``regard status``. SIGTERM or
SIGINT stops new claims; requests in flight finish, the tick records its result, and the
process exits 0. With a ``[server]`` table the HTTP server (:mod:`regard.server`) runs
beside the scheduler on its own thread and stops with it: it keeps answering while the
tick in flight finishes, then drains its requests. A second signal ends it at once (deliveries left in ``sending`` are
taken up again after their lease, with the same idempotency key).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from regard.daemon.lock import DaemonAlreadyRunning, DaemonLock
from regard.daemon.logs import LOG_FORMATS, LogFormat, config_secrets, logger, setup_logging
from regard.daemon.loop import Daemon, TickFunction, run_once_tick
from regard.render import isolation
from regard.server.run import ServerThread
from regard.times import format_duration
from regard.workspace import load_config

__all__ = [
    "LOG_FORMATS",
    "Daemon",
    "DaemonAlreadyRunning",
    "DaemonLock",
    "LogFormat",
    "TickFunction",
    "run_daemon",
]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_daemon(
    config_path: str | Path | None,
    *,
    log_format: LogFormat = "text",
    log_level: int = logging.INFO,
    tick: TickFunction = run_once_tick,
) -> int:
    """Run the daemon in this process until SIGTERM/SIGINT; return the exit status (0).

    Raises ConfigError for a bad config and DaemonAlreadyRunning when another daemon holds
    the store (both exit status 1 through the CLI). Must be called from the main thread.
    """
    config = load_config(config_path)
    handler = setup_logging(log_format, config_secrets(config), level=log_level)
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        # SQLite: one daemon per store file; PostgreSQL: any number, one tick at a time
        lock = contextlib.nullcontext() if config.store_is_url else DaemonLock(config.store_path)
        with lock:

            def on_signal(signum: int, frame: FrameType | None) -> None:
                stop.set()
                for sig in STOP_SIGNALS:  # a second signal ends the process at once
                    signal.signal(sig, signal.SIG_DFL)
                logger.info(
                    "%s received: no new claims; finishing the requests in flight",
                    signal.Signals(signum).name,
                    extra={"event": "stopping", "signal": signal.Signals(signum).name},
                )

            for sig in STOP_SIGNALS:
                signal.signal(sig, on_signal)
            isolation.start()  # the render worker, forked before any thread starts
            daemon = Daemon(config, tick, stop)
            providers = ", ".join(f"{n} ({t.type})" for n, t in config.providers.items())
            logger.info(
                "regard daemon started: pid %d, store %s, every %s, campaigns %s, providers %s",
                os.getpid(),
                config.store_label,
                format_duration(config.scheduler.interval),
                config.campaigns_dir,
                providers or "none",
                extra={
                    "event": "started",
                    "pid": os.getpid(),
                    "store": config.store_label,
                    "interval": daemon.interval,
                },
            )
            if config.server is not None:
                # the HTTP server beside the scheduler; leaving the block drains it
                with ServerThread(config):
                    logger.info(
                        "regard server listening on %s (links start %s)",
                        config.server.listen,
                        config.server.base_url,
                        extra={"event": "server_started", "listen": config.server.listen},
                    )
                    daemon.serve()
            else:
                daemon.serve()
            logger.info(
                "regard daemon stopped cleanly after %d ticks (%d failed)",
                daemon.ticks,
                daemon.failed_ticks,
                extra={"event": "stopped", "ticks": daemon.ticks, "failed": daemon.failed_ticks},
            )
        return 0
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)
        logging.getLogger().removeHandler(handler)
