"""Deliveries: claims and their outcomes, pacing, changes by hand, listings.

A claim is one ``BEGIN IMMEDIATE`` transaction that turns a small batch of due deliveries
into ``sending`` under a run's name (``lease_owner``) until ``lease_until``. SQLite lets
one writer in at a time, so two processes can never claim the same row: whoever comes
second no longer finds it due. On PostgreSQL the claim locks its rows (``SELECT … FOR
UPDATE SKIP LOCKED``) instead of the whole store: daemons claim side by side, each
skipping the rows another is claiming. A claim that outlives its lease (its process was killed)
is taken up again by the next dispatch, with the same delivery id and so the same
Idempotency-Key. Outcomes are recorded only by the claim's owner, and only while it still
holds the row.

Every state change goes through :func:`regard.store.lifecycle.move`, which also writes
the ``delivery_log`` lines and sets the other columns a change touches (attempts,
``not_before``, the lease) in the same statement.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from regard.store import sendtime
from regard.store.area import Area
from regard.store.lifecycle import DeliveryState, Expression, move
from regard.store.records import (
    Claim,
    DeliveryRow,
    DueDelivery,
    PacedDelivery,
    RenderFailure,
)
from regard.store.sendtime import NO_CONTEXT, SendContext
from regard.times import Instant, now_instant

_PENDING, _SENDING, _SENT = DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.SENT
_DEAD, _SKIPPED, _CANCELLED = DeliveryState.DEAD, DeliveryState.SKIPPED, DeliveryState.CANCELLED
_UNCONFIRMED = DeliveryState.UNCONFIRMED

# a pending delivery is due when its next attempt time (or, before any attempt, the
# occasion's due time) has come
_DUE_PENDING = "state = 'pending' AND coalesce(not_before, due_at) <= :at"
# a claim is taken up again when its lease has ended, or at once when its run is gone
_EXPIRED_CLAIM = (
    "state = 'sending' AND (lease_until < :now"
    " OR lease_owner IN (SELECT value FROM json_each(:gone)))"
)
# what a claim looks at: due and not held by a send-time rule, or a claim to take up
_CLAIMABLE = f"(({_DUE_PENDING}) AND NOT ({sendtime.held_sql()})) OR ({_EXPIRED_CLAIM})"
_CLAIM_COLUMNS = (
    "id, campaign, contact_id, occasion, channel, provider, message, created_at,"
    " attempts AS attempt, outcome_unknown, first_attempt_at"
)
_CLAIM_NAMES = (
    "id", "campaign", "contact_id", "occasion", "channel", "provider", "message",
    "created_at", "attempt", "outcome_unknown", "first_attempt_at",
)  # fmt: skip
_IDS = "id IN (SELECT value FROM json_each(:ids))"


_CLAIM_ORDER = "ORDER BY priority DESC, coalesce(not_before, due_at), id"


def _claimable_rows(
    conn: sqlite3.Connection, params: Mapping[str, object], *, locked: bool
) -> list[Any]:
    """The rows a claim takes (up to ``:limit`` of ``:provider``), in the claim's order.

    SQLite (under the write lock): one statement over both kinds, due pending deliveries
    and claims to take up. PostgreSQL (``locked``: ``FOR UPDATE SKIP LOCKED``, the rows
    locked as they are read): a locking statement cannot sort only its first rows, so
    one over both kinds sorted the whole due backlog at every claim; instead the claims
    to take up come first (few, by the state index), then the due pending ones read in
    order off ``deliveries_claim_order`` until the batch is full (m013)."""
    columns = f"SELECT {_CLAIM_COLUMNS}, state, lease_owner FROM deliveries d"
    if not locked:
        return conn.execute(
            f"{columns} WHERE provider = :provider AND ({_CLAIMABLE}) {_CLAIM_ORDER} LIMIT :limit",
            params,
        ).fetchall()
    # one statement: a WITH query that locks (FOR UPDATE) is read only as far as the
    # outer LIMIT needs it, so the due ones lock only what the batch has room for
    lock = "FOR UPDATE SKIP LOCKED"
    found = conn.execute(
        f"WITH taken_up AS ({columns} WHERE provider = :provider AND {_EXPIRED_CLAIM}"
        f" {_CLAIM_ORDER} LIMIT :limit {lock}),"
        f" due AS ({columns} WHERE provider = :provider AND {_DUE_PENDING}"
        f" AND NOT ({sendtime.held_sql()}) {_CLAIM_ORDER} LIMIT :limit {lock})"
        " SELECT * FROM taken_up UNION ALL SELECT * FROM due LIMIT :limit",
        params,
    ).fetchall()
    # claims to take up first (stable: each kind keeps its order)
    return sorted(found, key=lambda r: r["state"] != _SENDING)


def claimed_values(owner: str, now: Instant, lease_seconds: int) -> dict[str, object]:
    """The columns a claim sets: held by ``owner`` for ``lease_seconds`` from ``now``, its
    attempt counted (a crashed attempt may have reached the provider), the first one's
    time kept."""
    return {
        "lease_owner": owner,
        "lease_until": now + lease_seconds,
        "attempts": Expression("attempts + 1"),
        "first_attempt_at": Expression(f"coalesce(first_attempt_at, {int(now)})"),
    }


def sent_values(at: Instant, message_id: str | None, cost: Decimal | None) -> dict[str, object]:
    """The columns a delivery accepted at ``at`` gets (and its claim let go)."""
    return {
        "sent_at": at,
        "provider_message_id": message_id,
        "cost": float(cost) if cost is not None else None,
        "outcome_unknown": 0,
        "lease_owner": None,
        "lease_until": None,
    }


class Deliveries(Area):
    """The ``deliveries`` table; every state change goes through :mod:`regard.store.lifecycle`."""

    # -- dispatch: what is due, claims, outcomes -------------------------------------------

    def claim_holders(self) -> list[str]:
        """The runs (``lease_owner``) that hold claims now, each once."""
        rows = self.conn.execute(
            "SELECT DISTINCT lease_owner FROM deliveries WHERE state = 'sending'"
        )
        return [str(r[0]) for r in rows if r[0]]

    def due_providers(
        self,
        at: Instant,
        now: Instant,
        gone: Sequence[str] = (),
        context: SendContext = NO_CONTEXT,
    ) -> list[str]:
        """The providers that have deliveries due at ``at`` (and not held by a send-time
        rule under ``context``), or claims to take up (lease ended before ``now``, or held
        by a run that is ``gone``), sorted by name."""
        rows = self.conn.execute(
            f"SELECT DISTINCT provider FROM deliveries d WHERE {_CLAIMABLE}",
            {"at": at, "now": now, "gone": json.dumps(list(gone)), **context.params()},
        )
        return sorted(str(r[0]) for r in rows)

    def due(
        self,
        at: Instant,
        now: Instant,
        gone: Sequence[str] = (),
        context: SendContext = NO_CONTEXT,
    ) -> list[DueDelivery]:
        """What a dispatch at ``at`` would send: due, or a claim to take up, and not
        stopped or held by a send-time rule (under ``context``) since the tick; by
        provider, then in the order they would be claimed."""
        stopped, extra = sendtime.stopped(self.conn)  # what a send-time rule would stop
        rows = self.conn.execute(
            f"""
            SELECT id, campaign, contact_id, occasion, channel, provider, due_at, attempts
            FROM deliveries d
            WHERE (({_DUE_PENDING}) OR ({_EXPIRED_CLAIM}))
              AND NOT (state = 'pending' AND ({stopped}))
            ORDER BY provider, priority DESC, coalesce(not_before, due_at), id
            """,
            {**extra, "at": at, "now": now, "gone": json.dumps(list(gone)), **context.params()},
        )
        return [cast(DueDelivery, dict(r)) for r in rows]

    def waiting(self, at: Instant) -> int:
        """Pending deliveries due after ``at`` (a window, a daily limit, a next attempt)."""
        row = self.conn.execute(
            "SELECT count(*) FROM deliveries "
            "WHERE state = 'pending' AND coalesce(not_before, due_at) > ?",
            (at,),
        ).fetchone()
        return int(row[0])

    def stop_due(self, at: Instant, context: SendContext = NO_CONTEXT) -> dict[str, int]:
        """Apply the send-time rules (:mod:`regard.store.sendtime`, under ``context``) to
        every delivery due at ``at``: those the world has overtaken since the tick decided
        (unsubscribed, consent withdrawn, campaign disabled, too late, …) go to their final
        state and are never sent. Returns how many, by reason (held ones included)."""
        with self.store.write() as conn:
            stopped = sendtime.stop(
                conn, _DUE_PENDING, {}, at=at, now=now_instant(), context=context
            )
        return {reason: len(ids) for reason, ids in stopped.items()}

    def claim(
        self,
        *,
        provider: str,
        owner: str,
        at: Instant,
        now: Instant,
        lease_seconds: int,
        limit: int,
        gone: Sequence[str] = (),
        context: SendContext = NO_CONTEXT,
    ) -> list[Claim]:
        """Claim up to ``limit`` due deliveries of ``provider`` for ``owner``, atomically.

        Higher campaign priority and earlier due time are claimed first. Claims whose lease
        ended before ``now``, or whose run is ``gone``, are taken up too (on PostgreSQL
        before the due ones: :func:`_claimable_rows`). The lease lasts
        ``lease_seconds`` from ``now``. Each claim counts as an attempt (a crashed attempt
        may have reached the provider, so it counts too). The send-time rules run first,
        in the same transaction, under ``context``: what they stop is never claimed, what
        they hold is left pending.
        """
        params = {
            "provider": provider, "at": at, "now": now, "limit": limit,
            "gone": json.dumps(list(gone)), **context.params(),
        }  # fmt: skip
        # SQLite: a first look without the write lock, so that when nothing is due nobody
        # is kept waiting. PostgreSQL: the rows, not the store, are locked (another
        # daemon's claim skips them), so the claim itself is that look
        postgresql = self.store.dialect == "postgresql"
        if not postgresql and not self._any_claimable(params):
            return []
        with self.store.write(shared=True) as conn:
            while True:
                # the claim's columns are read with the rows they lock (on SQLite the write
                # lock holds them): what the claim changes below is known
                found = _claimable_rows(conn, params, locked=postgresql)
                if not found:
                    return []
                # the send-time rules, in this same transaction: what was stopped before it
                # began (an unsubscribe, a voided order, …) is never claimed
                candidates, extra = sendtime.among([str(r["id"]) for r in found])
                stopped = sendtime.stop(conn, candidates, extra, at=at, now=now, context=context)
                gone_ids = {i for ids in stopped.values() for i in ids}
                found = [r for r in found if r["id"] not in gone_ids]
                if found:
                    break  # else all were stopped (no longer pending): look again
            order = [str(r["id"]) for r in found]
            reclaimed = {r["id"] for r in found if r["state"] == _SENDING}
            detail = {}
            for r in found:
                if r["state"] != _SENDING:
                    detail[r["id"]] = f"claimed by {owner}"
                elif r["lease_owner"] in gone:
                    detail[r["id"]] = f"claim of a run that is gone; taken up again by {owner}"
                else:
                    detail[r["id"]] = f"claim expired; taken up again by {owner}"
            moved = move(
                conn, order, (_PENDING, _SENDING), _SENDING, at=at, now=now, detail=detail,
                values=claimed_values(owner, now, lease_seconds),
            )  # fmt: skip
        taken = set(moved)
        claims: list[Claim] = []
        for r in found:  # in the claiming order: priority, due time
            if r["id"] not in taken:
                continue
            row = {name: r[name] for name in _CLAIM_NAMES}
            # as the claim's UPDATE set them
            row["attempt"] = int(r["attempt"]) + 1
            if row["first_attempt_at"] is None:
                row["first_attempt_at"] = int(now)
            row["outcome_unknown"] = bool(r["outcome_unknown"])
            claims.append(Claim(**row, reclaimed=r["id"] in reclaimed))
        return claims

    def any_claimable(
        self,
        *,
        provider: str,
        at: Instant,
        now: Instant,
        gone: Sequence[str] = (),
        context: SendContext = NO_CONTEXT,
    ) -> bool:
        """Whether :meth:`claim` would find something of ``provider`` to look at (a due
        delivery not held, or a claim to take up), without taking the write lock."""
        params = {"provider": provider, "at": at, "now": now, "gone": json.dumps(list(gone))}
        return self._any_claimable({**params, **context.params()})

    def _any_claimable(self, params: Mapping[str, object]) -> bool:
        row = self.conn.execute(
            f"""
            SELECT 1 FROM deliveries d
            WHERE provider = :provider AND ({_CLAIMABLE}) LIMIT 1
            """,
            params,
        ).fetchone()
        return row is not None

    def release(self, ids: Sequence[str], *, owner: str, at: Instant) -> int:
        """Give claims of ``owner`` back unsent (a stopping run): pending again, the attempt
        not counted. A claim another run took over is left alone. Returns how many."""
        if not ids:
            return 0
        with self.store.write() as conn:
            moved = move(
                conn, ids, _SENDING, _PENDING, at=at, now=now_instant(), owner=owner,
                detail="released unsent: the run was stopped",
                values={
                    "lease_owner": None,
                    "lease_until": None,
                    "attempts": Expression("max(attempts - 1, 0)"),
                },
            )  # fmt: skip
        return len(moved)

    def record_sent(
        self,
        claims: Sequence[Claim],
        *,
        owner: str,
        at: Instant,
        now: Instant,
        message_id: str | None,
        cost: Decimal | None,
        detail: Mapping[str, str],
    ) -> list[str]:
        """The provider accepted ``claims`` at ``at``: ``sent``, each with ``message_id``
        and ``cost``, ``detail`` (by id) in its log. Returns the ids recorded: not those
        ``owner`` no longer holds (another run took them over)."""
        with self.store.write() as conn:
            return move(
                conn, [c.id for c in claims], _SENDING, _SENT, at=at, now=now, owner=owner,
                detail=detail,
                values=sent_values(at, message_id, cost),
            )  # fmt: skip

    def record_retry_later(
        self,
        claim: Claim,
        *,
        owner: str,
        at: Instant,
        now: Instant,
        not_before: Instant,
        error: str,
        detail: str,
        unknown: bool = False,
    ) -> bool:
        """A passing failure: pending again, due at ``not_before``, ``error`` kept as the
        last error. ``unknown``: the attempt may have reached the service (the next one asks
        the service first). False when ``owner`` no longer holds the claim."""
        with self.store.write() as conn:
            moved = move(
                conn, [claim.id], _SENDING, _PENDING, at=at, now=now, owner=owner, detail=detail,
                values={
                    "not_before": not_before,
                    "last_error": error,
                    "outcome_unknown": int(unknown),
                    "lease_owner": None,
                    "lease_until": None,
                },
            )  # fmt: skip
        return bool(moved)

    def record_dead(
        self,
        claim: Claim,
        *,
        owner: str,
        at: Instant,
        now: Instant,
        reason: str,
        error: str,
        detail: str,
        unsubscribe: str | None = None,
    ) -> bool:
        """A permanent failure: ``dead`` with ``reason``, ``error`` kept as the last error.
        With ``unsubscribe`` (the provider says this address must not be used again) the
        address is recorded as bounced on the channel, in the same transaction.
        False when ``owner`` no longer holds the claim (nothing is recorded then)."""
        with self.store.write() as conn:
            moved = move(
                conn, [claim.id], _SENDING, _DEAD, at=at, now=now, owner=owner, detail=detail,
                reason=reason,
                values={"last_error": error, "lease_owner": None, "lease_until": None},
            )  # fmt: skip
            if moved and unsubscribe:
                self.store.suppressions.add_unreachable(
                    claim.contact_id, claim.channel, unsubscribe,
                    reason=f"provider {claim.provider}: {reason}", at=at,
                    source=f"send:{claim.provider}",
                )  # fmt: skip
        return bool(moved)

    def record_unconfirmed(
        self,
        claim: Claim,
        *,
        owner: str,
        at: Instant,
        now: Instant,
        reason: str,
        detail: str,
    ) -> bool:
        """The attempt may have reached a service that neither de-duplicates nor can be
        asked: ``unconfirmed`` with ``reason``, never sent again by itself. False when
        ``owner`` no longer holds the claim."""
        with self.store.write() as conn:
            moved = move(
                conn, [claim.id], _SENDING, _UNCONFIRMED, at=at, now=now, owner=owner,
                detail=detail, reason=reason,
                values={"last_error": reason, "outcome_unknown": 1, "lease_owner": None,
                        "lease_until": None},
            )  # fmt: skip
        return bool(moved)

    def release_paused(
        self, ids: Sequence[str], *, owner: str, at: Instant, now: Instant, reason: str
    ) -> int:
        """Claims of ``owner`` whose provider's account cannot send: ``pending`` again at
        once, the attempt not counted, ``reason`` kept as the last error. Returns how many."""
        if not ids:
            return 0
        with self.store.write() as conn:
            moved = move(
                conn, ids, _SENDING, _PENDING, at=at, now=now, owner=owner,
                detail=f"provider paused, not sent: {reason}",
                values={
                    "lease_owner": None,
                    "lease_until": None,
                    "last_error": reason,
                    "attempts": Expression("max(attempts - 1, 0)"),
                },
            )  # fmt: skip
        return len(moved)

    # -- pacing: windows and daily limits ---------------------------------------------------

    def due_paced(self, legacy: Collection[str], at: Instant) -> Iterator[PacedDelivery]:
        """Pending deliveries due at ``at`` that have a window or a daily limit of their own
        (stored when they were decided), and those recorded before deliveries kept their
        pacing whose campaign is one of ``legacy`` (the campaigns with pacing now); each
        with its contact's time zone and total spent (a daily limit lets the best
        customers go first). The send-time rules are not asked here (they read each
        message's ``to``): :meth:`stopped_among` asks them of the rows the pacing would
        hold. Read as they are iterated (a big day has tens of thousands: they are not all
        held at once)."""
        rows = self.conn.execute(
            """
            SELECT d.id, d.campaign, d.contact_id, d.due_at, c.timezone,
                   coalesce(c.total_spent, 0) AS total_spent, d.pace_window, d.pace_daily_limit
            FROM deliveries d LEFT JOIN contacts c ON c.id = d.contact_id
            WHERE d.state = 'pending'
              AND (d.not_before <= :at OR (d.not_before IS NULL AND d.due_at <= :at))
              AND (d.pace_window IS NOT NULL OR d.pace_daily_limit > 0
                   OR (d.pace_daily_limit IS NULL
                       AND d.campaign IN (SELECT value FROM json_each(:legacy))))
            """,
            {"legacy": json.dumps(list(legacy)), "at": at},
        )
        return (cast(PacedDelivery, dict(r)) for r in rows)

    def stopped_among(self, ids: Sequence[str], at: Instant) -> set[str]:
        """Those of the pending deliveries ``ids`` that a send-time rule would stop or hold
        at ``at`` (too late, unsubscribed, …; without a run's context), in one query: what
        pacing leaves out, since they take no room under a daily limit."""
        if not ids:
            return set()
        stopped, extra = sendtime.stopped(self.conn)
        among, params = sendtime.among(ids)
        rows = self.conn.execute(
            f"SELECT d.id FROM deliveries d WHERE d.state = 'pending' AND {among} AND ({stopped})",
            {**params, "at": at, **extra, **NO_CONTEXT.params()},
        )
        return {str(r[0]) for r in rows}

    def used_in(self, spans: Sequence[tuple[str, Instant, Instant]]) -> list[int]:
        """For each ``(campaign, start, end)``: how many of the campaign's deliveries were
        sent in ``[start, end)``, plus those being sent now (they will count that day)."""
        if not spans:
            return []
        rows = self.conn.execute(
            """
            SELECT (SELECT count(*) FROM deliveries
                    WHERE campaign = json_extract(span.value, '$[0]')
                      AND ((state = 'sent'
                            AND sent_at >= CAST(json_extract(span.value, '$[1]') AS INTEGER)
                            AND sent_at < CAST(json_extract(span.value, '$[2]') AS INTEGER))
                           OR state = 'sending'))
            FROM json_each(:spans) AS span ORDER BY CAST(span.key AS INTEGER)
            """,
            {"spans": json.dumps([list(s) for s in spans])},
        )
        return [int(r[0]) for r in rows]

    def defer(self, until: Sequence[tuple[str, Instant]]) -> None:
        """Hold pending deliveries back: each ``(id, instant)`` is not sent before it."""
        with self.store.write() as conn:
            now = now_instant()
            conn.executemany(
                "UPDATE deliveries SET not_before = ?, updated_at = ? WHERE id = ?",
                [(when, now, delivery_id) for delivery_id, when in until],
            )

    # -- by hand: listing, retrying, cancelling ---------------------------------------------

    def listing(
        self,
        *,
        state: str | None = None,
        campaign: str | None = None,
        contact: str | None = None,
    ) -> list[DeliveryRow]:
        """Deliveries matching every given filter, oldest first (created, due, id)."""
        where, params = [], []
        for column, value in (("state", state), ("campaign", campaign), ("contact_id", contact)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = (
            "SELECT id, campaign, contact_id, occasion, state, reason, channel, provider, "
            "due_at, created_at, sent_at, not_before, attempts, last_error, "
            "provider_message_id FROM deliveries"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, due_at, id"
        return [cast(DeliveryRow, dict(r)) for r in self.conn.execute(sql, params)]

    def states(self, ids: Collection[str]) -> dict[str, str]:
        """Delivery id → state, for those of ``ids`` that exist."""
        rows = self.conn.execute(
            f"SELECT id, state FROM deliveries WHERE {_IDS}", {"ids": json.dumps(list(ids))}
        )
        return {str(r["id"]): str(r["state"]) for r in rows}

    def retry_by_hand(self, ids: Collection[str], *, at: Instant) -> list[str]:
        """Dead and unconfirmed deliveries among ``ids`` back to ``pending``, due again at
        the occasion's own due time, attempts counted from zero, sent without asking the
        service first, and never too late (whoever retries it by hand wants it sent);
        returns those that moved."""
        with self.store.write() as conn:
            moved = move(
                conn, ids, (_DEAD, _UNCONFIRMED), _PENDING, at=at, now=at,
                detail="retried by hand",
                values={
                    "attempts": 0, "not_before": Expression("due_at"), "outcome_unknown": 0,
                    "expires_at": None,
                },
            )  # fmt: skip
        return moved

    def render_failures(self, ids: Collection[str]) -> list[RenderFailure]:
        """Those of ``ids`` that were skipped because their template did not render
        (reason ``render_error``), with what rendering them again needs."""
        rows = self.conn.execute(
            f"""SELECT id, campaign, contact_id, occasion, event_id, channel, due_at
            FROM deliveries WHERE {_IDS} AND state = 'skipped' AND reason = 'render_error'
            ORDER BY id""",
            {"ids": json.dumps(list(ids))},
        )
        return [cast(RenderFailure, dict(r)) for r in rows]

    def retry_rendered(
        self, messages: Mapping[str, Mapping[str, Any]], *, at: Instant
    ) -> list[str]:
        """Render failures (see :meth:`render_failures`) back to ``pending`` with the message
        rendered again (delivery id → ``{to, subject, text, html, card}``), due at the
        occasion's own due time, attempts from zero; returns those that moved."""
        moved: list[str] = []
        with self.store.write() as conn:
            for delivery_id, message in messages.items():
                moved += move(
                    conn, [delivery_id], _SKIPPED, _PENDING, at=at, now=at,
                    detail="rendered again and retried by hand",
                    values={
                        "message": json.dumps(dict(message), ensure_ascii=False),
                        "attempts": 0,
                        "not_before": Expression("due_at"),
                        "last_error": None,
                    },
                )  # fmt: skip
        return moved

    def confirm_by_hand(self, ids: Collection[str], *, at: Instant) -> list[str]:
        """Unconfirmed deliveries among ``ids`` to ``sent`` at ``at``: someone checked with
        the service that they did arrive; returns those that moved."""
        with self.store.write() as conn:
            return move(
                conn, ids, _UNCONFIRMED, _SENT, at=at, now=at, detail="confirmed by hand",
                values={"sent_at": at, "outcome_unknown": 0},
            )  # fmt: skip

    def cancel_by_hand(self, ids: Collection[str], *, at: Instant) -> list[str]:
        """Pending deliveries among ``ids`` to ``cancelled``: never sent; returns those
        that moved."""
        with self.store.write() as conn:
            return move(conn, ids, _PENDING, _CANCELLED, at=at, now=at, detail="cancelled by hand")
