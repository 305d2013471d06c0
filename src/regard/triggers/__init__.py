"""What is due: one module per trigger type, each a set-based, indexed query.

Every trigger answers the same question: which occasions of this campaign fall due in
``[lo, hi]``, as the store looked at instant ``at`` (events that occurred after ``at`` do
not exist yet). A tick asks for ``[T - max_lateness, T]`` at ``T``; ``explain`` asks for a
wider span to say when an occasion was or will be due. The cost of a query follows the
number of occasions in the span, not the size of the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regard.campaigns.model import Campaign
    from regard.config import Config


@dataclass(frozen=True, order=True)
class Occasion:
    """One reason to contact one contact for one campaign, due at ``due_at`` (epoch seconds)."""

    due_at: int
    contact_id: str
    occasion: str
    event_id: str | None = None


@dataclass(frozen=True)
class Span:
    """The question put to a trigger: occasions due in ``[lo, hi]`` as the store was at ``at``,
    optionally only for ``contact_ids``."""

    lo: int
    hi: int
    at: int
    contact_ids: Sequence[str] | None = None

    def contact_clause(self, column: str) -> tuple[str, list[str]]:
        """SQL restricting ``column`` to the span's contacts (empty when unrestricted)."""
        if self.contact_ids is None:
            return "", []
        marks = ", ".join("?" for _ in self.contact_ids)
        return f" AND {column} IN ({marks})", list(self.contact_ids)


def due_occasions(
    conn: sqlite3.Connection, config: Config, campaign: Campaign, span: Span
) -> list[Occasion]:
    """The occasions of ``campaign`` due in the span, sorted by due instant, contact, key."""
    from regard.campaigns.model import AnniversaryTrigger, InactivityTrigger, MilestoneTrigger
    from regard.triggers import anniversary, event, inactivity, milestone

    trigger = campaign.trigger
    found: list[Occasion]
    if isinstance(trigger, InactivityTrigger):
        found = inactivity.due(conn, trigger, span)
    elif isinstance(trigger, AnniversaryTrigger):
        found = anniversary.due(conn, config, trigger, span)
    elif isinstance(trigger, MilestoneTrigger):
        found = milestone.due(conn, trigger, span)
    else:
        found = event.due(conn, config, trigger, span)
    return sorted(found)


def seconds(delta: timedelta) -> int:
    """A duration as whole seconds."""
    return int(delta.total_seconds())
