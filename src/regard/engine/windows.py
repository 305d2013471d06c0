"""Delivery windows and daily limits, in the contact's local time.

A pending delivery outside its campaign's ``[window]`` waits for the next opening; over
the campaign's ``daily_limit`` (deliveries sent in the contact's local day) it waits for
the next local day, the contacts with the highest ``total_spent`` going first. Both only
move ``not_before``: the dispatcher claims pending rows with ``not_before ≤ now``.

The window and the daily limit are the ones stored on the delivery when the tick decided
it, not the campaign file's now: a campaign edited, broken or deleted since does not lose
its deliveries their window (deliveries recorded before regard stored them fall back to
their campaign file, as before).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from regard.campaigns.model import WEEKDAYS, Campaign, Window
from regard.config import Config
from regard.store import Store
from regard.store.records import PacedDelivery
from regard.times import Instant, from_epoch, to_epoch
from regard.triggers.anniversary import contact_zone


def _local_instant(day: date, hour: int, tz: ZoneInfo) -> int:
    """``hour``:00 local on ``day`` (24 = the next midnight). A local time that does not
    exist is read with the offset before the change, so it lands later on the wall clock."""
    if hour == 24:
        day, hour = day + timedelta(days=1), 0
    return to_epoch(datetime.combine(day, time(hour), tzinfo=tz))


def next_opening(window: Window | None, t: int, tz: ZoneInfo) -> int:
    """``t`` itself when it is inside the window, else the window's next opening."""
    if window is None or not window.days:
        return t
    start_hour, end_hour = window.hours
    local = from_epoch(t).astimezone(tz)
    for ahead in range(8):
        day = local.date() + timedelta(days=ahead)
        if WEEKDAYS[day.weekday()] not in window.days:
            continue
        opens, closes = _local_instant(day, start_hour, tz), _local_instant(day, end_hour, tz)
        if opens <= t < closes:
            return t
        if opens > t:
            return opens
    return t  # unreachable with at least one day listed


def local_day(t: int, tz: ZoneInfo) -> tuple[int, int]:
    """``[start, end)`` of the local day containing ``t``."""
    day = from_epoch(t).astimezone(tz).date()
    return _local_instant(day, 0, tz), _local_instant(day, 24, tz)


def release_due(store: Store, config: Config, campaigns: Iterable[Campaign], at: Instant) -> int:
    """Hold back pending deliveries that are due (``not_before ≤ at``) but outside their
    window or over their daily limit; returns how many were deferred. ``campaigns``: the
    loaded campaigns, which pace only deliveries recorded before deliveries kept their own.

    Called at the end of each tick and by dispatch before it claims. The deliveries are
    read and paced in a read snapshot, outside the write lock (a big day has tens of
    thousands pending); the write transaction that defers them first asks again how many
    were sent on the local days concerned, and when a send came in between, paces again
    under the lock, so a daily limit is never granted twice. Idempotent: the deliveries
    it lets through are again the ones it lets through a moment later.
    """
    paced = {c.id: c for c in campaigns if c.window is not None or c.daily_limit > 0}
    with store.ticks.snapshot():
        deferred, spans, used = _deferrals(store, config, paced, at)
    with store.write():
        if spans and store.deliveries.used_in(spans) != used:
            deferred, _, _ = _deferrals(store, config, paced, at)
        if deferred:
            store.deliveries.defer(deferred)
    return len(deferred)


@dataclass(frozen=True)
class _Pacing:
    window: Window | None
    daily_limit: int


def _pacing(row: PacedDelivery, paced: dict[str, Campaign]) -> _Pacing:
    """The row's own pacing; a row recorded before rows kept it: its campaign's now."""
    if row["pace_daily_limit"] is None:
        campaign = paced[row["campaign"]]
        return _Pacing(campaign.window, campaign.daily_limit)
    window = row["pace_window"]
    return _Pacing(Window.model_validate_json(window) if window else None, row["pace_daily_limit"])


_Span = tuple[str, Instant, Instant]


def _deferrals(
    store: Store, config: Config, paced: dict[str, Campaign], at: Instant
) -> tuple[list[tuple[str, Instant]], list[_Span], list[int]]:
    """(delivery id, when it may go) of each due delivery that has to wait; and the local
    days of the daily limits with how many were sent on each (what the pacing counted)."""
    deferred: list[tuple[str, Instant]] = []
    limited: dict[tuple[str, str], list[tuple[PacedDelivery, _Pacing]]] = defaultdict(list)
    # a big day paces tens of thousands of rows with a handful of pacings and time zones:
    # each pacing read, each zone found and each opening worked out once
    pacings: dict[tuple[str | None, int | None, str], _Pacing] = {}
    zones: dict[str | None, ZoneInfo] = {}
    openings: dict[tuple[tuple[str | None, int | None, str], str], int] = {}
    for row in store.deliveries.due_paced(list(paced), at):
        own = row["pace_daily_limit"] is not None
        key = (row["pace_window"], row["pace_daily_limit"], "" if own else row["campaign"])
        pacing = pacings.get(key)
        if pacing is None:
            pacing = pacings[key] = _pacing(row, paced)
        tz = zones.get(row["timezone"])
        if tz is None:
            tz = zones[row["timezone"]] = contact_zone(row["timezone"], config.timezone)
        opening = openings.get((key, tz.key))
        if opening is None:
            opening = openings[(key, tz.key)] = next_opening(pacing.window, at, tz)
        if opening > at:
            deferred.append((row["id"], Instant(opening)))
        elif pacing.daily_limit > 0:
            limited[(row["campaign"], tz.key)].append((row, pacing))
    # a delivery a send-time rule stops or holds (unsubscribed, too late) is left out: it
    # takes no room under a daily limit. Asked only of the rows the pacing would hold, not
    # of every due one (a big day's window is open: the rules would read 50,000 messages)
    held = [i for i, _ in deferred] + [p[0]["id"] for g in limited.values() for p in g]
    stopped = store.deliveries.stopped_among(held, at)
    if stopped:
        deferred = [d for d in deferred if d[0] not in stopped]
        for local, group in list(limited.items()):
            kept = [p for p in group if p[0]["id"] not in stopped]
            if kept:
                limited[local] = kept
            else:
                del limited[local]
    days = {key: local_day(at, contact_zone(key[1], config.timezone)) for key in limited}
    spans = [
        (campaign_id, Instant(start), Instant(end))
        for (campaign_id, _), (start, end) in days.items()
    ]
    used = store.deliveries.used_in(spans)
    for ((campaign_id, tz_name), group), already in zip(limited.items(), used, strict=True):
        tz = contact_zone(tz_name, config.timezone)
        group.sort(
            key=lambda p: (-p[0]["total_spent"], p[0]["due_at"], p[0]["contact_id"], p[0]["id"])
        )
        granted = already
        for row, pacing in group:
            if granted < pacing.daily_limit:
                granted += 1
                continue
            tomorrow = next_opening(pacing.window, days[(campaign_id, tz_name)][1], tz)
            deferred.append((row["id"], Instant(tomorrow)))
    return deferred, spans, used
