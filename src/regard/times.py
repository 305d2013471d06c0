"""Instants, durations and their text forms, parsed in one place.

The store keeps every instant as an integer of UTC unix seconds; JSON output and occasion
keys use ``YYYY-MM-DDTHH:MM:SSZ``. Durations are an integer and a unit (``s m h d w``),
exact lengths: a day is 24 hours.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import NewType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"^\s*(-)?\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LONGEST_DURATION = 36525 * 86400
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*$")
_RATE_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: str) -> float:
    """``"10/s"`` → 10.0 requests per second; ``"30/m"`` → 0.5. Raises ValueError."""
    m = _RATE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(
            f'{text!r} is not a rate: a positive number of requests per s, m or h, like "10/s"'
        )
    return float(m.group(1)) / _RATE_PER[m.group(2)]


def parse_duration(text: str | timedelta, *, allow_negative: bool = False) -> timedelta:
    """``"90d"`` → 90 days; ``"-7d"`` where ``allow_negative``. Raises ValueError."""
    if isinstance(text, timedelta):
        return text
    if not isinstance(text, str):
        raise ValueError(f'a duration is a string like "3d" or "12h", not {text!r}')
    m = _DURATION.match(text)
    if not m:
        raise ValueError(
            f'{text!r} is not a duration: an integer and a unit s, m, h, d or w, like "3d"'
        )
    sign, amount, unit = m.groups()
    if sign and not allow_negative:
        raise ValueError(f"{text!r}: a negative duration is not allowed here")
    seconds = int(amount) * _UNIT_SECONDS[unit]
    if seconds > _LONGEST_DURATION:
        # longer is a typo, and would overflow the date sums it takes part in
        raise ValueError(f"{text!r} is longer than 100 years")
    return timedelta(seconds=-seconds if sign else seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest exact text form of a duration: 86400s → ``"1d"``."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{sign}{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{sign}{seconds}s"


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``. Raises ValueError for an unknown zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name like Europe/Berlin)"
        ) from exc


def parse_instant(text: str, default_tz: tzinfo) -> datetime:
    """ISO 8601 date or date-time → an aware UTC datetime; naive values are in ``default_tz``.

    A bare date means its midnight. Raises ValueError with a readable message.
    """
    raw = text.strip()
    if not raw:
        raise ValueError("empty time")
    candidate = raw[:-1] + "+00:00" if raw[-1:] in "zZ" else raw
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError:
        try:
            value = datetime.combine(date.fromisoformat(raw), datetime.min.time())
        except ValueError:
            raise ValueError(
                f"{text!r} is not an ISO 8601 time (like 2026-03-01T14:30:00+01:00)"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_tz)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(_out_of_range(text)) from None
    if not EARLIEST <= value < LATEST:
        raise ValueError(_out_of_range(text))
    return value


# Instants outside these years are typos; refusing them keeps every calendar sum the engine
# and reports do (a year back, a local day, a window) inside what a datetime can hold.
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
EARLIEST_EPOCH = int(EARLIEST.timestamp())
LATEST_EPOCH = int(LATEST.timestamp())


def _out_of_range(text: str) -> str:
    return f"{text!r} is outside the years 1000 to 2999 regard accepts"


def parse_date(text: str) -> date:
    """ISO 8601 calendar date ``YYYY-MM-DD``. Raises ValueError."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


Instant = NewType("Instant", int)
"""A moment as UTC unix seconds. A tick's T is converted once, where it enters (the CLI's
``--at``, the daemon's clock), and travels as an Instant down to the store's queries."""


def to_epoch(value: datetime) -> Instant:
    """Aware datetime → UTC unix seconds (sub-second precision is dropped)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: attach a time zone first")
    return Instant(int(value.timestamp() // 1))


def now_instant() -> Instant:
    """The current instant, whole seconds (leases and ``updated_at`` use the real clock)."""
    return to_epoch(utcnow())


def from_epoch(seconds: int) -> datetime:
    """UTC unix seconds → aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def iso(value: int | datetime | None) -> str | None:
    """UTC ISO 8601 text, ``2026-11-22T07:14:09Z``, for epoch seconds or an aware datetime."""
    if value is None:
        return None
    if isinstance(value, int):
        value = from_epoch(value)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> datetime:
    """The current instant, aware, in UTC, whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)
