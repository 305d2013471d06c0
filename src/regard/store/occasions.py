"""What the triggers find due, and the due occasions' contacts as of an instant.

Every query answers for the store as it was at an instant ``at``: events that occurred
after ``at`` do not exist yet. Each is set-based and indexed, so its cost follows what is
due, not the size of the store. The trigger types (:mod:`regard.triggers`) turn their
rules (delays, lapses, anniversaries) into the bounds these queries take, and the rows
they return into occasions.

``contact_ids`` restricts any query to those contacts (``explain`` asks for one); None is
every contact.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from operator import attrgetter
from typing import Any, Literal, NamedTuple

from regard.store.area import Area
from regard.store.backends import dialect_of
from regard.store.contacts import DERIVED_FACTS, ContactReader, ContactRow
from regard.store.currencies import converted
from regard.store.filters import (
    audience_condition,
    event_condition,
    fact_sql,
    order_facts,
    visible,
)
from regard.times import Instant

# money is summed as REAL; six places absorb binary rounding (0.1 + 0.2) without ever
# merging two amounts a shop could tell apart
_SCALE = 6

# the contact fields an anniversary can be of, with their month-day expression index
_DATE_FIELDS = ("birthday", "signup_at", "first_order_at")


@dataclass(frozen=True, order=True, slots=True)
class Occasion:
    """One reason to contact one contact for one campaign, due at ``due_at``; ``event_id``
    is the triggering event, if the trigger has one; ``started_at`` is the start an
    ``[exit]`` counts from (the triggering event's occurred_at; for a follow-up the
    earlier delivery's sent_at), for the triggers that allow one."""

    due_at: Instant
    contact_id: str
    occasion: str
    event_id: str | None = None
    started_at: Instant | None = field(default=None, compare=False)


# the order of occasions (Occasion's own, by its compared fields), as a key: sorting a big
# day's 100k occasions by it compares tuples in C instead of calling __lt__ 1.5M times
occasion_order = attrgetter("due_at", "contact_id", "occasion", "event_id")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A due occasion and its contact as of the tick's instant (:func:`contact_from_row`'s
    mapping, its derived facts computed from the events that had occurred by then; as a
    :class:`~regard.store.contacts.ContactRow`, converted when more than a column is read)."""

    occasion: Occasion
    contact: Mapping[str, Any]


class EventAt(NamedTuple):
    """An event of a contact and when it occurred."""

    contact_id: str
    event_id: str
    occurred_at: Instant


class SentDelivery(NamedTuple):
    """A sent delivery of a campaign: whom, when, and its triggering event."""

    delivery_id: str
    contact_id: str
    sent_at: Instant
    event_id: str | None


class Started(NamedTuple):
    """An occasion's contact and the start its ``[exit]`` counts from (the question put
    to :meth:`Occasions.exited`)."""

    contact_id: str
    occasion: str
    started_at: Instant


class EventSeen(NamedTuple):
    """An event of a contact, when it occurred and when it was voided (None: never)."""

    contact_id: str
    event_id: str
    occurred_at: Instant
    voided_at: Instant | None


class LastActivity(NamedTuple):
    """A contact's last activity ``last`` and the event of it (the largest id at that
    instant)."""

    contact_id: str
    last: Instant
    event_id: str | None


class SignedUp(NamedTuple):
    """A contact and its ``signup_at``."""

    contact_id: str
    signup_at: Instant


class Activity(NamedTuple):
    """An instant at which a contact was active (events of some types), the event of it
    (the largest id then), when the contact was next active after it (None: never), and
    how many such events it had by then."""

    contact_id: str
    at: Instant
    event_id: str
    next_at: Instant | None
    events: int


class DatedContact(NamedTuple):
    """A contact, its time zone, and the value of a date field as stored: ISO text for
    ``birthday`` and date attributes (whatever an attribute holds), epoch seconds for
    ``signup_at`` and ``first_order_at``."""

    contact_id: str
    timezone: str | None
    value: object


def _among(column: str, contact_ids: Sequence[str] | None) -> tuple[str, list[str]]:
    """SQL restricting ``column`` to ``contact_ids`` (empty when unrestricted)."""
    if contact_ids is None:
        return "", []
    marks = ", ".join("?" for _ in contact_ids)
    return f" AND {column} IN ({marks})", list(contact_ids)


def _marks(values: Collection[object]) -> str:
    return ", ".join("?" for _ in values)


class Occasions(Area):
    """The trigger queries: set-based and indexed, their cost following what is due."""

    def events_between(
        self,
        event_type: str,
        lo: Instant,
        hi: Instant,
        *,
        nth: int | None = None,
        where: Mapping[str, Any] | None = None,
        tz: tzinfo | str = "UTC",
        contact_ids: Sequence[str] | None = None,
        at: Instant | None = None,
    ) -> list[EventAt]:
        """Events of ``event_type`` that occurred in ``[lo, hi]`` (index: type, time) and
        are not voided as of ``at`` (default ``hi``).

        ``nth``: only the contact's n-th event of that type, counted by time, ties by id
        (only earlier events not voided as of ``at`` count).
        ``where``: only events passing that filter (``[trigger] where``, its naive dates in
        ``tz``). Raises ValueError for an invalid filter.
        """
        seen_at = hi if at is None else at
        params: list[object] = [event_type, lo, hi]
        sql = f"""
            SELECT e.contact_id, e.id, e.occurred_at FROM events e
            WHERE e.type = ? AND e.occurred_at BETWEEN ? AND ? AND {visible("e", seen_at)}"""
        if nth is not None:
            sql += f"""
              AND (SELECT count(*) FROM events p
                   WHERE p.contact_id = e.contact_id AND p.type = e.type
                     AND {visible("p", seen_at)}
                     AND (p.occurred_at < e.occurred_at
                          OR (p.occurred_at = e.occurred_at AND p.id < e.id))) = ?"""
            params.append(nth - 1)
        if where:
            where_sql, where_params = event_condition(where, "e", tz)
            sql += f" AND ({where_sql})"
            params.extend(where_params)
        clause, ids = _among("e.contact_id", contact_ids)
        return [EventAt(*row) for row in self.conn.execute(sql + clause, [*params, *ids])]

    def events_over(
        self,
        event_type: str,
        lo: Instant,
        hi: Instant,
        seen_from: Instant,
        *,
        where: Mapping[str, Any] | None = None,
        tz: tzinfo | str = "UTC",
    ) -> list[EventSeen]:
        """Events of ``event_type`` that occurred in ``[lo, hi]`` and exist as of
        ``seen_from`` (not voided by then), with when they were voided, if ever: what the
        ticks of a stretch of ``simulate`` starting at ``seen_from`` each filter for their
        own instant (index: type, time). ``where`` as in :meth:`events_between`."""
        params: list[object] = [event_type, lo, hi]
        sql = f"""
            SELECT e.contact_id, e.id, e.occurred_at, e.voided_at FROM events e
            WHERE e.type = ? AND e.occurred_at BETWEEN ? AND ? AND {visible("e", seen_from)}"""
        if where:
            where_sql, where_params = event_condition(where, "e", tz)
            sql += f" AND ({where_sql})"
            params.extend(where_params)
        return [EventSeen(*row) for row in self.conn.execute(sql, params)]

    def last_activities(
        self,
        types: Sequence[str],
        lo: Instant,
        hi: Instant,
        at: Instant,
        *,
        min_events: int,
        contact_ids: Sequence[str] | None = None,
    ) -> Iterator[LastActivity]:
        """Contacts whose last event of ``types`` as of ``at`` lies in ``[lo, hi]``, with at
        least ``min_events`` such events by then (events voided by ``at`` do not count).
        Read as they are iterated, in the caller's snapshot: a big day's win-back lapses
        are tens of thousands, made into occasions one at a time, never held twice.

        The range scan on (type, time) finds the candidates; the per-contact index on
        (contact, type, time) confirms that nothing newer happened by ``at``.
        """
        types = list(dict.fromkeys(types))
        marks = _marks(types)
        clause, ids = _among("e.contact_id", contact_ids)
        sql = f"""
            SELECT contact_id, last, (
                SELECT max(l.id) FROM events l
                WHERE l.contact_id = cand.contact_id AND l.type IN ({marks})
                  AND l.occurred_at = last AND {visible("l", at)}
            ) FROM (
                SELECT e.contact_id, max(e.occurred_at) AS last FROM events e
                WHERE e.type IN ({marks}) AND e.occurred_at BETWEEN ? AND ?{clause}
                  AND {visible("e", at)}
                GROUP BY e.contact_id
            ) cand
            WHERE NOT EXISTS (
                SELECT 1 FROM events x
                WHERE x.contact_id = cand.contact_id AND x.type IN ({marks})
                  AND x.occurred_at > last AND x.occurred_at <= ? AND {visible("x", at)})
              AND (SELECT count(*) FROM events y
                   WHERE y.contact_id = cand.contact_id AND y.type IN ({marks})
                     AND y.occurred_at <= last AND {visible("y", at)}) >= ?
        """
        params: list[object] = [*types, *types, lo, hi, *ids, *types, at, *types, min_events]
        return (LastActivity(*row) for row in self.conn.execute(sql, params))

    def never_active(
        self,
        types: Sequence[str],
        lo: Instant,
        hi: Instant,
        at: Instant,
        *,
        contact_ids: Sequence[str] | None = None,
    ) -> list[SignedUp]:
        """Contacts who signed up in ``[lo, hi]`` and had no event of ``types`` by ``at``
        (one voided by ``at`` is none; index: signup_at)."""
        types = list(dict.fromkeys(types))
        clause, ids = _among("c.id", contact_ids)
        sql = f"""
            SELECT c.id, c.signup_at FROM contacts c
            WHERE c.signup_at BETWEEN ? AND ?{clause}
              AND NOT EXISTS (SELECT 1 FROM events x WHERE x.contact_id = c.id
                              AND x.type IN ({_marks(types)}) AND x.occurred_at <= ?
                              AND {visible("x", at)})
        """
        rows = self.conn.execute(sql, [lo, hi, *ids, *types, at])
        return [SignedUp(*row) for row in rows]

    def dated_contacts(
        self,
        field: str,
        month_days: Sequence[str] | None,
        at: Instant,
        *,
        contact_ids: Sequence[str] | None = None,
    ) -> list[DatedContact]:
        """Contacts with a value of date field ``field`` as of ``at``, whose month-day (UTC
        for instants) is one of ``month_days`` (``MM-DD``; None: any day).

        ``field`` is ``birthday``, ``signup_at`` (only contacts signed up by ``at``),
        ``first_order_at`` (the first order as of ``at``) or an attribute. The three fields
        are found through their month-day expression indexes; attributes have no index and
        are scanned (one pass over the contacts in SQL).
        """
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
                " WHERE x.contact_id = c.id AND x.type = 'order' AND x.occurred_at <= ?"
                f" AND {visible('x', at)})"
            )
            key = "strftime('%m-%d', c.first_order_at, 'unixepoch')"
            index = "contacts_first_order_day"
            params.append(at)
        else:
            value, key = "json_extract(c.attributes, ?)", "substr(value, 6, 5)"
            params.append(f'$."{field}"')
        # the month-day index, always: table statistics must not turn this into a scan
        source = (
            f"contacts c INDEXED BY {index}" if month_days is not None and index else "contacts c"
        )
        sql = f"SELECT c.id, c.timezone, {value} AS value FROM {source} WHERE value IS NOT NULL"
        if dialect_of(self.conn) == "postgresql":
            # PostgreSQL's WHERE cannot name a column of its SELECT: the same over a subquery
            sql = (
                f"SELECT c.id, c.timezone, c.value FROM (SELECT c.*, {value} AS value"
                " FROM contacts c) AS c WHERE c.value IS NOT NULL"
            )
        if month_days is not None:
            sql += f" AND {key} IN ({_marks(month_days)})"
            params.extend(month_days)
        if field == "signup_at":
            sql += " AND c.signup_at <= ?"
            params.append(at)
        clause, ids = _among("c.id", contact_ids)
        return [DatedContact(*row) for row in self.conn.execute(sql + clause, [*params, *ids])]

    def milestones_reached(
        self,
        metric: Literal["order_count", "total_spent"],
        threshold: float,
        lo: Instant,
        hi: Instant,
        *,
        contact_ids: Sequence[str] | None = None,
        at: Instant | None = None,
    ) -> list[EventAt]:
        """Per contact, the order that first took ``metric`` (the count of orders, or their
        summed amount) to at least ``threshold``, if it occurred in ``[lo, hi]``; orders
        voided as of ``at`` (default ``hi``) do not count.

        Candidates are the contacts with an order in ``[lo, hi]`` (index: type, time); only
        their orders up to ``hi`` are ranked and summed, by time, ties by id.
        """
        seen_at = hi if at is None else at
        measure = "n" if metric == "order_count" else f"round(running, {_SCALE})"
        clause, ids = _among("e.contact_id", contact_ids)
        sql = f"""
            WITH candidates AS (
                SELECT DISTINCT e.contact_id FROM events e
                WHERE e.type = 'order' AND e.occurred_at BETWEEN ? AND ?{clause}
                  AND {visible("e", seen_at)}
            ), ranked AS (
                SELECT o.contact_id, o.id, o.occurred_at,
                       row_number() OVER w AS n,
                       sum(coalesce({converted("o")}, 0)) OVER w AS running
                FROM candidates cand JOIN events o ON o.contact_id = cand.contact_id
                WHERE o.type = 'order' AND o.occurred_at <= ? AND {visible("o", seen_at)}
                WINDOW w AS (PARTITION BY o.contact_id ORDER BY o.occurred_at, o.id
                             ROWS UNBOUNDED PRECEDING)
            ), reached AS (
                SELECT contact_id, id, occurred_at,
                       row_number() OVER (PARTITION BY contact_id ORDER BY occurred_at, id)
                           AS first
                FROM ranked WHERE {measure} >= ?
            )
            SELECT contact_id, id, occurred_at FROM reached
            WHERE first = 1 AND occurred_at >= ?
        """
        params: list[object] = [lo, hi, *ids, hi, threshold, lo]
        return [EventAt(*row) for row in self.conn.execute(sql, params)]

    def activities_over(
        self, types: Sequence[str], lo: Instant, hi: Instant, *, counted: bool = True
    ) -> list[Activity]:
        """Every instant in ``[lo, hi]`` at which a contact had an event of ``types``, with
        the contact's next such instant and its count of such events by then (0 without
        ``counted``), by instant: what the lapses of a stretch of ``simulate`` are read
        from. Voiding is not looked at: for contacts none of whose events of ``types`` was
        ever voided (:meth:`voided_contacts`) it is what :meth:`last_activities` sees at
        any instant (index: type, time; then contact, type, time)."""
        types = list(dict.fromkeys(types))
        marks = _marks(types)
        count = (
            f"""(SELECT count(*) FROM events y WHERE y.contact_id = e.contact_id
                 AND y.type IN ({marks}) AND y.occurred_at <= e.occurred_at)"""
            if counted
            else "0"
        )
        sql = f"""
            SELECT e.contact_id, e.occurred_at, max(e.id),
                   (SELECT min(x.occurred_at) FROM events x WHERE x.contact_id = e.contact_id
                    AND x.type IN ({marks}) AND x.occurred_at > e.occurred_at),
                   {count}
            FROM events e WHERE e.type IN ({marks}) AND e.occurred_at BETWEEN ? AND ?
            GROUP BY e.contact_id, e.occurred_at
            ORDER BY e.occurred_at, e.contact_id
        """
        params: list[object] = [*types, *(types if counted else []), *types, lo, hi]
        return [Activity(*row) for row in self.conn.execute(sql, params)]

    def voided_contacts(self, types: Sequence[str]) -> set[str]:
        """The contacts with an event of ``types`` that was voided (at any instant)."""
        if not types:
            return set()
        types = list(dict.fromkeys(types))
        sql = f"""SELECT DISTINCT contact_id FROM events
                  WHERE type IN ({_marks(types)}) AND voided_at IS NOT NULL"""
        return {str(row[0]) for row in self.conn.execute(sql, types)}

    def sent_between(
        self,
        campaign_id: str,
        lo: Instant,
        hi: Instant,
        *,
        contact_ids: Sequence[str] | None = None,
    ) -> list[SentDelivery]:
        """Deliveries of campaign ``campaign_id`` that are ``sent`` with ``sent_at`` in
        ``[lo, hi]`` (index: campaign, state, sent_at): what starts its follow-ups."""
        clause, ids = _among("d.contact_id", contact_ids)
        sql = f"""
            SELECT d.id, d.contact_id, d.sent_at, d.event_id FROM deliveries d
            WHERE d.campaign = ? AND d.state = 'sent' AND d.sent_at BETWEEN ? AND ?{clause}
        """
        rows = self.conn.execute(sql, [campaign_id, lo, hi, *ids])
        return [SentDelivery(*row) for row in rows]

    def exited(
        self,
        event_type: str,
        where: Mapping[str, Any] | None,
        started: Sequence[Started],
        at: Instant,
        *,
        tz: tzinfo | str = "UTC",
    ) -> set[tuple[str, str]]:
        """The ``(contact_id, occasion)`` among ``started`` whose contact has an event of
        ``event_type`` passing ``where`` (the grammar of ``[trigger] where``, naive dates in
        ``tz``) that occurred after its start and at or before ``at``: the occasions an
        ``[exit]`` stops. One query for them all (index: contact, type, time)."""
        if not started:
            return set()
        condition, params = "1 = 1", list[Any]()
        if where:
            condition, params = event_condition(where, "x", tz)
        asked = json.dumps([[s.contact_id, s.occasion, s.started_at] for s in started])
        sql = f"""
            WITH asked (contact_id, occasion, started_at) AS (
                SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                       CAST(json_extract(value, '$[2]') AS INTEGER)
                FROM json_each(?)
            )
            SELECT a.contact_id, a.occasion FROM asked a
            WHERE EXISTS (SELECT 1 FROM events x
                          WHERE x.contact_id = a.contact_id AND x.type = ?
                            AND x.occurred_at > a.started_at AND x.occurred_at <= ?
                            AND {visible("x", at)} AND ({condition}))
        """
        rows = self.conn.execute(sql, [asked, event_type, at, *params])
        return {(str(r[0]), str(r[1])) for r in rows}

    def candidates(
        self,
        campaign_id: str,
        occasions: Sequence[Occasion],
        at: Instant,
        *,
        audience: Mapping[str, Any] | None = None,
        tz: tzinfo | str = "UTC",
        unrecorded: bool = True,
    ) -> list[Candidate]:
        """The due ``occasions`` joined with their contacts as of ``at``, in (due, contact,
        occasion) order: only contacts passing ``audience`` (derived facts as of ``at``, its
        naive dates in ``tz``; None or empty: everyone) and, with ``unrecorded``, only
        occasions campaign ``campaign_id`` has not recorded yet. One query for them all.
        """
        if not occasions:
            return []
        # each row names its occasion by its place in ``occasions``: the candidate holds
        # that very occasion (its strings are not made again from the row, and a big day's
        # decisions do not hold copies of what the due occasions hold)
        due = json.dumps([[o.contact_id, o.occasion, o.due_at] for o in occasions])
        # the order facts as of ``at`` in one grouped pass over the due contacts' orders
        # (with four correlated subqueries per candidate the query costs about 1.6 times as much)
        orders, facts = order_facts(at, "SELECT due.contact_id FROM due")
        where, params = audience_condition(audience or {}, at, tz, facts)
        selected = ", ".join(
            f"{facts.get(name) or fact_sql(name, at)} AS asof_{name}" for name in DERIVED_FACTS
        )
        sql = f"""
            WITH due (place, contact_id, occasion, due_at) AS (
                SELECT CAST(key AS INTEGER), json_extract(value, '$[0]'),
                       json_extract(value, '$[1]'), CAST(json_extract(value, '$[2]') AS INTEGER)
                FROM json_each(?)
            )
            SELECT due.place AS due_place, c.*, {selected}
            FROM due JOIN contacts c ON c.id = due.contact_id
            LEFT JOIN {orders} f ON f.contact_id = c.id
            WHERE ({where})
        """
        args: list[Any] = [due, *params]
        if unrecorded:
            sql += """
              AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.campaign = ?
                              AND d.contact_id = due.contact_id AND d.occasion = due.occasion)"""
            args.append(campaign_id)
        sql += " ORDER BY due.due_at, due.contact_id, due.occasion, due.place"
        rows = self.conn.execute(sql, args).fetchall()
        if not rows:
            return []
        # each row as contact_from_row reads the contact's columns, the derived facts as of
        # ``at`` in place of the stored ones: the columns picked once for all rows
        first: dict[str, int] = {}
        for i, name in enumerate(rows[0].keys()):
            first.setdefault(name, i)
        place = first.pop("due_place")
        for name in DERIVED_FACTS:
            first[name] = first.pop(f"asof_{name}")
        reader = ContactReader(list(first.items()))
        return [Candidate(occasions[row[place]], ContactRow(reader, tuple(row))) for row in rows]
