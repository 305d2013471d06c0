"""Events by id: the triggering events messages are rendered with."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from regard.store.area import Area


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
