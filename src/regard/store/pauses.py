"""Providers whose account cannot send: since when, and what the service said.

A provider is paused for a run when its service answers that the *account* cannot send
(bad credentials, no credit, sender not confirmed, the endpoint gone): its deliveries stay
``pending`` and ``regard status`` shows the provider failing, and since when, until a run
sends through it again.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TypedDict

from regard.store.area import Area
from regard.times import Instant


class ProviderPause(TypedDict):
    """A provider failing for its account: since (the first failure of the streak), the
    latest failure, and the reason with what to fix."""

    provider: str
    since: int
    last_at: int
    reason: str


class Pauses(Area):
    """The ``provider_pauses`` table."""

    def record(self, provider: str, reason: str, *, now: Instant) -> None:
        """``provider`` failed for its account at ``now``; ``since`` stays that of the first
        failure of the streak, the reason becomes the latest one."""
        with self.store.write() as conn:
            conn.execute(
                """
                INSERT INTO provider_pauses (provider, since, last_at, reason)
                VALUES (?, ?, ?, ?)
                ON CONFLICT (provider) DO UPDATE SET last_at = excluded.last_at,
                    reason = excluded.reason
                """,
                (provider, now, now, reason),
            )

    def clear(self, providers: Collection[str]) -> None:
        """``providers`` sent again: they are no longer failing."""
        if not providers:
            return
        with self.store.write() as conn:
            conn.execute(
                "DELETE FROM provider_pauses WHERE provider IN (SELECT value FROM json_each(?))",
                (json.dumps(list(providers)),),
            )

    def current(self) -> list[ProviderPause]:
        """Every provider failing now, by name."""
        rows = self.conn.execute(
            "SELECT provider, since, last_at, reason FROM provider_pauses ORDER BY provider"
        )
        return [
            ProviderPause(provider=r[0], since=int(r[1]), last_at=int(r[2]), reason=str(r[3]))
            for r in rows
        ]
