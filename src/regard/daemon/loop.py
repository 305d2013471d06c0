"""The scheduler loop: one tick every ``scheduler.interval``, never two at once.

APScheduler 3.x runs the tick as an interval job on a single worker thread with
``max_instances=1`` (a slot that comes while a tick still runs is skipped, and the next tick
starts as soon as the slow one ends: it delays, it never overlaps), ``coalesce=True`` (slots
missed while the process was suspended collapse into one tick) and
``misfire_grace_time=None`` (a late tick always runs: what is too late to send is each
campaign's ``max_lateness`` to decide, at the engine, not the scheduler's).

Each tick opens the store afresh, re-reads campaigns and templates (through the tick
function), and never lets an exception escape: a failing tick is logged and the next one
runs on schedule. Setting the ``stop`` event means no new claims: the tick in flight sees
it, lets its requests finish, and ``serve`` returns once it has.

A ``[sources.NAME]`` with ``sync_interval`` is synced (``regard sync NAME``) that often, as
its own job on its own worker thread, so a slow shop API never delays a tick; the first
sync runs at start, a failed one is logged and the next runs on schedule.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from regard.config import Config
from regard.daemon.logs import logger
from regard.daemon.presence import DaemonRecord, daemon_id, running, write_record
from regard.daemon.summary import log_tick
from regard.errors import RegardError
from regard.runner import run_once
from regard.sources import SYNC_RUNNERS
from regard.sources.sync import sync_source
from regard.store import Store, open_store
from regard.times import Instant, format_duration, iso, now_instant, to_epoch, utcnow

TickResult = Mapping[str, Any] | None
TickFunction = Callable[[Store, Config, datetime, threading.Event], TickResult]

JOB_ID = "tick"
POLL_SECONDS = 0.2  # how often the main thread looks at the stop flag


def run_once_tick(store: Store, config: Config, at: datetime, stop: threading.Event) -> TickResult:
    """The real tick: evaluate campaigns at ``at``, then dispatch what is due until ``stop``."""
    return run_once(store, config, to_epoch(at), kind="daemon", stop=stop).as_dict()


class Daemon:
    """Ticks ``tick`` over the store of ``config`` every ``scheduler.interval`` until stopped."""

    def __init__(
        self,
        config: Config,
        tick: TickFunction = run_once_tick,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.tick_function = tick
        self.stop = stop if stop is not None else threading.Event()
        self.interval = max(1, int(config.scheduler.interval.total_seconds()))
        self.ticks = 0
        self.failed_ticks = 0
        self.record = DaemonRecord.starting(self.interval, to_epoch(utcnow()))
        self.daemon_id = daemon_id()
        self._scheduler: BackgroundScheduler | None = None
        self._overran = False
        self._last_error: str | None = None

    def serve(self) -> None:
        """Tick until ``stop`` is set; return once the tick in flight has finished."""
        with open_store(self.config.store_target) as store:
            write_record(store, self.record)
            store.daemons.register(
                self.daemon_id, self.record.host, self.record.pid, self.interval,
                Instant(self.record.started_at),
            )  # fmt: skip
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(max_workers=1),
                "sync": ThreadPoolExecutor(max_workers=1),
                "heartbeat": ThreadPoolExecutor(max_workers=1),
            },
        )
        # the heartbeat has its own job: a tick longer than three intervals (a big
        # backlog) must not make a working daemon look dead
        scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=self.interval, timezone=UTC),
            id="heartbeat",
            name="regard heartbeat",
            executor="heartbeat",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        for name, source in self.config.sources.items():
            if source.sync_interval is not None:
                scheduler.add_job(
                    self._sync,
                    IntervalTrigger(
                        seconds=max(1, int(source.sync_interval.total_seconds())), timezone=UTC
                    ),
                    args=[name],
                    id=f"sync:{name}",
                    name=f"regard sync {name}",
                    executor="sync",
                    next_run_time=datetime.now(UTC),
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                )
        scheduler.add_listener(self._slot_while_running, EVENT_JOB_MAX_INSTANCES)
        scheduler.add_listener(self._tick_ended, EVENT_JOB_EXECUTED)
        scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=self.interval, timezone=UTC),
            id=JOB_ID,
            name="regard tick",
            next_run_time=datetime.now(UTC),  # the first tick runs at start
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler = scheduler
        scheduler.start()
        try:
            # polled, not waited on: a signal handler sets the event, and must never find
            # this thread holding the event's lock
            while not self.stop.is_set():
                time.sleep(POLL_SECONDS)
        finally:
            scheduler.shutdown(wait=True)  # waits for the tick in flight
            self._scheduler = None
            with open_store(self.config.store_target) as store:
                store.daemons.unregister(self.daemon_id)
                # the store's record says "stopped" only when no other daemon still runs
                # (one of this host whose process is gone was killed: it runs no more)
                if not running(store.daemons.live(to_epoch(utcnow()))):
                    write_record(store, self.record.stopped(to_epoch(utcnow())))

    def _tick(self) -> None:
        if self.stop.is_set():
            return
        at = utcnow()
        began = time.monotonic()
        try:
            with open_store(self.config.store_target) as store:
                self.record = self.record.beat(
                    to_epoch(at), ticks=self.ticks + 1, failed_ticks=self.failed_ticks
                )
                write_record(store, self.record)
                store.daemons.heartbeat(
                    self.daemon_id, to_epoch(at), ticks=self.ticks + 1, failed=self.failed_ticks
                )
                result = self.tick_function(store, self.config, at, self.stop)
        except RegardError as exc:
            self._failed(at, str(exc), trace=False)
        except Exception as exc:  # the daemon never dies of a tick
            self._failed(at, f"{type(exc).__name__}: {exc}", trace=True)
        else:
            self.ticks += 1
            self._last_error = None
            log_tick(at, result, time.monotonic() - began)

    def _heartbeat(self) -> None:
        """Renew this daemon's heartbeat; a failure is logged, never raised."""
        try:
            with open_store(self.config.store_target) as store:
                store.daemons.heartbeat(
                    self.daemon_id, now_instant(), ticks=self.ticks, failed=self.failed_ticks
                )
        except Exception as exc:  # the next beat, or the next tick, tries again
            logger.warning(
                "heartbeat failed: %s: %s",
                type(exc).__name__,
                exc,
                extra={"event": "heartbeat_failed"},
            )

    def _sync(self, name: str) -> None:
        """``regard sync NAME``; a failure is logged, never raised."""
        if self.stop.is_set():
            return
        try:
            with open_store(self.config.store_target) as store:
                result = sync_source(store, self.config, name, SYNC_RUNNERS)
        except RegardError as exc:
            logger.error(
                "sync of %s failed: %s (the next sync runs as scheduled)",
                name,
                exc,
                extra={"event": "sync_failed", "source": name},
            )
        except Exception as exc:  # the daemon never dies of a sync
            logger.error(
                "sync of %s failed: %s: %s",
                name,
                type(exc).__name__,
                exc,
                exc_info=True,
                extra={"event": "sync_failed", "source": name},
            )
        else:
            logger.info(
                "synced %s: %d contacts, %d events",
                name,
                result.contacts,
                result.events,
                extra={"event": "synced", "source": name},
            )

    def _failed(self, at: datetime, error: str, *, trace: bool) -> None:
        self.ticks += 1
        self.failed_ticks += 1
        # the same error tick after tick gets its traceback once, then one line each
        repeated = error == self._last_error
        self._last_error = error
        logger.error(
            "tick at %s failed: %s (%s)",
            iso(at),
            error,
            "same as the previous tick" if repeated else "the next tick runs as scheduled",
            exc_info=trace and not repeated,
            extra={"event": "tick_failed", "at": iso(at)},
        )

    def _slot_while_running(self, event: JobEvent) -> None:
        if event.job_id != JOB_ID:
            return  # a sync or the heartbeat
        if not self._overran:
            logger.warning(
                "a tick is still running at the next slot; the next tick starts when it ends "
                "(interval %s)",
                format_duration(self.config.scheduler.interval),
                extra={"event": "tick_overran"},
            )
        self._overran = True

    def _tick_ended(self, event: JobEvent) -> None:
        if event.job_id != JOB_ID:
            return
        if self._overran and not self.stop.is_set() and self._scheduler is not None:
            self._overran = False
            self._scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
