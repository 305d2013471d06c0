"""The aggregates of ``regard report``, ``regard status``, ``regard campaigns`` and the demo.

Every method answers counts in one set-based query (or a few); ratios, uplift and the
report's shape are the report's business (:mod:`regard.report`). Periods are closed,
``[since, until]``, in epoch seconds. A delivery belongs to the period its decision fell
in (``created_at``, the tick that decided it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import TypedDict

from regard.store.lifecycle import DeliveryState
from regard.store.retention import RetentionQueries
from regard.times import Instant

# the states ``status`` reports as waiting: not settled yet
BACKLOG_STATES = (DeliveryState.PENDING, DeliveryState.SENDING)


def week_start_sql(column: str) -> str:
    """SQL for the Monday (YYYY-MM-DD, UTC) that starts the week of epoch ``column``."""
    return f"date({column}, 'unixepoch', 'weekday 0', '-6 days')"


class StateCount(TypedDict):
    """Deliveries of one campaign in one state, with one reason (``'unknown'`` for none)."""

    campaign: str
    state: str
    reason: str
    deliveries: int


class ProviderSent(TypedDict):
    """Sent deliveries of one campaign through one provider, and the cost they recorded."""

    campaign: str
    provider: str
    sent: int
    priced: int  # how many of them carry a cost
    recorded: float  # the sum of those costs


class ChannelCount(TypedDict):
    """Deliveries of one campaign on one channel in one state."""

    campaign: str
    channel: str
    state: str
    deliveries: int


class SentDelivery(TypedDict):
    id: str
    campaign: str
    contact_id: str


class DeadLetter(TypedDict):
    """A dead delivery: ``dead_at`` is when it died (its last update)."""

    delivery_id: str
    campaign: str
    contact_id: str
    provider: str
    reason: str | None
    attempts: int
    dead_at: Instant


class DeadLetters(TypedDict):
    count: int
    latest: list[DeadLetter]


@dataclass(frozen=True)
class Arms:
    """The goal's two arms of one campaign: deliveries and how many converted."""

    contacted: int
    contacted_converted: int
    held_out: int
    held_out_converted: int


