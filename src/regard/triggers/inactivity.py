"""``inactivity``: a contact whose last activity (events of the trigger's types) was at L,
with at least ``min_events`` such events by then, lapses at L + after. Occasion key:
``since:<L as UTC ISO>``, so a new activity starts a new lapse.

``min_events = 0`` also lapses contacts who were never active, counted from their
``signup_at``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from regard.config import Config, Duration
from regard.store import Store
from regard.times import Instant, format_duration, iso
from regard.triggers.base import Occasion, Span, Trigger, seconds


class InactivityTrigger(Trigger):
    """Due at last activity + after; occasion ``since:<last activity UTC ISO>``."""

    type: Literal["inactivity"]
    after: Duration
    events: list[str] = ["order"]
    min_events: int = Field(default=1, ge=0)

    def due(self, store: Store, config: Config, span: Span) -> list[Occasion]:
        """Contacts whose last activity as of ``at`` lies in ``[lo - after, hi - after]``
        (and, with ``min_events = 0``, those never active who signed up then)."""
        after = seconds(self.after)
        lo, hi = Instant(span.lo - after), Instant(min(span.hi - after, span.at))
        found = [
            Occasion(Instant(a.last + after), a.contact_id, f"since:{iso(a.last)}", a.event_id)
            for a in store.occasions.last_activities(
                self.events, lo, hi, span.at, min_events=self.min_events,
                contact_ids=span.contact_ids,
            )
        ]  # fmt: skip
        if self.min_events == 0:
            found.extend(
                Occasion(Instant(s.signup_at + after), s.contact_id, f"since:{iso(s.signup_at)}")
                for s in store.occasions.never_active(
                    self.events, lo, hi, span.at, contact_ids=span.contact_ids
                )
            )
        return found

    def describe(self) -> str:
        return f"inactivity {format_duration(self.after)}"

    def no_occasion(self) -> str:
        return f"no lapse: fewer than {max(self.min_events, 1)} of {', '.join(self.events)}"

    def sample_event_type(self) -> str | None:
        # the last activity, when there is one
        return self.events[0] if self.min_events > 0 and self.events else None
