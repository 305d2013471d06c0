"""Where each source's sync stopped: one cursor per ``[sources.NAME]`` and resource
(``customers``, ``orders``), and what the last run of each brought, for ``regard status``."""

from __future__ import annotations

from typing import TypedDict

from regard.store.area import Area
from regard.times import Instant


class SyncCursor(TypedDict):
    """A resource's mark (``cursor``: the API's own, e.g. the last modification time seen)
    and its last completed run: when, and how many contacts and events it brought."""

    source: str
    resource: str
    cursor: str | None
    synced_at: int
    contacts: int
    events: int


class Syncs(Area):
    """The ``sync_cursors`` table."""

    def cursor(self, source: str, resource: str) -> str | None:
        """Where the last completed sync of ``resource`` stopped (None: never synced)."""
        row = self.conn.execute(
            "SELECT cursor FROM sync_cursors WHERE source = ? AND resource = ?",
            (source, resource),
        ).fetchone()
        return None if row is None else row[0]

    def has_synced(self, source: str, resource: str) -> bool:
        """Whether a sync of ``resource`` ever completed."""
        row = self.conn.execute(
            "SELECT 1 FROM sync_cursors WHERE source = ? AND resource = ?", (source, resource)
        ).fetchone()
        return row is not None

    def save(
        self,
        source: str,
        resource: str,
        cursor: str | None,
        at: Instant,
        *,
        contacts: int,
        events: int,
    ) -> None:
        """Record a completed run of ``resource`` at ``at``; a None ``cursor`` keeps the
        stored one (a run that saw nothing new)."""
        with self.store.write() as conn:
            conn.execute(
                """
                INSERT INTO sync_cursors (source, resource, cursor, synced_at, contacts, events)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (source, resource) DO UPDATE SET
                    cursor = coalesce(excluded.cursor, sync_cursors.cursor),
                    synced_at = excluded.synced_at, contacts = excluded.contacts,
                    events = excluded.events
                """,
                (source, resource, cursor, at, contacts, events),
            )

    def all(self) -> list[SyncCursor]:
        """Every source's cursors, by source and resource."""
        rows = self.conn.execute(
            "SELECT source, resource, cursor, synced_at, contacts, events FROM sync_cursors "
            "ORDER BY source, resource"
        )
        return [
            SyncCursor(
                source=r[0],
                resource=r[1],
                cursor=r[2],
                synced_at=int(r[3]),
                contacts=int(r[4]),
                events=int(r[5]),
            )
            for r in rows
        ]
