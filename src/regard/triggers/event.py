"""``event`` and ``post_purchase``: each matching event is an occasion, due at
occurred_at + delay; with ``nth``, only the contact's n-th event of that type (by time,
ties by id). Occasion key: the event id."""

from __future__ import annotations

import sqlite3

from regard.campaigns.model import EventTrigger, PostPurchaseTrigger
from regard.config import Config
from regard.triggers import Occasion, Span, seconds
from regard.triggers.where import event_filter


def due(
    conn: sqlite3.Connection,
    config: Config,
    trigger: EventTrigger | PostPurchaseTrigger,
    span: Span,
) -> list[Occasion]:
    """Events of the trigger's type with occurred_at + delay in the span (index: type, time)."""
    delay = seconds(trigger.delay)
    params: list[object] = [trigger.event, span.lo - delay, min(span.hi - delay, span.at)]
    sql = """
        SELECT e.contact_id, e.id, e.occurred_at FROM events e
        WHERE e.type = ? AND e.occurred_at BETWEEN ? AND ?"""
    if trigger.nth is not None:
        # the rank counts only earlier events, all of which had occurred by `at`
        sql += """
          AND (SELECT count(*) FROM events p
               WHERE p.contact_id = e.contact_id AND p.type = e.type
                 AND (p.occurred_at < e.occurred_at
                      OR (p.occurred_at = e.occurred_at AND p.id < e.id))) = ?"""
        params.append(trigger.nth - 1)
    if trigger.where:
        where_sql, where_params = event_filter(trigger.where, "e", config.timezone)
        sql += f" AND ({where_sql})"
        params.extend(where_params)
    clause, ids = span.contact_clause("e.contact_id")
    sql += clause
    params.extend(ids)
    return [
        Occasion(occurred_at + delay, contact_id, event_id, event_id)
        for contact_id, event_id, occurred_at in conn.execute(sql, params)
    ]
