"""The campaign model: one TOML file in the campaigns folder, its stem is its id.

Only ``channel``, ``provider``, ``template`` and ``[trigger]`` are required (``provider``
not when the config's ``[channels]`` names one for the channel: the loader fills it in);
every other key has the contract's default. Unknown keys are errors.
"""

from __future__ import annotations

import operator
from datetime import date, timedelta
from functools import reduce
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from regard.channels import CHANNELS
from regard.config import Duration
from regard.grammar import Filter
from regard.triggers import (
    AnniversaryTrigger,
    EventTrigger,
    FollowupTrigger,
    InactivityTrigger,
    MilestoneTrigger,
    PostPurchaseTrigger,
    trigger_types,
)
from regard.triggers import Trigger as BaseTrigger
from regard.validation import StrictModel

__all__ = [
    "EXIT_TRIGGERS",
    "WEEKDAYS",
    "AnniversaryTrigger",
    "Campaign",
    "Card",
    "Channel",
    "EventTrigger",
    "Exit",
    "Filter",
    "FollowupTrigger",
    "Goal",
    "InactivityTrigger",
    "MilestoneTrigger",
    "PostPurchaseTrigger",
    "Trigger",
    "Weekday",
    "Window",
    "describe_trigger",
]

if TYPE_CHECKING:
    Channel = str
else:  # one of the registered channels; pydantic names them all when a campaign has another
    Channel = Literal[CHANNELS]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# The ``[trigger]`` table: one of the registered trigger types (regard.triggers), told
# apart by its ``type``. mypy sees their common base class.
if TYPE_CHECKING:
    Trigger = BaseTrigger
else:
    Trigger = Annotated[reduce(operator.or_, trigger_types()), Field(discriminator="type")]


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


# the trigger types an [exit] is allowed for: those whose occasion has a start to count from
EXIT_TRIGGERS = ("event", "post_purchase", "milestone", "followup")


class Exit(StrictModel):
    """``[exit]``: the journey ends for a contact with an event of this type (passing
    ``where``) after the occasion's start: skipped ``exited`` at the tick, cancelled
    ``exited`` at dispatch."""

    event: str
    where: Filter = {}


class Card(StrictModel):
    design: str | None = None
    font: str | None = None


class Campaign(StrictModel):
    name: str | None = None
    channel: Channel
    provider: str
    template: str
    enabled: bool = True
    # marketing advertises (consent, unsubscribes, the unsubscribe link apply); service is
    # what the customer needs about their own order or account (only the address counts)
    purpose: Literal["marketing", "service"] = "marketing"
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
    exit: Exit | None = None
    card: Card | None = None

    _id: str = PrivateAttr(default="")

    @property
    def id(self) -> str:
        # read where pydantic keeps private attributes: ``self._id`` goes through
        # ``BaseModel.__getattr__`` (2 µs, and a tick asks for it per due occasion)
        return self.__pydantic_private__["_id"]  # type: ignore[index,no-any-return]

    @property
    def title(self) -> str:
        return self.name or self.id

    @model_validator(mode="after")
    def _dates_in_order(self) -> Campaign:
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            raise ValueError("ends_at is before starts_at")
        return self


def describe_trigger(campaign: Campaign) -> str:
    """A short human description of the trigger: ``post_purchase +2d (#1)``."""
    return campaign.trigger.describe()
