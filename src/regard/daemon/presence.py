"""What a daemon tells the store about itself, for ``regard status``: its record (pid,
host, interval, start, heartbeat, clean stop), kept by ``store.ticks`` (the last daemon
that beat), and its row among every daemon running on the store (``store.daemons``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from regard.delivery import owners
from regard.store import Store
from regard.store.daemons import DaemonRow


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


def daemon_id() -> str:
    """The id this daemon registers under in ``store.daemons``: the name its claims carry
    (``host:pidns:pid:random``, :func:`regard.delivery.owners.default_owner`), unique even
    when a pid comes back, and telling a daemon of this host whose process is gone."""
    return owners.default_owner()


def running(rows: Iterable[DaemonRow]) -> list[DaemonRow]:
    """``rows`` (live by their heartbeat) without the daemons this host can tell are gone
    (killed outright: their process has ended, their heartbeat not yet aged)."""
    rows = list(rows)
    gone = set(owners.gone(row["id"] for row in rows))
    return [row for row in rows if row["id"] not in gone]


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
