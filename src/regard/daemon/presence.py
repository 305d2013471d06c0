"""What a daemon tells the store about itself, for ``regard status``: the ``daemon`` row of
``meta`` (pid, host, interval, start, heartbeat, clean stop).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, replace
from typing import Any

from regard.store import Store

META_KEY = "daemon"


@dataclass(frozen=True)
class DaemonRecord:
    """The last daemon that ran on a store. Instants are epoch seconds."""

    pid: int
    host: str
    interval: int  # seconds
    started_at: int
    heartbeat_at: int
    stopped_at: int | None = None
    ticks: int = 0
    failed_ticks: int = 0

    @classmethod
    def starting(cls, interval: int, now: int) -> DaemonRecord:
        return cls(os.getpid(), socket.gethostname(), interval, now, now)

    def beat(self, now: int, *, ticks: int, failed_ticks: int) -> DaemonRecord:
        return replace(self, heartbeat_at=now, ticks=ticks, failed_ticks=failed_ticks)

    def stopped(self, now: int) -> DaemonRecord:
        return replace(self, heartbeat_at=now, stopped_at=now)


def write_record(store: Store, record: DaemonRecord) -> None:
    """Replace the store's daemon record."""
    with store.write() as conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (META_KEY, json.dumps(asdict(record))),
        )


def read_record(store: Store) -> DaemonRecord | None:
    """The store's daemon record, or None when no daemon ever ran on it."""
    row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row[0])
    fields = DaemonRecord.__dataclass_fields__
    return DaemonRecord(**{k: v for k, v in data.items() if k in fields})
