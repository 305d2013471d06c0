"""The delivery lifecycle: one state machine, and the one function that moves deliveries.

    (new) ──► pending ──► sending ──► sent
      │          ▲  │       │ │ ▲
      │          │  │       │ └─┘ an expired claim, taken up again
      │          │  │       ├──► pending   released unsent, or a passing failure (backoff)
      │          │  │       ├──► dead      a permanent failure, or attempts used up
      │          │  │       ├──► cancelled the contact was forgotten mid-send
      │          │  │       └──► unconfirmed  the outcome is unknown and the service can
      │          │  │                 neither de-duplicate nor be asked; by hand:
      │          │  │                 confirmed → sent, retried → pending
      │          │  ├──► skipped    unsubscribed after the tick decided
      │          │  └──► cancelled  by hand, the contact was forgotten, or a send-time rule
      │          │                  (its event voided, a journey's exit, consent withdrawn,
      │          │                  its campaign disabled or removed, too late)
      │          ├──── dead         retried by hand
      │          └──── skipped      a render error retried by hand, rendered again
      ├──► held_out   in the campaign's control group (final)
      └──► skipped    no address, bounced, no consent, unsubscribed, capped, render error
                      (final but for render_error, which can be retried once the template is fixed)

Every state change of a delivery is made by :func:`move` (or, for a new delivery, by
:func:`create`; for two changes no other connection can see apart, a replay's claim and
send, by :func:`move_through`): each checks the change against :data:`TRANSITIONS`,
makes it in one set-based statement guarded by the source states, appends one
``delivery_log`` line per delivery and step, and writes the one log line of the change. A
change the table does not allow is a bug, and raises :class:`IllegalTransition` before
anything is written.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

log = logging.getLogger("regard.delivery")


class DeliveryState(StrEnum):
    """Where a delivery stands. ``held_out``, ``skipped``, ``sent`` and ``cancelled`` are
    final; ``dead`` is final unless retried by hand; ``unconfirmed`` waits for a person
    (``regard deliveries confirm`` or ``retry``)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    HELD_OUT = "held_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    # the attempt may have reached a service that neither de-duplicates nor can be asked:
    # never sent again by itself (docs/delivery.md)
    UNCONFIRMED = "unconfirmed"


STATES: tuple[str, ...] = tuple(s.value for s in DeliveryState)
# the states whose reason means something; elsewhere it is reported as null
REASON_STATES = frozenset(
    {DeliveryState.SKIPPED, DeliveryState.DEAD, DeliveryState.CANCELLED, DeliveryState.UNCONFIRMED}
)
# counted against caps and cooldowns: sent, or still on its way (an unconfirmed one may
# have reached its contact)
IN_FLIGHT = frozenset({DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.UNCONFIRMED})


class Reason(Enum):
    """What a transition does with the delivery's ``reason``."""

    KEEP = "kept as it was"
    CLEAR = "cleared"
    REQUIRED = "set: the caller must give it"
    OPTIONAL = "set when the caller gives one, else kept"


@dataclass(frozen=True)
class Transition:
    """One allowed change: from ``source`` (None: a new delivery) to ``target``."""

    source: DeliveryState | None
    target: DeliveryState
    reason: Reason
    meaning: str


_P, _S, _OK, _D = (
    DeliveryState.PENDING,
    DeliveryState.SENDING,
    DeliveryState.SENT,
    DeliveryState.DEAD,
)
_H, _K, _C = DeliveryState.HELD_OUT, DeliveryState.SKIPPED, DeliveryState.CANCELLED
_U = DeliveryState.UNCONFIRMED

