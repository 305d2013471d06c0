"""``followup``: the next step of a journey. Each ``sent`` delivery of another campaign
(``campaign``) starts one occasion, due at its ``sent_at`` + ``delay``; occasion key
``after:<that delivery id>``. Held-out, skipped, dead, cancelled or still pending
deliveries start nothing, so a contact held out of the first step of a chain gets no
follow-up: a chain's uplift is measured against the first step's control group.

A follow-up is rendered with the earlier delivery's triggering event, where it had one;
the start of its ``[exit]`` is the earlier delivery's ``sent_at``.
"""

from __future__ import annotations

from typing import Literal

from regard.config import Config, Duration
from regard.store import Store
from regard.times import Instant, format_duration
from regard.triggers.base import Occasion, Span, Trigger, seconds

OCCASION_PREFIX = "after:"


def followup_occasion(delivery_id: str) -> str:
    """The occasion key of the follow-up of delivery ``delivery_id``: ``after:<id>``."""
    return f"{OCCASION_PREFIX}{delivery_id}"


class FollowupTrigger(Trigger):
    """Due at the earlier campaign's ``sent_at`` + delay; occasion ``after:<delivery id>``."""

    type: Literal["followup"]
    campaign: str
    delay: Duration

    def due(self, store: Store, config: Config, span: Span) -> list[Occasion]:
        """Sent deliveries of ``campaign`` with sent_at + delay in the span (sent by
        ``at``; index: campaign, state, sent_at)."""
        delay = seconds(self.delay)
        lo, hi = Instant(span.lo - delay), Instant(min(span.hi - delay, span.at))
        return [
            Occasion(
                Instant(s.sent_at + delay),
                s.contact_id,
                followup_occasion(s.delivery_id),
                s.event_id,
                started_at=s.sent_at,
            )
            for s in store.occasions.sent_between(
                self.campaign, lo, hi, contact_ids=span.contact_ids
            )
        ]

    def describe(self) -> str:
        return f"followup of {self.campaign} +{format_duration(self.delay)}"

    def no_occasion(self) -> str:
        return f"no delivery of {self.campaign} was sent to this contact"
