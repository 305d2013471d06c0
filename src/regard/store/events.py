"""Events by id: the triggering event a message is rendered with."""

from __future__ import annotations

from typing import Any

from regard.store.area import Area


class Events(Area):
    """The ``events`` table, read."""

    def get(self, event_id: str) -> dict[str, Any] | None:
        """The stored row of event ``event_id`` (None if unknown): instants as epoch
        seconds, ``properties`` as JSON text."""
        row = self.conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        return dict(row) if row is not None else None
