"""What a daemon tells the store about itself, for ``regard status``: its record (pid,
host, interval, start, heartbeat, clean stop), kept by ``store.ticks`` (the last daemon
that beat), and its row among every daemon running on the store (``store.daemons``).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import asdict, dataclass, replace

from regard.store import Store


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


def daemon_id(record: DaemonRecord) -> str:
    """The id a daemon registers under in ``store.daemons``: ``host:pid:random``, unique
    even when a pid comes back on another start."""
    return f"{record.host}:{record.pid}:{secrets.token_hex(4)}"


def write_record(store: Store, record: DaemonRecord) -> None:
    """Replace the store's daemon record."""
    store.ticks.write_daemon(asdict(record))


def read_record(store: Store) -> DaemonRecord | None:
    """The store's daemon record, or None when no daemon ever ran on it. Keys this
    version does not know (written by a newer one) are left out."""
    data = store.ticks.read_daemon()
    if data is None:
        return None
    fields = DaemonRecord.__dataclass_fields__
    return DaemonRecord(**{k: v for k, v in data.items() if k in fields})