class Reports(RetentionQueries):
    """Set-based counts over deliveries and events."""

    def campaign_states(self, since: Instant, until: Instant) -> list[StateCount]:
        """Deliveries decided in the period, by campaign, state and reason."""
        rows = self.conn.execute(
            """
            SELECT campaign, state, coalesce(reason, 'unknown') AS reason, count(*) AS n
            FROM deliveries WHERE created_at BETWEEN ? AND ?
            GROUP BY campaign, state, reason
            """,
            (since, until),
        )
        return [StateCount(campaign=r[0], state=r[1], reason=r[2], deliveries=r[3]) for r in rows]

    def contacts_reached(self, since: Instant, until: Instant) -> dict[str, int]:
        """Per campaign: the distinct contacts of its deliveries decided in the period and
        sent (campaigns that reached nobody are left out)."""
        rows = self.conn.execute(
            """
            SELECT campaign, count(DISTINCT contact_id) AS n FROM deliveries
            WHERE created_at BETWEEN ? AND ? AND state = 'sent' GROUP BY campaign
            """,
            (since, until),
        )
        return {r[0]: r[1] for r in rows}

    def sent_by_provider(self, since: Instant, until: Instant) -> list[ProviderSent]:
        """Sent deliveries decided in the period, by campaign and provider, with how many
        carry a cost and its sum (0 when none does)."""
        rows = self.conn.execute(
            """
            SELECT campaign, provider, count(*) AS n, count(cost) AS priced,
                   coalesce(sum(cost), 0) AS recorded
            FROM deliveries WHERE created_at BETWEEN ? AND ? AND state = 'sent'
            GROUP BY campaign, provider
            """,
            (since, until),
        )
        return [
            ProviderSent(campaign=r[0], provider=r[1], sent=r[2], priced=r[3], recorded=r[4])
            for r in rows
        ]

    def goal_arms(
        self, campaign: str, goal_event: str, within: int, since: Instant, until: Instant
    ) -> Arms:
        """The contacted (sent) and held-out deliveries of ``campaign`` decided in the period,
        and those of each arm followed by the goal event.

        Converted: a ``goal_event`` of the contact after the anchor and at most ``within``
        seconds after it. The anchor of a sent delivery is its ``sent_at`` (sent by
        ``until``); of a held-out one, the tick that held it out (``created_at``), the
        moment it would have been sent. Events after ``until`` do not count.
        """
        row = self.conn.execute(
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
                      AND (e.voided_at IS NULL OR e.voided_at > :until)
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

    def sent_per_week(self, since: Instant, until: Instant) -> dict[str, dict[str, int]]:
        """Sent deliveries decided in the period per campaign per week of their sending
        (the Monday that starts it, UTC, ``YYYY-MM-DD``), weeks in order."""
        weeks: dict[str, dict[str, int]] = defaultdict(dict)
        for row in self.conn.execute(
            f"""
            SELECT campaign, {week_start_sql("sent_at")} AS week, count(*) AS n
            FROM deliveries
            WHERE state = 'sent' AND created_at BETWEEN ? AND ?
            GROUP BY campaign, week ORDER BY week
            """,
            (since, until),
        ):
            weeks[row[0]][row[1]] = row[2]
        return dict(weeks)

    def latest_activity(self) -> Instant | None:
        """The latest instant the store knows of: an event, a delivery's decision or its
        sending; None for a store with neither events nor deliveries."""
        latest = self.conn.execute(
            "SELECT max(coalesce((SELECT max(occurred_at) FROM events), 0),"
            " coalesce((SELECT max(max(created_at), coalesce(max(sent_at), 0))"
            " FROM deliveries), 0))"
        ).fetchone()[0]
        return Instant(latest) if latest else None

    def deliveries_by_campaign(self) -> dict[str, dict[str, int]]:
        """Every delivery ever recorded, by campaign and state: ``{"winback": {"sent": 3}}``."""
        counts: dict[str, dict[str, int]] = {}
        for campaign, state, n in self.conn.execute(
            "SELECT campaign, state, count(*) FROM deliveries GROUP BY campaign, state"
        ):
            counts.setdefault(campaign, {})[state] = n
        return counts

    def decided_since(self, since: Instant) -> list[ChannelCount]:
        """Deliveries decided at or after ``since``, by campaign, channel and state, in
        campaign order."""
        rows = self.conn.execute(
            """
            SELECT campaign, channel, state, count(*) AS n FROM deliveries
            WHERE created_at >= ? GROUP BY campaign, channel, state ORDER BY campaign
            """,
            (since,),
        )
        return [
            ChannelCount(campaign=r[0], channel=r[1], state=r[2], deliveries=r[3]) for r in rows
        ]

    def sent_at(self, at: Instant, campaigns: Collection[str]) -> list[SentDelivery]:
        """The deliveries of ``campaigns`` sent at exactly ``at`` (by the tick at ``at``), in
        id order."""
        if not campaigns:
            return []
        rows = self.conn.execute(
            f"""
            SELECT id, campaign, contact_id FROM deliveries
            WHERE state = 'sent' AND sent_at = ?
              AND campaign IN ({",".join("?" for _ in campaigns)})
            ORDER BY id
            """,
            (at, *campaigns),
        )
        return [SentDelivery(id=r[0], campaign=r[1], contact_id=r[2]) for r in rows]

    def backlog(self) -> dict[str, dict[str, int]]:
        """Deliveries not yet settled, by state and provider: ``{"pending": {"outbox": 3},
        "sending": {}}``; both states are always there, providers in name order."""
        backlog: dict[str, dict[str, int]] = {state.value: {} for state in BACKLOG_STATES}
        rows = self.conn.execute(
            "SELECT state, provider, count(*) FROM deliveries "
            "WHERE state IN ('pending', 'sending') GROUP BY state, provider "
            "ORDER BY state, provider"
        )
        for state, provider, count in rows:
            backlog[state][provider] = count
        return backlog

    def dead_letters(self, latest: int) -> DeadLetters:
        """How many deliveries are dead, and the ``latest`` most recently dead of them."""
        count = self.conn.execute(
            "SELECT count(*) FROM deliveries WHERE state = 'dead'"
        ).fetchone()[0]
        rows = self.conn.execute(
            "SELECT id, campaign, contact_id, provider, reason, attempts, updated_at "
            "FROM deliveries WHERE state = 'dead' ORDER BY updated_at DESC, id LIMIT ?",
            (latest,),
        )
        return DeadLetters(
            count=count,
            latest=[
                DeadLetter(
                    delivery_id=r[0],
                    campaign=r[1],
                    contact_id=r[2],
                    provider=r[3],
                    reason=r[4],
                    attempts=r[5],
                    dead_at=Instant(r[6]),
                )
                for r in rows
            ],
        )