TRANSITIONS: dict[tuple[DeliveryState | None, DeliveryState], Transition] = {
    (t.source, t.target): t
    for t in (
        Transition(None, _P, Reason.CLEAR, "decided by a tick: to be sent"),
        Transition(None, _H, Reason.CLEAR, "decided by a tick: in the control group"),
        Transition(None, _K, Reason.REQUIRED, "decided by a tick: skipped, and why"),
        Transition(_P, _S, Reason.KEEP, "claimed for an attempt"),
        Transition(_S, _S, Reason.KEEP, "an expired claim taken up again"),
        Transition(_S, _P, Reason.KEEP, "released unsent, or a passing failure"),
        Transition(_S, _OK, Reason.CLEAR, "the provider accepted it"),
        Transition(_S, _D, Reason.REQUIRED, "a permanent failure: the provider's answer"),
        Transition(_S, _C, Reason.OPTIONAL, "the contact was forgotten mid-send"),
        Transition(_P, _K, Reason.REQUIRED, "unsubscribed after the tick decided"),
        Transition(
            _P, _C, Reason.OPTIONAL, "cancelled by hand, the contact forgotten, or a send-time rule"
        ),
        Transition(_D, _P, Reason.CLEAR, "retried by hand"),
        Transition(_K, _P, Reason.CLEAR, "a render error retried by hand, rendered again"),
        Transition(_S, _U, Reason.REQUIRED, "outcome unknown, and the service cannot tell"),
        Transition(_U, _OK, Reason.CLEAR, "confirmed by hand: it did arrive"),
        Transition(_U, _P, Reason.CLEAR, "retried by hand: send it again"),
    )
}


class Expression(str):
    """A value of ``move(values=…)`` that is SQL over the delivery's own columns, set as
    written (``Expression("attempts + 1")``); every other value is bound as a parameter."""


class IllegalTransition(RuntimeError):
    """A change of state that the lifecycle does not allow: a bug in regard, never input."""


def transition(source: DeliveryState | None, target: DeliveryState) -> Transition:
    """The allowed transition from ``source`` to ``target``; raises IllegalTransition."""
    found = TRANSITIONS.get((source, target))
    if found is None:
        raise IllegalTransition(f"a delivery cannot go from {source or '(new)'} to {target}")
    return found


def _reason_value(rule: Reason, reason: str | None, target: DeliveryState) -> tuple[bool, Any]:
    """(set the column?, its value) for a transition's reason rule and the caller's reason."""
    if rule is Reason.REQUIRED:
        if not reason:
            raise IllegalTransition(f"a delivery going {target} needs a reason")
        return True, reason
    if rule is Reason.OPTIONAL:
        return reason is not None, reason
    if reason is not None:
        raise IllegalTransition(f"a delivery going {target} carries no reason ({reason!r})")
    return rule is Reason.CLEAR, None


def move(
    conn: sqlite3.Connection,
    ids: Collection[str],
    source: DeliveryState | Iterable[DeliveryState],
    target: DeliveryState,
    *,
    at: int,
    now: int,
    detail: str | Mapping[str, str],
    reason: str | None = None,
    values: Mapping[str, object] | None = None,
    owner: str | None = None,
) -> list[str]:
    """Move the deliveries ``ids`` that are in ``source`` (and, with ``owner``, still held
    by that claim) to ``target``; returns the ids that moved, in no particular order.

    ``values`` sets further columns in the same statement (``not_before``, ``sent_at``,
    lease columns …; an :class:`Expression` is SQL over the row's columns, such as
    ``attempts + 1``); ``updated_at`` becomes ``now``. ``at`` is the instant of the change
    the log records (a tick's T); ``detail`` its log text, one for all or one per id.
    Must be called inside a write transaction. Raises IllegalTransition for a change the
    lifecycle does not allow, before anything is written.
    """
    sources = {source} if isinstance(source, DeliveryState) else set(source)
    rules = {transition(s, target).reason for s in sources}
    if len(rules) != 1:
        raise IllegalTransition(f"one move to {target} from states with different reason rules")
    set_reason, reason_value = _reason_value(rules.pop(), reason, target)
    if not ids:
        return []
    columns: dict[str, object] = {"state": target.value, **(values or {})}
    if set_reason:
        columns["reason"] = reason_value
    rows = _update(conn, ids, sources, columns, now=now, owner=owner)
    moved = [str(r[0]) for r in rows]
    _log(conn, moved, at, target, detail)
    _tell(rows, target, detail, values)
    return moved


