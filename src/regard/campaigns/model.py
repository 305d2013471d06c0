"""The campaign model: one TOML file in the campaigns folder, its stem is its id.

Only ``channel``, ``provider``, ``template`` and ``[trigger]`` are required; every other
key has the contract's default. Unknown keys are errors.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from regard.config import Duration, SignedDuration
from regard.validation import StrictModel

Channel = Literal["email", "sms", "card", "webhook"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# A filter table (audience, trigger ``where``): key → scalar | list | {min,max,not,any,all,exists}.
# Its grammar is regard.grammar; the store compiles it to SQL (regard.store.filters).
Filter = dict[str, Any]


class EventTrigger(StrictModel):
    """Due at occurred_at + delay; occasion: the event id."""

    type: Literal["event"]
    event: str
    delay: Duration = timedelta(0)
    nth: int | None = Field(default=None, ge=1)
    where: Filter = {}


class PostPurchaseTrigger(StrictModel):
    """An event trigger with event = "order"."""

    type: Literal["post_purchase"]
    delay: Duration = timedelta(0)
    nth: int | None = Field(default=None, ge=1)
    where: Filter = {}

    @property
    def event(self) -> str:
        return "order"


class InactivityTrigger(StrictModel):
    """Due at last activity + after; occasion ``since:<last activity UTC ISO>``."""

    type: Literal["inactivity"]
    after: Duration
    events: list[str] = ["order"]
    min_events: int = Field(default=1, ge=0)


class AnniversaryTrigger(StrictModel):
    """n-th anniversary of a date field at local ``at`` plus offset; occasion ``<field>:<year>``."""

    type: Literal["anniversary"]
    field: str
    offset: SignedDuration = timedelta(0)
    years: list[Annotated[int, Field(ge=1)]] | None = None
    at: time = time(9, 0)

    @field_validator("at", mode="before")
    @classmethod
    def _hh_mm(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return time.fromisoformat(value)
            except ValueError:
                raise ValueError(f'{value!r} is not a time of day like "09:00"') from None
        if not isinstance(value, time):
            # a bare number would be read as seconds after midnight: 8 → 00:00:08
            raise ValueError(f'a time of day is a string like "09:00", not {value!r}')
        return value


class MilestoneTrigger(StrictModel):
    """Due when the order that first takes ``metric`` to ≥ threshold occurred, plus delay."""

    type: Literal["milestone"]
    metric: Literal["order_count", "total_spent"]
    threshold: Decimal = Field(gt=0)
    delay: Duration = timedelta(0)


Trigger = Annotated[
    EventTrigger | PostPurchaseTrigger | InactivityTrigger | AnniversaryTrigger | MilestoneTrigger,
    Field(discriminator="type"),
]


class Window(StrictModel):
    """Deliver only on these local days, from hours[0]:00 up to hours[1]:00."""

    days: list[Weekday] = list(WEEKDAYS)
    hours: tuple[int, int] = (0, 24)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: tuple[int, int]) -> tuple[int, int]:
        start, end = value
        if not (0 <= start < end <= 24):
            raise ValueError("hours is [start, end] with 0 ≤ start < end ≤ 24, like [9, 18]")
        return value


class Goal(StrictModel):
    event: str = "order"
    within: Duration = timedelta(days=30)


class Card(StrictModel):
    design: str | None = None
    font: str | None = None


class Campaign(StrictModel):
    name: str | None = None
    channel: Channel
    provider: str
    template: str
    enabled: bool = True
    priority: int = 0
    starts_at: date | None = None
    ends_at: date | None = None
    max_lateness: Duration = timedelta(days=2)
    once_per_contact: bool = False
    cooldown: Duration = timedelta(0)
    holdout: float = Field(default=0.0, ge=0.0, le=0.5)
    daily_limit: int = Field(default=0, ge=0)
    trigger: Trigger
    audience: Filter = {}
    window: Window | None = None
    goal: Goal | None = None
    card: Card | None = None

    _id: str = PrivateAttr(default="")

    @property
    def id(self) -> str:
        return self._id

    @property
    def title(self) -> str:
        return self.name or self._id

    @model_validator(mode="after")
    def _dates_in_order(self) -> Campaign:
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self


def describe_trigger(campaign: Campaign) -> str:
    """A short human description of the trigger: ``post_purchase +2d (1st)``."""
    from regard.times import format_duration

    t = campaign.trigger
    if isinstance(t, EventTrigger | PostPurchaseTrigger):
        text = t.type if isinstance(t, PostPurchaseTrigger) else f"event {t.event}"
        if t.delay:
            text += f" +{format_duration(t.delay)}"
        if t.nth:
            text += f" (#{t.nth})"
        if t.where:
            text += " where " + ", ".join(t.where)
        return text
    if isinstance(t, InactivityTrigger):
        return f"inactivity {format_duration(t.after)}"
    if isinstance(t, AnniversaryTrigger):
        text = f"anniversary {t.field}"
        if t.offset:
            text += f" {format_duration(t.offset)}"
        return text
    return f"milestone {t.metric} >= {t.threshold}"
