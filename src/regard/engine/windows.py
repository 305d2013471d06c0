"""Delivery windows and daily limits, in the contact's local time.

A pending delivery outside its campaign's ``[window]`` waits for the next opening; over
the campaign's ``daily_limit`` (deliveries sent in the contact's local day) it waits for
the next local day, the contacts with the highest ``total_spent`` going first. Both only
move ``not_before``: the dispatcher claims pending rows with ``not_before ≤ now``.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from regard.campaigns.model import WEEKDAYS, Campaign, Window
from regard.config import Config
from regard.store import Store
from regard.times import from_epoch, to_epoch
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


def release_due(
    conn: sqlite3.Connection | Store,
    config: Config,
    campaigns: Iterable[Campaign],
    at: int | datetime,
) -> int:
    """Hold back pending deliveries that are due (``not_before ≤ at``) but outside their
    window or over their campaign's daily limit; returns how many were deferred.

    Called at the end of each tick and by dispatch before it claims. Idempotent: the
    deliveries it lets through are again the ones it lets through a moment later.
    """
    conn = conn.conn if isinstance(conn, Store) else conn  # the tick passes its store
    now = at if isinstance(at, int) else to_epoch(at)
    paced = {c.id: c for c in campaigns if c.window is not None or c.daily_limit > 0}
    if not paced:
        return 0
    marks = ", ".join("?" for _ in paced)
    rows = conn.execute(
        f"""
        SELECT d.id, d.campaign, d.contact_id, d.due_at, c.timezone,
               coalesce(c.total_spent, 0) AS total_spent
        FROM deliveries d LEFT JOIN contacts c ON c.id = d.contact_id
        WHERE d.state = 'pending' AND d.campaign IN ({marks})
          AND (d.not_before <= ? OR (d.not_before IS NULL AND d.due_at <= ?))
        """,
        [*paced, now, now],
    ).fetchall()
    deferred: list[tuple[int, str]] = []
    limited: dict[tuple[str, str], list[sqlite3.Row]] = defaultdict(list)
    for row in rows:
        campaign = paced[row["campaign"]]
        tz = contact_zone(row["timezone"], config.timezone)
        opening = next_opening(campaign.window, now, tz)
        if opening > now:
            deferred.append((opening, row["id"]))
        elif campaign.daily_limit > 0:
            limited[(campaign.id, tz.key)].append(row)
    for (campaign_id, tz_name), group in limited.items():
        campaign = paced[campaign_id]
        tz = contact_zone(tz_name, config.timezone)
        start, end = local_day(now, tz)
        used = conn.execute(
            """
            SELECT count(*) FROM deliveries WHERE campaign = ?
              AND ((state = 'sent' AND sent_at >= ? AND sent_at < ?) OR state = 'sending')
            """,
            (campaign_id, start, end),
        ).fetchone()[0]
        room = max(0, campaign.daily_limit - used)
        group.sort(key=lambda r: (-r["total_spent"], r["due_at"], r["contact_id"], r["id"]))
        tomorrow = next_opening(campaign.window, end, tz)
        deferred.extend((tomorrow, row["id"]) for row in group[room:])
    conn.executemany(
        "UPDATE deliveries SET not_before = ?, updated_at = ? WHERE id = ?",
        [(when, now, delivery_id) for when, delivery_id in deferred],
    )
    return len(deferred)