def move_through(
    conn: sqlite3.Connection,
    ids: Collection[str],
    source: DeliveryState,
    via: DeliveryState,
    target: DeliveryState,
    *,
    at: int,
    now: int,
    details: tuple[str | Mapping[str, str], str | Mapping[str, str]],
    values: tuple[Mapping[str, object], Mapping[str, object]],
) -> list[str]:
    """Two moves in one statement: the deliveries ``ids`` in ``source`` go to ``via`` and
    on to ``target``, as :func:`move` to ``via`` and then to ``target`` would leave them
    (each step's ``values`` in turn, the later one winning; the reason as the steps' rules
    leave it) with both log lines, ``details`` the two steps' texts. For a change whose
    middle state no other connection could see (a replay's simulated send: claimed, then
    accepted, in one transaction). Returns the ids that moved."""
    steps = ((source, via), (via, target))
    reasons = [_reason_value(transition(a, b).reason, None, b) for a, b in steps]
    if not ids:
        return []
    columns: dict[str, object] = {"state": target.value}
    for (set_reason, reason_value), step in zip(reasons, values, strict=True):
        columns.update(step)
        if set_reason:
            columns["reason"] = reason_value
    rows = _update(conn, ids, {source}, columns, now=now)
    moved = [str(r[0]) for r in rows]
    _log(conn, moved, at, via, details[0])
    _log(conn, moved, at, target, details[1])
    _tell(rows, target, details[1], values[1])
    return moved


def _update(
    conn: sqlite3.Connection,
    ids: Collection[str],
    sources: Collection[DeliveryState],
    columns: dict[str, object],
    *,
    now: int,
    owner: str | None = None,
) -> list[Any]:
    """The one statement of a move: ``columns`` set (and ``updated_at``) on the deliveries
    ``ids`` in ``sources`` (and, with ``owner``, held by that claim); their (id, provider)."""
    columns = {**columns, "updated_at": now}
    assignments = ", ".join(
        f"{column} = {value}" if isinstance(value, Expression) else f"{column} = :set_{column}"
        for column, value in columns.items()
    )
    params: dict[str, object] = {
        f"set_{k}": v for k, v in columns.items() if not isinstance(v, Expression)
    }
    params["ids"] = json.dumps(list(ids))
    params["sources"] = json.dumps(sorted(s.value for s in sources))
    guard = ""
    if owner is not None:
        guard = " AND lease_owner = :owner"
        params["owner"] = owner
    return conn.execute(
        f"""
        UPDATE deliveries SET {assignments}
        WHERE id IN (SELECT value FROM json_each(:ids))
          AND state IN (SELECT value FROM json_each(:sources)){guard}
        RETURNING id, provider
        """,
        params,
    ).fetchall()


def _tell(
    rows: Iterable[Any],
    target: DeliveryState,
    detail: str | Mapping[str, str],
    values: Mapping[str, object] | None,
) -> None:
    """The log line of each delivery moved to ``target``."""
    for delivery_id, provider in rows:
        text = detail if isinstance(detail, str) else detail.get(delivery_id, "")
        if target is DeliveryState.DEAD:
            log.warning("delivery %s via %s: dead: %s", delivery_id, provider, text)
        elif target is DeliveryState.PENDING and values and values.get("last_error"):
            log.warning("delivery %s via %s: will be retried: %s", delivery_id, provider, text)
        else:
            log.debug("delivery %s via %s: %s: %s", delivery_id, provider, target, text)


@dataclass(frozen=True)
class DeliveryExit:
    """A campaign's ``[exit]`` as its delivery carries it, for dispatch to re-check
    (:mod:`regard.store.sendtime`): an ``event`` of the contact passing ``where`` (naive
    dates in ``tz``) after ``start`` ends the journey."""

    event: str
    start: int
    where: Mapping[str, Any] | None = None
    tz: str = "UTC"

    def where_json(self) -> str | None:
        """The stored form of ``where`` and its zone (None without a where)."""
        if not self.where:
            return None
        return json.dumps({"where": self.where, "tz": self.tz}, sort_keys=True, default=str)


@dataclass(frozen=True)
class NewDelivery:
    """A tick's decision, as the row it becomes."""

    id: str
    campaign: str
    contact_id: str
    occasion: str
    event_id: str | None
    channel: str
    provider: str
    state: DeliveryState
    reason: str | None
    priority: int
    due_at: int
    not_before: int | None = None
    # the rendered message, or its JSON text already (message_text: made before the write
    # transaction, so the write lock is not held while 500 messages are serialised)
    message: Mapping[str, Any] | str | None = None
    error: str | None = None  # a render error, kept as the last error
    purpose: str = "marketing"  # the campaign's: what send-time rules and links go by
    exit: DeliveryExit | None = None  # the campaign's [exit], re-checked at dispatch
    # the pacing dispatch keeps from the tick (see store/schema.py m008_delivery_pacing)
    pace_window: str | None = None  # the campaign's [window] as JSON, or None
    pace_daily_limit: int = 0
    expires_at: int | None = None  # too late to be sent after this instant


