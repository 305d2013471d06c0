"""Events by id: the triggering events messages are rendered with."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import tzinfo
from typing import Any

from regard.store.area import Area
from regard.store.filters import event_condition


class Events(Area):
    """The ``events`` table, read."""

    def get(self, event_id: str) -> dict[str, Any] | None:
        """The stored row of event ``event_id`` (None if unknown): instants as epoch
        seconds, ``properties`` as JSON text."""
        row = self.conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        return dict(row) if row is not None else None

    def many(self, event_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The stored rows of ``event_ids`` by id, as :meth:`get` gives each, in one query
        (the triggering events of a campaign's due occasions)."""
        if not event_ids:
            return {}
        rows = self.conn.execute(
            "SELECT * FROM events WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(set(event_ids))),),
        )
        return {row["id"]: dict(row) for row in rows}

    def latest(self, contact_id: str, event_type: str, at: int) -> dict[str, Any] | None:
        """The contact's latest event of ``event_type`` that had occurred by ``at`` (ties by
        id), as :meth:`get` gives it; None when there is none."""
        row = self.conn.execute(
            "SELECT * FROM events WHERE contact_id = ? AND type = ? AND occurred_at <= ? "
            "ORDER BY occurred_at DESC, id DESC LIMIT 1",
            (contact_id, event_type, int(at)),
        ).fetchone()
        return dict(row) if row is not None else None

    def late_since(
        self,
        first_rowid: int,
        event_type: str,
        delay: int,
        lo: int | None,
        hi: int,
        *,
        nth: int | None = None,
        where: Mapping[str, Any] | None = None,
        tz: tzinfo | str = "UTC",
    ) -> int:
        """How many events inserted from ``first_rowid`` on (an import's new rows), of
        ``event_type`` and not voided, are due (``occurred_at + delay``) in ``[lo, hi]``:
        with ``hi`` = now − max_lateness − 1, the occasions no tick will ever consider.
        ``nth`` and ``where`` as for :meth:`regard.store.occasions.Occasions.events_between`.
        Raises ValueError for an invalid filter."""
        sql = """
            SELECT count(*) FROM events e
            WHERE e.rowid >= ? AND e.type = ? AND e.voided_at IS NULL
              AND e.occurred_at + ? <= ?"""
        params: list[Any] = [first_rowid, event_type, delay, hi]
        if lo is not None:
            sql += " AND e.occurred_at + ? >= ?"
            params += [delay, lo]
        if nth is not None:
            sql += """
              AND (SELECT count(*) FROM events p
                   WHERE p.contact_id = e.contact_id AND p.type = e.type
                     AND (p.occurred_at < e.occurred_at
                          OR (p.occurred_at = e.occurred_at AND p.id < e.id))) = ?"""
            params.append(nth - 1)
        if where:
            where_sql, where_params = event_condition(where, "e", tz)
            sql += f" AND ({where_sql})"
            params.extend(where_params)
        count: int = self.conn.execute(sql, params).fetchone()[0]
        return count
