"""Tick records (one row per run, daemon tick and simulation) and the daemon's record."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, TypedDict

from regard.store.area import Area
from regard.times import Instant, now_instant

DAEMON_KEY = "daemon"  # the row of ``meta`` a daemon keeps about itself


class TickRow(TypedDict):
    """One tick as stored: instants in epoch seconds, ``result`` its JSON summary."""

    kind: str
    at: int
    started_at: int
    finished_at: int | None
    pid: int | None
    result: dict[str, Any] | None


class Ticks(Area):
    """The ``ticks`` table and the daemon's row of ``meta``."""

    def start(self, kind: str, at: Instant) -> int:
        """Record that a tick of ``kind`` (run, daemon) at ``at`` starts now, in this
        process; returns its id. A tick that never finishes (killed) keeps no
        ``finished_at``, which is how ``status`` tells it."""
        with self.store.write() as conn:
            row = conn.execute(
                "INSERT INTO ticks (kind, at, started_at, pid) VALUES (?, ?, ?, ?) RETURNING id",
                (kind, at, now_instant(), os.getpid()),
            ).fetchone()
            return int(row[0])

    def finish(self, tick_id: int, result: dict[str, Any]) -> None:
        """Record that tick ``tick_id`` finished now, with its JSON summary."""
        with self.store.write() as conn:
            conn.execute(
                "UPDATE ticks SET finished_at = ?, result = ? WHERE id = ?",
                (now_instant(), json.dumps(result, ensure_ascii=False), tick_id),
            )

    def last(self, kinds: Sequence[str]) -> TickRow | None:
        """The latest started tick of one of ``kinds``, or None."""
        marks = ", ".join("?" * len(kinds))
        row = self.conn.execute(
            f"SELECT kind, at, started_at, finished_at, pid, result FROM ticks "
            f"WHERE kind IN ({marks}) ORDER BY started_at DESC, id DESC LIMIT 1",
            list(kinds),
        ).fetchone()
        if row is None:
            return None
        return TickRow(
            kind=row["kind"],
            at=row["at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            pid=row["pid"],
            result=json.loads(row["result"]) if row["result"] else None,
        )

    def write_daemon(self, record: dict[str, Any]) -> None:
        """Replace the store's daemon record (a JSON object)."""
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (DAEMON_KEY, json.dumps(record)),
            )

    def read_daemon(self) -> dict[str, Any] | None:
        """The store's daemon record, or None when no daemon ever ran on it."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (DAEMON_KEY,)).fetchone()
        if row is None:
            return None
        data: dict[str, Any] = json.loads(row[0])
        return data
