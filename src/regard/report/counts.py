"""What each campaign did in a period: deliveries by state, skipped by reason, cost, and
the two arms of its goal (contacted and held out), each counted in one set-based query.

A delivery belongs to the period its decision fell in (``created_at``, the tick that
decided it). Conversion: a goal event of the contact that occurred after the anchor and
at most ``within`` after it. The anchor of a sent delivery is its ``sent_at``; of a
held-out one, the tick that held it out (``created_at``) — the moment it would have been
sent, since dispatch follows evaluation in every tick. Events after the report's end do
not exist for it.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from regard.config import Config

STATES = ("pending", "sending", "sent", "dead", "held_out", "skipped", "cancelled")


@dataclass
class CampaignCounts:
    """Deliveries of one campaign decided in the period, by state."""

    due: int = 0
    sent: int = 0
    held_out: int = 0
    pending: int = 0
    dead: int = 0
    cancelled: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    contacts: int = 0
    cost: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "sent": self.sent,
            "held_out": self.held_out,
            "pending": self.pending,
            "dead": self.dead,
            "cancelled": self.cancelled,
            "skipped": dict(sorted(self.skipped.items())),
            "contacts": self.contacts,
            "cost": self.cost,
        }


def campaign_counts(
    conn: sqlite3.Connection, config: Config, since: int, until: int
) -> dict[str, CampaignCounts]:
    """Counts for every campaign with a delivery decided in [since, until]."""
    counts: dict[str, CampaignCounts] = defaultdict(CampaignCounts)
    rows = conn.execute(
        """
        SELECT campaign, state, coalesce(reason, 'unknown') AS reason, count(*) AS n
        FROM deliveries WHERE created_at BETWEEN ? AND ?
        GROUP BY campaign, state, reason
        """,
        (since, until),
    )
    for row in rows:
        c = counts[row["campaign"]]
        c.due += row["n"]
        state = row["state"]
        if state == "skipped":
            c.skipped[row["reason"]] = c.skipped.get(row["reason"], 0) + row["n"]
        elif state == "sending":  # in flight: still waiting for its provider's answer
            c.pending += row["n"]
        else:
            setattr(c, state, getattr(c, state) + row["n"])
    for row in conn.execute(
        """
        SELECT campaign, count(DISTINCT contact_id) AS n FROM deliveries
        WHERE created_at BETWEEN ? AND ? AND state = 'sent' GROUP BY campaign
        """,
        (since, until),
    ):
        counts[row["campaign"]].contacts = row["n"]
    prices = config.provider_costs
    for row in conn.execute(
        """
        SELECT campaign, provider, count(*) AS n, count(cost) AS priced,
               coalesce(sum(cost), 0) AS recorded
        FROM deliveries WHERE created_at BETWEEN ? AND ? AND state = 'sent'
        GROUP BY campaign, provider
        """,
        (since, until),
    ):
        price = prices.get(row["provider"])
        if row["priced"] == 0 and price is None:
            continue
        extra = (row["n"] - row["priced"]) * (price or 0.0)
        c = counts[row["campaign"]]
        c.cost = (c.cost or 0.0) + row["recorded"] + extra
    return dict(counts)


@dataclass(frozen=True)
class Arms:
    """The goal's two arms of one campaign: deliveries and how many converted."""

    contacted: int
    contacted_converted: int
    held_out: int
    held_out_converted: int


def goal_arms(
    conn: sqlite3.Connection,
    campaign: str,
    goal_event: str,
    within: int,
    since: int,
    until: int,
) -> Arms:
    """Count contacted (sent) and held-out deliveries and those followed by the goal event."""
    row = conn.execute(
        """
        WITH arm AS (
            SELECT d.contact_id, d.state,
                   CASE d.state WHEN 'sent' THEN d.sent_at ELSE d.created_at END AS anchor
            FROM deliveries d
            WHERE d.campaign = :campaign AND d.state IN ('sent', 'held_out')
              AND d.created_at BETWEEN :since AND :until
              AND (d.state = 'held_out' OR d.sent_at <= :until)  -- sent by the report's end
        ),
        judged AS (
            SELECT arm.state, EXISTS (
                SELECT 1 FROM events e
                WHERE e.contact_id = arm.contact_id AND e.type = :goal
                  AND e.occurred_at > arm.anchor
                  AND e.occurred_at <= min(arm.anchor + :within, :until)
            ) AS converted
            FROM arm
        )
        SELECT
          count(CASE WHEN state = 'sent' THEN 1 END),
          coalesce(sum(CASE WHEN state = 'sent' THEN converted END), 0),
          count(CASE WHEN state = 'held_out' THEN 1 END),
          coalesce(sum(CASE WHEN state = 'held_out' THEN converted END), 0)
        FROM judged
        """,
        {
            "campaign": campaign,
            "goal": goal_event,
            "within": within,
            "since": since,
            "until": until,
        },
    ).fetchone()
    return Arms(*row)


def sent_per_week(conn: sqlite3.Connection, since: int, until: int) -> dict[str, dict[str, int]]:
    """Sent deliveries per campaign per week (the Monday that starts it, UTC)."""
    weeks: dict[str, dict[str, int]] = defaultdict(dict)
    for row in conn.execute(
        f"""
        SELECT campaign, {week_start_sql("sent_at")} AS week, count(*) AS n
        FROM deliveries
        WHERE state = 'sent' AND created_at BETWEEN ? AND ?
        GROUP BY campaign, week ORDER BY week
        """,
        (since, until),
    ):
        weeks[row["campaign"]][row["week"]] = row["n"]
    return dict(weeks)


def week_start_sql(column: str) -> str:
    """SQL for the Monday (YYYY-MM-DD, UTC) that starts the week of epoch ``column``."""
    return f"date({column}, 'unixepoch', 'weekday 0', '-6 days')"
