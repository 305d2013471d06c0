"""The daemons running on a store: each registers at start, renews its heartbeat while it
runs and unregisters when it stops (``daemons``, migration ``m011_daemons``)."""

from __future__ import annotations

from typing import TypedDict

from regard.store.area import Area
from regard.times import Instant

LIVE_INTERVALS = 3  # a daemon is live while its heartbeat is at most this many intervals old
FORGET_AFTER = 7 * 86400  # rows of daemons killed outright are dropped after a week


class DaemonRow(TypedDict):
    """One registered daemon; instants in epoch seconds, ``interval`` in seconds."""

    id: str
    host: str
    pid: int
    interval: int
    started_at: int
    heartbeat_at: int
    ticks: int
    failed_ticks: int


_COLUMNS = "id, host, pid, every_seconds, started_at, heartbeat_at, ticks, failed_ticks"


class Daemons(Area):
    """The ``daemons`` table."""

    def register(self, daemon_id: str, host: str, pid: int, interval: int, now: Instant) -> None:
        """Record that daemon ``daemon_id`` (``pid`` on ``host``, ticking every ``interval``
        seconds) starts now. Rows whose heartbeat stopped more than a week ago (daemons
        killed outright) are dropped on the way."""
        with self.store.write() as conn:
            conn.execute("DELETE FROM daemons WHERE heartbeat_at < ?", (now - FORGET_AFTER,))
            conn.execute(
                f"INSERT INTO daemons ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0, 0) "
                "ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                (daemon_id, host, pid, interval, now, now),
            )

    def heartbeat(
        self, daemon_id: str, now: Instant, *, ticks: int | None = None, failed: int | None = None
    ) -> None:
        """Daemon ``daemon_id`` is alive at ``now`` (and has ticked ``ticks`` times, of
        which ``failed`` failed, when given). A no-op for a daemon not registered."""
        with self.store.write() as conn:
            conn.execute(
                "UPDATE daemons SET heartbeat_at = ?, ticks = coalesce(?, ticks), "
                "failed_ticks = coalesce(?, failed_ticks) WHERE id = ?",
                (now, ticks, failed, daemon_id),
            )

    def unregister(self, daemon_id: str) -> None:
        """Daemon ``daemon_id`` stops: its row goes."""
        with self.store.write() as conn:
            conn.execute("DELETE FROM daemons WHERE id = ?", (daemon_id,))

    def live(self, now: Instant) -> list[DaemonRow]:
        """The daemons whose heartbeat is at most three of their intervals older than
        ``now``, oldest first."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM daemons WHERE heartbeat_at + ? * every_seconds >= ? "
            "ORDER BY started_at, id",
            (LIVE_INTERVALS, now),
        )
        return [
            DaemonRow(
                id=str(r["id"]),
                host=str(r["host"]),
                pid=int(r["pid"]),
                interval=int(r["every_seconds"]),
                started_at=int(r["started_at"]),
                heartbeat_at=int(r["heartbeat_at"]),
                ticks=int(r["ticks"]),
                failed_ticks=int(r["failed_ticks"]),
            )
            for r in rows
        ]

    def count(self) -> int:
        """How many daemons are registered, live or not (the ones that stopped cleanly
        are gone)."""
        return int(self.conn.execute("SELECT count(*) FROM daemons").fetchone()[0])
