"""``milestone``: due when the order that first takes ``order_count`` or ``total_spent``
to at least ``threshold`` occurred, plus delay. Occasion key ``<metric>:<threshold>``,
the threshold in its shortest decimal form (``total_spent:500`` for 500 and 500.00,
``total_spent:99.9`` for 99.90), so that rewriting the number never re-sends."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import Field

from regard.config import Config, Duration
from regard.store import Store
from regard.times import Instant
from regard.triggers.base import Occasion, Span, Trigger, seconds


def threshold_text(threshold: Decimal) -> str:
    """``Decimal("500.00")`` → ``"500"``, ``Decimal("99.90")`` → ``"99.9"``."""
    text = format(threshold.normalize(), "f")
    return text


class MilestoneTrigger(Trigger):
    """Due when the order that first takes ``metric`` to ≥ threshold occurred, plus delay."""

    type: Literal["milestone"]
    metric: Literal["order_count", "total_spent"]
    threshold: Decimal = Field(gt=0)
    delay: Duration = timedelta(0)

    @property
    def occasion_key(self) -> str:
        """``order_count:5``, ``total_spent:500``."""
        return f"{self.metric}:{threshold_text(self.threshold)}"

    def due(self, store: Store, config: Config, span: Span) -> list[Occasion]:
        """The first order per contact that reaches the threshold, if it occurred in
        ``[lo - delay, hi - delay]`` (as of ``at``)."""
        delay = seconds(self.delay)
        lo, hi = Instant(span.lo - delay), Instant(min(span.hi - delay, span.at))
        reached = store.occasions.milestones_reached(
            self.metric, float(self.threshold), lo, hi, contact_ids=span.contact_ids, at=span.at
        )
        key = self.occasion_key
        return [
            Occasion(Instant(e.occurred_at + delay), e.contact_id, key, e.event_id) for e in reached
        ]

    def describe(self) -> str:
        return f"milestone {self.metric} >= {self.threshold}"

    def no_occasion(self) -> str:
        return f"{self.metric} has not reached {self.threshold} for this contact"

    def sample_event_type(self) -> str | None:
        return "order"  # the order that reached it