def message_text(message: Mapping[str, Any] | str | None) -> str | None:
    """A delivery's message as it is stored: its JSON text (None for no message)."""
    if isinstance(message, str):
        return message
    return json.dumps(message, ensure_ascii=False) if message else None


def create(conn: sqlite3.Connection, deliveries: Sequence[NewDelivery], *, at: int) -> list[str]:
    """Record new deliveries decided by the tick at ``at``; returns the ids recorded.

    An occasion already recorded (by another tick at the same time) is left as it is:
    recorded states are final. Must be called inside a write transaction.
    """
    for d in deliveries:
        rule = transition(None, d.state).reason
        _reason_value(rule, d.reason, d.state)
    # the occasions recorded already (by anyone) and repeats within the batch are left
    # out first, so the rest goes in with one executemany (it is all inserted: the write
    # lock is held)
    recorded = _recorded_keys(conn, deliveries)
    fresh: list[NewDelivery] = []
    for d in deliveries:
        key = (d.campaign, d.contact_id, d.occasion)
        if key not in recorded:
            recorded.add(key)
            fresh.append(d)
    conn.executemany(
        """
        INSERT INTO deliveries (id, campaign, contact_id, occasion, event_id, channel,
            provider, state, reason, priority, due_at, created_at, not_before, message,
            last_error, updated_at, purpose, exit_event, exit_from, exit_where,
            pace_window, pace_daily_limit, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (campaign, contact_id, occasion) DO NOTHING
        """,
        [
            (
                d.id, d.campaign, d.contact_id, d.occasion, d.event_id, d.channel, d.provider,
                d.state.value, d.reason, d.priority, d.due_at, at, d.not_before,
                message_text(d.message),
                d.error, at, d.purpose,
                d.exit.event if d.exit else None,
                d.exit.start if d.exit else None,
                d.exit.where_json() if d.exit else None,
                d.pace_window, d.pace_daily_limit, d.expires_at,
            )
            for d in fresh
        ],
    )  # fmt: skip
    created = [d.id for d in fresh]
    by_id = {d.id: d for d in deliveries}
    conn.executemany(
        "INSERT INTO delivery_log (delivery_id, at, state, detail) VALUES (?, ?, ?, ?)",
        [(i, at, by_id[i].state.value, by_id[i].reason) for i in created],
    )
    for i in created:
        log.debug("delivery %s: %s (%s)", i, by_id[i].state, by_id[i].reason or "decided")
    return created


def _recorded_keys(
    conn: sqlite3.Connection, deliveries: Sequence[NewDelivery]
) -> set[tuple[str, str, str]]:
    """The (campaign, contact, occasion) among ``deliveries`` that have a row already."""
    keys = {(d.campaign, d.contact_id, d.occasion) for d in deliveries}
    found: set[tuple[str, str, str]] = set()
    by_campaign: dict[str, list[str]] = {}
    for campaign, contact_id, _ in keys:
        by_campaign.setdefault(campaign, []).append(contact_id)
    for campaign, contact_ids in by_campaign.items():
        ids = sorted(set(contact_ids))
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = conn.execute(
                "SELECT campaign, contact_id, occasion FROM deliveries WHERE campaign = ?"
                f" AND contact_id IN ({', '.join('?' for _ in part)})",
                [campaign, *part],
            )
            found.update(k for k in ((r[0], r[1], r[2]) for r in rows) if k in keys)
    return found


def _log(
    conn: sqlite3.Connection,
    ids: Iterable[str],
    at: int,
    state: DeliveryState,
    detail: str | Mapping[str, str],
) -> None:
    rows = [
        (i, at, state.value, detail if isinstance(detail, str) else detail.get(i, "")) for i in ids
    ]
    # one statement per chunk (a round trip on PostgreSQL, where executemany costs more)
    for start in range(0, len(rows), _LOG_CHUNK):
        chunk = rows[start : start + _LOG_CHUNK]
        conn.execute(
            "INSERT INTO delivery_log (delivery_id, at, state, detail) VALUES "
            + ", ".join(["(?, ?, ?, ?)"] * len(chunk)),
            [value for row in chunk for value in row],
        )


# log lines per INSERT: 4 parameters each, well under SQLite's limit of bound parameters
_LOG_CHUNK = 200
