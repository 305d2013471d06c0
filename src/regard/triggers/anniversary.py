"""``anniversary``: the n-th anniversary (n ≥ 1, or only the listed ``years``) of a date,
due at ``at`` local time on that day in the contact's time zone, plus ``offset``.
Occasion key ``<field>:<year of the anniversary>``.

D is the field's date: ``birthday`` and date attributes are dates as written (a birthday
has no time zone); ``signup_at`` and ``first_order_at`` are instants, and D is their date
in the contact's time zone (the config's when the contact has none). 29 February falls on
28 February in common years. A local time that does not exist (the hour skipped when
clocks go forward) is read with the offset before the change, so it lands that much later
on the wall clock (02:30 → 03:30); a local time that happens twice is the first of the two.

Candidates are found by month-day through expression indexes, so the cost follows the
anniversaries in the span, not the number of contacts. Date attributes have no index:
they are scanned (one pass over the contacts in SQL).
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from regard.campaigns.model import AnniversaryTrigger
from regard.config import Config
from regard.times import from_epoch, to_epoch, zone
from regard.triggers import Occasion, Span, seconds

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


def anniversary_due(trigger: AnniversaryTrigger, d: date, year: int, tz: ZoneInfo) -> int | None:
    """The due instant of D's anniversary in ``year`` (None when that is not an n ≥ 1 in
    ``years``)."""
    n = year - d.year
    if n < 1 or (trigger.years is not None and n not in trigger.years):
        return None
    local = datetime.combine(nth_anniversary(d, year), trigger.at, tzinfo=tz)
    return to_epoch(local) + seconds(trigger.offset)


def due(
    conn: sqlite3.Connection, config: Config, trigger: AnniversaryTrigger, span: Span
) -> list[Occasion]:
    """Anniversaries in the span, for contacts whose date's month-day can fall in it."""
    offset = seconds(trigger.offset)
    first = (from_epoch(span.lo - offset) - _MARGIN).date()
    last = (from_epoch(span.hi - offset) + _MARGIN).date()
    # an instant's UTC month-day is within a day of its local one
    widen = timedelta(days=1 if trigger.field in ("signup_at", "first_order_at") else 0)
    days = _month_days(first - widen, last + widen)
    found: list[Occasion] = []
    for contact_id, tz_name, value in _candidates(conn, trigger.field, days, span):
        tz = contact_zone(tz_name, config.timezone)
        d = _date_of(value, tz)
        if d is None:
            continue
        for year in range(first.year, last.year + 1):
            due_at = anniversary_due(trigger, d, year, tz)
            if due_at is not None and span.lo <= due_at <= span.hi:
                found.append(Occasion(due_at, contact_id, f"{trigger.field}:{year}", None))
    return found


def _month_days(first: date, last: date) -> list[str] | None:
    """The ``MM-DD`` of every day from first to last (None: all of them)."""
    if (last - first).days >= 366:
        return None
    days = {(first + timedelta(days=i)).strftime("%m-%d") for i in range((last - first).days + 1)}
    if "02-28" in days or "03-01" in days:
        days.add("02-29")
    return sorted(days)


def _candidates(
    conn: sqlite3.Connection, field: str, days: list[str] | None, span: Span
) -> list[tuple[str, str | None, object]]:
    """(contact id, time zone, the field's value as of ``at``) for the month-days."""
    params: list[object] = []
    index = ""
    if field == "birthday":
        value, key, index = "c.birthday", "substr(c.birthday, 6, 5)", "contacts_birthday"
    elif field == "signup_at":
        value, key = "c.signup_at", "strftime('%m-%d', c.signup_at, 'unixepoch')"
        index = "contacts_signup_day"
    elif field == "first_order_at":
        # the stored fact finds the candidates; the events say what it was as of `at`
        value = (
            "(SELECT min(x.occurred_at) FROM events x"
            " WHERE x.contact_id = c.id AND x.type = 'order' AND x.occurred_at <= ?)"
        )
        key = "strftime('%m-%d', c.first_order_at, 'unixepoch')"
        index = "contacts_first_order_day"
        params.append(span.at)
    else:
        value, key = "json_extract(c.attributes, ?)", "substr(value, 6, 5)"
        params.append(f'$."{field}"')
    # the month-day index, always: table statistics must not turn this into a scan
    source = f"contacts c INDEXED BY {index}" if days is not None and index else "contacts c"
    sql = f"SELECT c.id, c.timezone, {value} AS value FROM {source} WHERE value IS NOT NULL"
    if days is not None:
        sql += f" AND {key} IN ({', '.join('?' for _ in days)})"
        params.extend(days)
    if field == "signup_at":
        sql += " AND c.signup_at <= ?"
        params.append(span.at)
    clause, ids = span.contact_clause("c.id")
    return list(conn.execute(sql + clause, [*params, *ids]))


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
