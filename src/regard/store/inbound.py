"""What each ``[sources.NAME]`` received: one row per source and local day, for
``regard status`` (the last webhook, and how many came today)."""

from __future__ import annotations

from typing import TypedDict

from regard.store.area import Area
from regard.times import Instant


class InboundRow(TypedDict):
    """A source's requests answered 200 on ``day``, the last one at ``last_at``."""

    source: str
    day: str
    received: int
    last_at: int
    last_topic: str | None


class Inbound(Area):
    """The ``inbound`` table."""

    def record(self, source: str, day: str, at: Instant, topic: str | None) -> None:
        """Count one request of ``source`` taken at ``at`` on local ``day`` (``YYYY-MM-DD``).
        Joins the caller's transaction, so it is committed with what the request stored."""
        with self.store.write() as conn:
            conn.execute(
                """
                INSERT INTO inbound (source, day, received, last_at, last_topic)
                VALUES (?, ?, 1, ?, ?)
                ON CONFLICT (source, day) DO UPDATE SET received = inbound.received + 1,
                    last_at = max(inbound.last_at, excluded.last_at),
                    last_topic = excluded.last_topic
                """,
                (source, day, at, topic),
            )

    def latest(self, day: str) -> dict[str, InboundRow]:
        """Per source: its last day with requests, with the count of that day set to 0
        unless it is ``day`` (today)."""
        rows = self.conn.execute(
            """
            SELECT source, day, received, last_at, last_topic FROM inbound i
            WHERE day = (SELECT max(day) FROM inbound j WHERE j.source = i.source)
            """
        )
        found: dict[str, InboundRow] = {}
        for r in rows:
            received = int(r["received"]) if r["day"] == day else 0
            found[r["source"]] = InboundRow(
                source=r["source"], day=day, received=received,
                last_at=int(r["last_at"]), last_topic=r["last_topic"],
            )  # fmt: skip
        return found
