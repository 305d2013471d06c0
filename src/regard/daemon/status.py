"""``regard status``: is the store being ticked, and what is waiting or dead?

Health, so that a monitoring check can call ``regard status`` and read its exit status:

- A daemon has run on the store: healthy while its last tick (or heartbeat) is at most
  three intervals old. A daemon that crashed, hangs or was stopped is reported stale —
  unless it was stopped cleanly and ``regard run`` has ticked since (the store moved to cron).
- Only ``regard run`` has ticked (cron): healthy; ``--max-age`` makes a tick older than that
  unhealthy, so cron setups can be monitored too.
- Nothing has ever ticked: unhealthy (a daemon that never started must not look fine).

``daemons`` lists every daemon running on the store now (its heartbeat at most three of
its intervals old): one on SQLite, any number on PostgreSQL.

``--max-age`` replaces the three intervals in every case.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from regard.config import Config
from regard.daemon.presence import DaemonRecord, read_record, running
from regard.processes import alive
from regard.store import Store
from regard.store.daemons import DaemonRow
from regard.store.ticks import TickRow
from regard.times import Instant, format_duration, iso

STALE_INTERVALS = 3
TICK_KINDS = ("daemon", "run")  # dry runs change nothing and say nothing about health


def build_status(
    store: Store,
    config: Config,
    now: int,
    *,
    max_age: int | None = None,
    dead_letters: int = 5,
) -> dict[str, Any]:
    """Everything ``regard status`` shows, as one JSON-ready object; ``healthy`` decides the
    exit status and ``problem`` says why not."""
    record = read_record(store)
    last_tick = store.ticks.last(TICK_KINDS)
    last_daemon_tick = store.ticks.last(("daemon",))
    interval = record.interval if record else int(config.scheduler.interval.total_seconds())
    threshold = max_age if max_age is not None else STALE_INTERVALS * interval
    healthy, problem, mode = _health(
        record, last_tick, last_daemon_tick, now, threshold, cron_checked=max_age is not None
    )
    next_tick = None
    if mode == "daemon" and healthy and record is not None and record.stopped_at is None:
        base = last_daemon_tick["at"] if last_daemon_tick else record.started_at
        next_tick = iso(max(base + interval, now))
    return {
        "checked_at": iso(now),
        "healthy": healthy,
        "problem": problem,
        "mode": mode,
        "stale_after": format_duration(timedelta(seconds=threshold)),
        "daemon": _daemon_json(record),
        # every daemon running on the store now (PostgreSQL: any number of them)
        "daemons": [_live_json(row) for row in running(store.daemons.live(Instant(now)))],
        "last_tick": _tick_json(last_tick),
        "last_daemon_tick": _tick_json(last_daemon_tick),
        "next_tick": next_tick,
        "backlog": store.reports.backlog(),
        "dead_letters": _dead_letters_json(store, dead_letters),
        "sources": _sources_json(store, config, now),
        # providers whose account could not send at their last run: deliveries wait
        "providers_failing": [
            {**pause, "since": iso(pause["since"]), "last_at": iso(pause["last_at"])}
            for pause in store.pauses.current()
        ],
    }


def _sources_json(store: Store, config: Config, now: int) -> dict[str, Any]:
    """Per ``[sources.NAME]``: its type, its last webhook (time and topic) and how many
    requests it took today (the config's time zone)."""
    today = datetime.fromtimestamp(now, config.tz).date().isoformat()
    seen = store.inbound.latest(today)
    sources: dict[str, Any] = {}
    for name, table in config.sources.items():
        row = seen.get(name)
        sources[name] = {
            "type": table.type,
            "last_at": iso(row["last_at"]) if row else None,
            "last_topic": row["last_topic"] if row else None,
            "today": row["received"] if row else 0,
            "sync": {},
        }
    for cursor in store.syncs.all():  # `regard sync`: each resource's last run, what it brought
        if cursor["source"] in sources:
            sources[cursor["source"]]["sync"][cursor["resource"]] = {
                "synced_at": iso(cursor["synced_at"]),
                "contacts": cursor["contacts"],
                "events": cursor["events"],
                "cursor": cursor["cursor"],
            }
    return sources


def _health(
    record: DaemonRecord | None,
    last_tick: TickRow | None,
    last_daemon_tick: TickRow | None,
    now: int,
    threshold: int,
    *,
    cron_checked: bool,
) -> tuple[bool, str | None, str]:
    """(healthy, problem, mode) where mode is ``daemon``, ``cron`` or ``none``."""
    limit = format_duration(timedelta(seconds=threshold))
    moved_to_cron = (
        record is not None
        and record.stopped_at is not None
        and last_tick is not None
        and last_tick["kind"] != "daemon"
        and last_tick["started_at"] >= record.stopped_at
    )
    if record is not None and not moved_to_cron:
        seen = max(record.heartbeat_at, last_daemon_tick["started_at"] if last_daemon_tick else 0)
        age = now - seen
        if age <= threshold:
            return True, None, "daemon"
        if record.stopped_at is not None:
            why = f"it was stopped at {iso(record.stopped_at)}"
        elif last_daemon_tick is not None and last_daemon_tick["finished_at"] is None:
            why = f"pid {record.pid} on {record.host} never finished that tick (hung or killed?)"
        else:
            why = f"pid {record.pid} on {record.host} is not ticking (crashed, hung or killed?)"
        return (
            False,
            f"the daemon's last tick was at {iso(seen)}, {_age(age)} ago, more than {limit}: {why}",
            "daemon",
        )
    if last_tick is None:
        return (
            False,
            "nothing has ticked on this store yet: start `regard daemon`, "
            "or run `regard run` from cron",
            "none",
        )
    age = now - last_tick["started_at"]
    if cron_checked and age > threshold:
        return (
            False,
            f"the last tick was at {iso(last_tick['started_at'])}, {_age(age)} ago, "
            f"more than {limit}",
            "cron",
        )
    return True, None, "cron"


def _age(seconds: int) -> str:
    """``17m``, ``2h``, ``3d``: a rough age, in its largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _tick_json(tick: TickRow | None) -> dict[str, Any] | None:
    if tick is None:
        return None
    finished = tick["finished_at"]
    if finished is not None:
        state = "finished"
    elif tick["pid"] is not None and not alive(tick["pid"]):
        state = "interrupted"  # killed before it could record its end
    else:
        state = "running"
    return {
        "kind": tick["kind"],
        "state": state,
        "at": iso(tick["at"]),
        "started_at": iso(tick["started_at"]),
        "finished_at": iso(finished),
        "duration": None if finished is None else finished - tick["started_at"],
        "pid": tick["pid"],
        "result": tick["result"],
    }


def _daemon_json(record: DaemonRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    data = asdict(record)
    for key in ("started_at", "heartbeat_at", "stopped_at"):
        data[key] = iso(data[key])
    data["interval"] = format_duration(timedelta(seconds=record.interval))
    return data


def _live_json(row: DaemonRow) -> dict[str, Any]:
    return {
        "id": row["id"],
        "host": row["host"],
        "pid": row["pid"],
        "interval": format_duration(timedelta(seconds=row["interval"])),
        "started_at": iso(row["started_at"]),
        "heartbeat_at": iso(row["heartbeat_at"]),
        "ticks": row["ticks"],
        "failed_ticks": row["failed_ticks"],
    }


def _dead_letters_json(store: Store, latest: int) -> dict[str, Any]:
    dead = store.reports.dead_letters(latest)
    return {
        "count": dead["count"],
        "latest": [{**letter, "dead_at": iso(letter["dead_at"])} for letter in dead["latest"]],
    }
