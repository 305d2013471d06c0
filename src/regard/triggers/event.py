"""``event`` and ``post_purchase``: each matching event is an occasion, due at
occurred_at + delay; with ``nth``, only the contact's n-th event of that type (by time,
ties by id). Occasion key: the event id."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from regard.config import Config, Duration
from regard.grammar import Filter
from regard.store import Store
from regard.times import Instant, format_duration
from regard.triggers.base import Occasion, Span, Trigger, seconds


class EventTrigger(Trigger):
    """Due at occurred_at + delay; occasion: the event id."""

    type: Literal["event"]
    event: str
    delay: Duration = timedelta(0)
    nth: int | None = Field(default=None, ge=1)
    where: Filter = {}

    def due(self, store: Store, config: Config, span: Span) -> list[Occasion]:
        """Events of the trigger's type with occurred_at + delay in the span."""
        return _due(store, config, span, self.event, self.delay, self.nth, self.where)

    def describe(self) -> str:
        return _describe(f"event {self.event}", self.delay, self.nth, self.where)

    def no_occasion(self) -> str:
        return _no_occasion(self.event, self.nth, self.where)

    def sample_event_type(self) -> str | None:
        return self.event


class PostPurchaseTrigger(Trigger):
    """An event trigger with event = "order"."""

    type: Literal["post_purchase"]
    delay: Duration = timedelta(0)
    nth: int | None = Field(default=None, ge=1)
    where: Filter = {}

    @property
    def event(self) -> str:
        return "order"

    def due(self, store: Store, config: Config, span: Span) -> list[Occasion]:
        """Orders with occurred_at + delay in the span."""
        return _due(store, config, span, self.event, self.delay, self.nth, self.where)

    def describe(self) -> str:
        return _describe(self.type, self.delay, self.nth, self.where)

    def no_occasion(self) -> str:
        return _no_occasion(self.event, self.nth, self.where)

    def sample_event_type(self) -> str | None:
        return self.event


def _due(
    store: Store,
    config: Config,
    span: Span,
    event: str,
    delay: timedelta,
    nth: int | None,
    where: Filter,
) -> list[Occasion]:
    # the rank counts only earlier events, all of which had occurred by `at`
    wait = seconds(delay)
    found = store.occasions.events_between(
        event,
        Instant(span.lo - wait),
        Instant(min(span.hi - wait, span.at)),
        nth=nth,
        where=where,
        tz=config.timezone,
        contact_ids=span.contact_ids,
        at=span.at,
    )
    return [
        Occasion(Instant(e.occurred_at + wait), e.contact_id, e.event_id, e.event_id) for e in found
    ]


def _describe(text: str, delay: timedelta, nth: int | None, where: Filter) -> str:
    if delay:
        text += f" +{format_duration(delay)}"
    if nth:
        text += f" (#{nth})"
    if where:
        text += " where " + ", ".join(where)
    return text


def _no_occasion(event: str, nth: int | None, where: Filter) -> str:
    what = "matching event" if where or nth else "event"
    return f"no {event} {what} of this contact triggers it"
