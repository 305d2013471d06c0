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
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from regard.store.lifecycle import DeliveryState, move
from regard.store.suppressions import unsubscribed_sql
from regard.times import Instant


@dataclass(frozen=True)
class SendRule:
    """Pending deliveries matching ``where`` (SQL over the row ``d``; it may use ``:at``,
    the dispatch's instant) go to ``target`` with ``reason``; ``detail`` is their log line."""

    reason: str
    target: DeliveryState
    detail: str
    where: str


# the unsubscribe rule at send time, on the message's ``to`` when it is an address
_UNSUBSCRIBED = unsubscribed_sql(
    "d.contact_id",
    "d.channel",
    "(CASE WHEN json_type(d.message, '$.to') = 'text' THEN json_extract(d.message, '$.to') END)",
)

# the triggering event (a cancelled or refunded order) was voided by the dispatch's instant
_EVENT_VOIDED = """d.event_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM events v WHERE v.id = d.event_id AND v.voided_at IS NOT NULL
      AND v.voided_at <= :at)"""

RULES: tuple[SendRule, ...] = (
    SendRule(
        "unsubscribed", DeliveryState.SKIPPED, "unsubscribed before it was sent", _UNSUBSCRIBED
    ),
    SendRule(
        "event_voided",
        DeliveryState.CANCELLED,
        "its event was voided (cancelled or refunded) before it was sent",
        _EVENT_VOIDED,
    ),
)


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
        ids = [
            str(r[0])
            for r in conn.execute(
                f"SELECT d.id FROM deliveries d WHERE d.state = 'pending' "
                f"AND ({candidates}) AND ({rule.where})",
                {**params, "at": at},
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
