"""``inactivity``: a contact whose last activity (events of the trigger's types) was at L,
with at least ``min_events`` such events by then, lapses at L + after. Occasion key:
``since:<L as UTC ISO>``, so a new activity starts a new lapse.

``min_events = 0`` also lapses contacts who were never active, counted from their
``signup_at``."""

from __future__ import annotations

import sqlite3

from regard.campaigns.model import InactivityTrigger
from regard.times import iso
from regard.triggers import Occasion, Span, seconds


def due(conn: sqlite3.Connection, trigger: InactivityTrigger, span: Span) -> list[Occasion]:
    """Contacts whose last activity as of ``at`` lies in ``[lo - after, hi - after]``.

    The range scan on (type, time) finds the candidates; the per-contact index on
    (contact, type, time) confirms that nothing newer happened by ``at``.
    """
    after = seconds(trigger.after)
    lo, hi = span.lo - after, min(span.hi - after, span.at)
    types = list(dict.fromkeys(trigger.events))
    marks = ", ".join("?" for _ in types)
    clause, ids = span.contact_clause("e.contact_id")
    sql = f"""
        SELECT contact_id, last, (
            SELECT max(l.id) FROM events l
            WHERE l.contact_id = cand.contact_id AND l.type IN ({marks}) AND l.occurred_at = last
        ) FROM (
            SELECT e.contact_id, max(e.occurred_at) AS last FROM events e
            WHERE e.type IN ({marks}) AND e.occurred_at BETWEEN ? AND ?{clause}
            GROUP BY e.contact_id
        ) cand
        WHERE NOT EXISTS (
            SELECT 1 FROM events x
            WHERE x.contact_id = cand.contact_id AND x.type IN ({marks})
              AND x.occurred_at > last AND x.occurred_at <= ?)
          AND (SELECT count(*) FROM events y
               WHERE y.contact_id = cand.contact_id AND y.type IN ({marks})
                 AND y.occurred_at <= last) >= ?
    """
    params: list[object] = [*types, *types, lo, hi, *ids, *types, span.at, *types]
    params.append(trigger.min_events)
    found = [
        Occasion(last + after, contact_id, f"since:{iso(last)}", event_id)
        for contact_id, last, event_id in conn.execute(sql, params)
    ]
    if trigger.min_events == 0:
        found.extend(_never_active(conn, types, after, lo, hi, span))
    return found


def _never_active(
    conn: sqlite3.Connection, types: list[str], after: int, lo: int, hi: int, span: Span
) -> list[Occasion]:
    """Contacts without any activity by ``at`` lapse from their sign-up (index: signup_at)."""
    marks = ", ".join("?" for _ in types)
    clause, ids = span.contact_clause("c.id")
    sql = f"""
        SELECT c.id, c.signup_at FROM contacts c
        WHERE c.signup_at BETWEEN ? AND ?{clause}
          AND NOT EXISTS (SELECT 1 FROM events x WHERE x.contact_id = c.id
                          AND x.type IN ({marks}) AND x.occurred_at <= ?)
    """
    rows = conn.execute(sql, [lo, hi, *ids, *types, span.at])
    return [
        Occasion(signup + after, contact_id, f"since:{iso(signup)}", None)
        for contact_id, signup in rows
    ]
