"""``anniversary``: the n-th anniversary (n ≥ 1, or only the listed ``years``) of a date,
due at ``at`` local time on that day in the contact's time zone, plus ``offset``.
Occasion key ``<field>:<year of the anniversary>``.

D is the field's date: ``birthday`` and date attributes are dates as written (a birthday
has no time zone); ``signup_at`` and ``first_order_at`` are instants, and D is their date
in the contact's time zone (the config's when the contact has none). 29 February falls on
28 February in common years. A local time that does not exist (the hour skipped when
clocks go forward) is read with the offset before the change, so it lands that much later
on the wall clock (02:30 → 03:30); a local time that happens twice is the first of the two.

Candidates are found by month-day through expression indexes
(:meth:`regard.store.occasions.Occasions.dated_contacts`), so the cost follows the
anniversaries in the span, not the number of contacts. Date attributes have no index:
they are scanned (one pass over the contacts in SQL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from regard.config import Config, SignedDuration
from regard.grammar import contact_kind
from regard.store import Store
from regard.times import Instant, format_duration, from_epoch, to_epoch, zone
from regard.triggers.base import Occasion, Problem, Span, Trigger, seconds

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# a local date is within a day of the UTC date; two more absorb `at` and offsets in hours
_MARGIN = timedelta(days=2)


@lru_cache(maxsize=512)
def contact_zone(name: str | None, default: str) -> ZoneInfo:
    """The contact's zone; the config's when the contact has none (or an unknown one)."""
    if name:
        try:
            return zone(name)
        except ValueError:
            pass
    return zone(default)


def nth_anniversary(d: date, year: int) -> date:
    """D's anniversary in ``year``: 29 February → 28 February in common years."""
    try:
        return d.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


class AnniversaryTrigger(Trigger):
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

    def due(self, store: Store, config: Config, span: Span) -> list[Occasion]:
        """Anniversaries in the span, for contacts whose date's month-day can fall in it."""
        offset = seconds(self.offset)
        first = (from_epoch(span.lo - offset) - _MARGIN).date()
        last = (from_epoch(span.hi - offset) + _MARGIN).date()
        # an instant's UTC month-day is within a day of its local one
        widen = timedelta(days=1 if self.field in ("signup_at", "first_order_at") else 0)
        days = _month_days(first - widen, last + widen)
        found: list[Occasion] = []
        dated = store.occasions.dated_contacts(
            self.field, days, span.at, contact_ids=span.contact_ids
        )
        for contact_id, tz_name, value in dated:
            tz = contact_zone(tz_name, config.timezone)
            d = _date_of(value, tz)
            if d is None:
                continue
            for year in range(first.year, last.year + 1):
                due_at = anniversary_due(self, d, year, tz)
                if due_at is not None and span.lo <= due_at <= span.hi:
                    found.append(Occasion(due_at, contact_id, f"{self.field}:{year}", None))
        return found

    def describe(self) -> str:
        text = f"anniversary {self.field}"
        if self.offset:
            text += f" {format_duration(self.offset)}"
        return text

    def no_occasion(self) -> str:
        return f"no {self.field} anniversary for this contact (is {self.field} set?)"

    @classmethod
    def problems(cls, raw: Mapping[str, Any]) -> list[Problem]:
        """``field`` must be a date: birthday, signup_at, first_order_at or an attribute."""
        field = raw.get("field")
        if isinstance(field, str) and contact_kind(field) not in ("date", "instant", "json"):
            reason = (
                f"{field} is not a date; use birthday, signup_at, first_order_at "
                "or a date attribute"
            )
            return [(("field",), reason)]
        return []


def anniversary_due(
    trigger: AnniversaryTrigger, d: date, year: int, tz: ZoneInfo
) -> Instant | None:
    """The due instant of D's anniversary in ``year`` (None when that is not an n ≥ 1 in
    ``years``)."""
    n = year - d.year
    if n < 1 or (trigger.years is not None and n not in trigger.years):
        return None
    local = datetime.combine(nth_anniversary(d, year), trigger.at, tzinfo=tz)
    return Instant(to_epoch(local) + seconds(trigger.offset))


def _month_days(first: date, last: date) -> list[str] | None:
    """The ``MM-DD`` of every day from first to last (None: all of them)."""
    if (last - first).days >= 366:
        return None
    days = {(first + timedelta(days=i)).strftime("%m-%d") for i in range((last - first).days + 1)}
    if "02-28" in days or "03-01" in days:
        days.add("02-29")
    return sorted(days)


def _date_of(value: object, tz: ZoneInfo) -> date | None:
    """D: a date as written, or an instant's date in the contact's zone."""
    if isinstance(value, int):
        return from_epoch(value).astimezone(tz).date()
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
