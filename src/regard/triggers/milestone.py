"""``milestone``: due when the order that first takes ``order_count`` or ``total_spent``
to at least ``threshold`` occurred, plus delay. Occasion key ``<metric>:<threshold>``,
the threshold in its shortest decimal form (``total_spent:500`` for 500 and 500.00,
``total_spent:99.9`` for 99.90), so that rewriting the number never re-sends."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

from regard.campaigns.model import MilestoneTrigger
from regard.triggers import Occasion, Span, seconds

# money is summed as REAL; six places absorb binary rounding (0.1 + 0.2) without ever
# merging two amounts a shop could tell apart
_SCALE = 6


def threshold_text(threshold: Decimal) -> str:
    """``Decimal("500.00")`` → ``"500"``, ``Decimal("99.90")`` → ``"99.9"``."""
    text = format(threshold.normalize(), "f")
    return text


def occasion_key(trigger: MilestoneTrigger) -> str:
    """``order_count:5``, ``total_spent:500``."""
    return f"{trigger.metric}:{threshold_text(trigger.threshold)}"


def due(conn: sqlite3.Connection, trigger: MilestoneTrigger, span: Span) -> list[Occasion]:
    """The first order per contact that reaches the threshold, if it occurred in the span.

    Candidates are the contacts with an order in ``[lo - delay, hi - delay]`` (index: type,
    time); only their orders up to that range are ranked and summed.
    """
    delay = seconds(trigger.delay)
    lo, hi = span.lo - delay, min(span.hi - delay, span.at)
    metric = "n" if trigger.metric == "order_count" else f"round(running, {_SCALE})"
    clause, ids = span.contact_clause("e.contact_id")
    sql = f"""
        WITH candidates AS (
            SELECT DISTINCT e.contact_id FROM events e
            WHERE e.type = 'order' AND e.occurred_at BETWEEN ? AND ?{clause}
        ), ranked AS (
            SELECT o.contact_id, o.id, o.occurred_at,
                   row_number() OVER w AS n,
                   sum(coalesce(o.amount, 0)) OVER w AS running
            FROM candidates cand JOIN events o ON o.contact_id = cand.contact_id
            WHERE o.type = 'order' AND o.occurred_at <= ?
            WINDOW w AS (PARTITION BY o.contact_id ORDER BY o.occurred_at, o.id
                         ROWS UNBOUNDED PRECEDING)
        ), reached AS (
            SELECT contact_id, id, occurred_at,
                   row_number() OVER (PARTITION BY contact_id ORDER BY occurred_at, id) AS first
            FROM ranked WHERE {metric} >= ?
        )
        SELECT contact_id, id, occurred_at FROM reached
        WHERE first = 1 AND occurred_at >= ?
    """
    params: list[object] = [lo, hi, *ids, hi, float(trigger.threshold), lo]
    key = occasion_key(trigger)
    return [
        Occasion(occurred_at + delay, contact_id, key, event_id)
        for contact_id, event_id, occurred_at in conn.execute(sql, params)
    ]
