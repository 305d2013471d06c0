"""What dispatch re-checks before it sends: the send-time rules.

A tick decides a delivery once; it may wait for days (a window, a daily limit, a retry)
before it is sent, and the world changes meanwhile: the contact unsubscribes, the order is
voided, the customer comes back. Each :class:`SendRule` is one such change, written as a
SQL predicate over the delivery row ``d``; a pending delivery it matches is moved to the
rule's final state, with its reason, and never sent.

The rules run in the same write transaction as the claim that would otherwise take the
delivery (:meth:`regard.store.deliveries.Deliveries.claim`), so nothing that was stopped
before a claim's transaction began is sent, and once at the start of a dispatch over
everything due (so the counts are reported). Adding a rule is adding one entry to
:data:`RULES`.

A rule whose SQL depends on what the pending deliveries carry gives ``build`` instead of
a fixed ``where``: called with the connection at the moment the rules run, it returns
the predicate and its named parameters. The ``[exit]`` of a journey is such a rule: each
delivery carries its campaign's exit (event type, start, ``where`` as JSON, written at
creation), and the distinct ``where`` filters among the pending deliveries are compiled
into the predicate (:func:`_exit_rule`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from regard.store.filters import event_condition
from regard.store.lifecycle import DeliveryState, move
from regard.store.suppressions import bounced_sql, unsubscribed_sql
from regard.times import Instant

# SQL and named parameters
Predicate = tuple[str, dict[str, object]]


@dataclass(frozen=True)
class SendRule:
    """Pending deliveries matching ``where`` (SQL over the row ``d``; it may use ``:at``,
    the dispatch's instant) go to ``target`` with ``reason``; ``detail`` is their log line.
    ``build``, when given, makes the predicate from the store at the moment the rules run
    (``where`` is then only its description)."""

    reason: str
    target: DeliveryState
    detail: str
    where: str
    build: Callable[[sqlite3.Connection], Predicate] | None = None

    def predicate(self, conn: sqlite3.Connection) -> Predicate:
        """The rule's SQL over ``d`` and its named parameters, now."""
        return self.build(conn) if self.build is not None else (self.where, {})


# the suppression rules at send time, on the message's ``to`` when it is an address
_TO = "(CASE WHEN json_type(d.message, '$.to') = 'text' THEN json_extract(d.message, '$.to') END)"
_BOUNCED = bounced_sql("d.contact_id", "d.channel", _TO)
# an unsubscribe stops marketing only: the purpose is the one the delivery was made for
_UNSUBSCRIBED = f"d.purpose = 'marketing' AND {unsubscribed_sql('d.contact_id', 'd.channel', _TO)}"

# the triggering event (a cancelled or refunded order) was voided by the dispatch's instant
_EVENT_VOIDED = """d.event_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM events v WHERE v.id = d.event_id AND v.voided_at IS NOT NULL
      AND v.voided_at <= :at)"""


def _exit_rule(conn: sqlite3.Connection) -> Predicate:
    """A pending delivery whose campaign's ``[exit]`` has come: an event of the contact of
    its ``exit_event`` type after ``exit_from`` and at or before the dispatch's instant,
    passing its ``exit_where`` (index: contact, type, time). The filters are those the
    pending deliveries carry, each compiled once (partial index on pending exits)."""
    params: dict[str, object] = {}
    wheres: list[str] = []
    rows = conn.execute(
        "SELECT DISTINCT exit_where FROM deliveries INDEXED BY deliveries_pending_exit"
        " WHERE state = 'pending' AND exit_event IS NOT NULL AND exit_where IS NOT NULL"
    ).fetchall()
    for i, (stored,) in enumerate(rows):
        try:
            spec = json.loads(stored)
            sql, values = event_condition(spec["where"], "x", spec.get("tz") or "UTC")
        except (ValueError, KeyError, TypeError):
            continue  # written by the tick from a valid campaign; never expected
        pieces = sql.split("?")  # compiled filters bind every value: each ? is a placeholder
        named = pieces[0] + "".join(f":exit_{i}_{j}{piece}" for j, piece in enumerate(pieces[1:]))
        params[f"exit_{i}"] = stored
        params.update({f"exit_{i}_{j}": v for j, v in enumerate(values)})
        wheres.append(f"(d.exit_where = :exit_{i} AND ({named}))")
    matching = " OR ".join(["d.exit_where IS NULL", *wheres])
    sql = f"""d.exit_event IS NOT NULL AND EXISTS (
        SELECT 1 FROM events x WHERE x.contact_id = d.contact_id AND x.type = d.exit_event
          AND x.occurred_at > d.exit_from AND x.occurred_at <= :at
          AND (x.voided_at IS NULL OR x.voided_at > :at) AND ({matching}))"""
    return sql, params


RULES: tuple[SendRule, ...] = (
    SendRule("bounced", DeliveryState.SKIPPED, "the address bounced before it was sent", _BOUNCED),
    SendRule(
        "unsubscribed", DeliveryState.SKIPPED, "unsubscribed before it was sent", _UNSUBSCRIBED
    ),
    SendRule(
        "event_voided",
        DeliveryState.CANCELLED,
        "its event was voided (cancelled or refunded) before it was sent",
        _EVENT_VOIDED,
    ),
    SendRule(
        "exited",
        DeliveryState.CANCELLED,
        "the journey's exit came before it was sent",
        "the campaign's [exit] event after the occasion's start",
        build=_exit_rule,
    ),
)


def stopped(conn: sqlite3.Connection) -> Predicate:
    """A predicate over ``d``: some rule would stop it (for listings of what is due)."""
    parts, params = [], {}
    for rule in RULES:
        sql, extra = rule.predicate(conn)
        parts.append(f"({sql})")
        params.update(extra)
    return " OR ".join(parts) or "0", params


def stop(
    conn: sqlite3.Connection,
    candidates: str,
    params: dict[str, object],
    *,
    at: Instant,
    now: Instant,
) -> dict[str, list[str]]:
    """In the caller's write transaction: apply every rule to the pending deliveries
    ``d`` that ``candidates`` (a SQL predicate over ``d`` using ``params``) selects.
    Returns the ids stopped, by reason (reasons with none are left out)."""
    stopped: dict[str, list[str]] = {}
    for rule in RULES:
        where, extra = rule.predicate(conn)
        ids = [
            str(r[0])
            for r in conn.execute(
                f"SELECT d.id FROM deliveries d WHERE d.state = 'pending' "
                f"AND ({candidates}) AND ({where})",
                {**params, **extra, "at": at},
            )
        ]
        moved = move(
            conn, ids, DeliveryState.PENDING, rule.target, at=at, now=now,
            detail=rule.detail, reason=rule.reason,
        )  # fmt: skip
        if moved:
            stopped[rule.reason] = moved
    return stopped


def among(ids: Sequence[str]) -> tuple[str, dict[str, object]]:
    """A ``candidates`` predicate for :func:`stop`: the deliveries ``ids``."""
    return "d.id IN (SELECT value FROM json_each(:stop_ids))", {"stop_ids": json.dumps(list(ids))}
