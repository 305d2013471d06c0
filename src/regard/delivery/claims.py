"""Claims and state changes of deliveries: the only code that moves a delivery between
``pending``, ``sending``, ``sent`` and ``dead``.

A claim is one ``BEGIN IMMEDIATE`` transaction that turns a small batch of due deliveries
into ``sending`` under this process's name (``lease_owner``) until ``lease_until``. SQLite
lets one writer in at a time, so two processes can never claim the same row: whoever comes
second no longer finds it due. A claim that outlives its lease (its process was killed)
is taken up again by the next dispatch, with the same delivery id and so the same
Idempotency-Key. Outcomes are recorded only by the claim's owner, and only while it still
holds the row; every change is appended to ``delivery_log``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from regard.config import DeliverySettings
from regard.delivery import owners
from regard.delivery.backoff import retry_delay
from regard.store import Store

# a pending delivery is due when its next attempt time (or, before any attempt, the
# occasion's due time) has come
DUE_PENDING = "state = 'pending' AND coalesce(not_before, due_at) <= :at"
# a claim is taken up again when its lease has ended, or at once when its run is gone
EXPIRED_CLAIM = (
    "state = 'sending' AND (lease_until < :now"
    " OR lease_owner IN (SELECT value FROM json_each(:gone)))"
)
# the contact (for this channel or all) or the address has a suppression; ``d`` = deliveries.
# The address matches as the tick matches it (engine.recipients.unsubscribed): as written,
# lower-cased, or hashed (a forgotten contact's suppression).
UNSUBSCRIBED = """(
    EXISTS (SELECT 1 FROM suppressions s
            WHERE s.contact_id = d.contact_id AND s.channel IN (d.channel, '*'))
    OR EXISTS (SELECT 1 FROM suppressions s
               WHERE s.channel IN (d.channel, '*')
                 AND json_type(d.message, '$.to') = 'text'
                 AND s.address IN (json_extract(d.message, '$.to'),
                                   lower(json_extract(d.message, '$.to')),
                                   address_hash(json_extract(d.message, '$.to'))))
)"""

CLAIM_COLUMNS = (
    "id, campaign, contact_id, occasion, channel, provider, message, created_at, attempts"
)
REASON_LIMIT = 500


@dataclass(frozen=True)
class Claim:
    """One claimed delivery: what dispatch needs to send it and record the outcome."""

    row: sqlite3.Row
    reclaimed: bool  # taken over from an expired claim (a crashed or stuck run)

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def attempt(self) -> int:
        """The number of this attempt (1 = the first)."""
        return int(self.row["attempts"])


def log(conn: sqlite3.Connection, ids: Iterable[str], at: int, state: str, detail: str) -> None:
    """Append one ``delivery_log`` line per delivery."""
    conn.executemany(
        "INSERT INTO delivery_log (delivery_id, at, state, detail) VALUES (?, ?, ?, ?)",
        [(i, at, state, detail) for i in ids],
    )


def skip_unsubscribed(store: Store, *, at: int, now: int) -> int:
    """Due deliveries whose contact (for that channel, or for all) or address has been
    unsubscribed since the tick decided: ``skipped`` with reason ``unsubscribed``, never sent.

    A delivery may wait hours for its window or its next attempt; an unsubscribe in between
    must still stop it. Returns how many were skipped.
    """
    with store.write() as conn:
        rows = conn.execute(
            f"""
            UPDATE deliveries AS d
            SET state = 'skipped', reason = 'unsubscribed', updated_at = :now
            WHERE {DUE_PENDING}
              AND {UNSUBSCRIBED}
            RETURNING id
            """,
            {"at": at, "now": now},
        ).fetchall()
        log(conn, [r[0] for r in rows], at, "skipped", "unsubscribed before it was sent")
    return len(rows)


def abandoned(conn: sqlite3.Connection) -> list[str]:
    """Owners of claims whose run has certainly ended (see :mod:`regard.delivery.owners`)."""
    rows = conn.execute("SELECT DISTINCT lease_owner FROM deliveries WHERE state = 'sending'")
    return owners.gone(r[0] for r in rows if r[0])


def due_providers(
    conn: sqlite3.Connection, at: int, now: int, gone: Sequence[str] = ()
) -> list[str]:
    """The providers that have deliveries to send at ``at`` (or claims to take up)."""
    rows = conn.execute(
        f"SELECT DISTINCT provider FROM deliveries WHERE ({DUE_PENDING}) OR ({EXPIRED_CLAIM})",
        {"at": at, "now": now, "gone": json.dumps(list(gone))},
    )
    return sorted(r[0] for r in rows)


def claim(
    store: Store,
    *,
    provider: str,
    owner: str,
    at: int,
    now: int,
    lease_seconds: int,
    limit: int,
    gone: Sequence[str] = (),
) -> list[Claim]:
    """Claim up to ``limit`` due deliveries of ``provider`` for ``owner``, atomically.

    Higher campaign priority and earlier due time go first. Claims whose lease ended, or
    whose run is ``gone``, are taken up too. Each claim counts as an attempt (a crashed
    attempt may have reached the provider, so it counts too).
    """
    with store.write() as conn:
        found = conn.execute(
            f"""
            SELECT id, state, lease_owner FROM deliveries
            WHERE provider = :provider AND (({DUE_PENDING}) OR ({EXPIRED_CLAIM}))
            ORDER BY priority DESC, coalesce(not_before, due_at), id
            LIMIT :limit
            """,
            {
                "provider": provider, "at": at, "now": now, "limit": limit,
                "gone": json.dumps(list(gone)),
            },
        ).fetchall()  # fmt: skip
        if not found:
            return []
        reclaimed = {r["id"] for r in found if r["state"] == "sending"}
        orphaned = {r["id"] for r in found if r["state"] == "sending" and r["lease_owner"] in gone}
        rows = conn.execute(
            f"""
            UPDATE deliveries
            SET state = 'sending', lease_owner = :owner, lease_until = :until,
                attempts = attempts + 1, updated_at = :now
            WHERE id IN (SELECT value FROM json_each(:ids))
            RETURNING {CLAIM_COLUMNS}
            """,
            {
                "owner": owner,
                "until": now + lease_seconds,
                "now": now,
                "ids": json.dumps([r["id"] for r in found]),
            },
        ).fetchall()
        fresh = [r["id"] for r in rows if r["id"] not in reclaimed]
        log(conn, fresh, at, "sending", f"claimed by {owner}")
        log(conn, reclaimed - orphaned, at, "sending", f"claim expired; taken up again by {owner}")
        log(
            conn, orphaned, at, "sending", f"claim of a run that is gone; taken up again by {owner}"
        )
    return [Claim(r, r["id"] in reclaimed) for r in rows]


def release(store: Store, ids: Sequence[str], *, owner: str, at: int) -> int:
    """Give claimed but unsent deliveries back (a stopping run): pending, attempt not counted."""
    if not ids:
        return 0
    with store.write() as conn:
        rows = conn.execute(
            """
            UPDATE deliveries
            SET state = 'pending', lease_owner = NULL, lease_until = NULL,
                attempts = max(attempts - 1, 0)
            WHERE id IN (SELECT value FROM json_each(:ids))
              AND state = 'sending' AND lease_owner = :owner
            RETURNING id
            """,
            {"ids": json.dumps(list(ids)), "owner": owner},
        ).fetchall()
        log(conn, [r[0] for r in rows], at, "pending", "released unsent: the run was stopped")
    return len(rows)


def _settle(
    conn: sqlite3.Connection, claimed: Claim, owner: str, now: int, **values: object
) -> bool:
    """End a claim with ``values`` set, only if ``owner`` still holds it (a run whose lease
    expired and was taken over must not overwrite the new holder's outcome)."""
    sets = ", ".join(f"{column} = :{column}" for column in values)
    cursor = conn.execute(
        f"""
        UPDATE deliveries
        SET {sets}, lease_owner = NULL, lease_until = NULL, updated_at = :updated_at
        WHERE id = :id AND state = 'sending' AND lease_owner = :owner
        """,
        {**values, "updated_at": now, "id": claimed.id, "owner": owner},
    )
    return cursor.rowcount == 1


def record_sent(
    store: Store,
    claimed: Claim,
    *,
    owner: str,
    at: int,
    now: int,
    message_id: str | None,
    cost: Decimal | None,
) -> bool:
    """The provider accepted it. False when the claim was lost (another run took it over)."""
    with store.write() as conn:
        ok = _settle(
            conn, claimed, owner, now,
            state="sent", sent_at=at, provider_message_id=message_id,
            cost=float(cost) if cost is not None else None, reason=None,
        )  # fmt: skip
        if ok:
            detail = f"attempt {claimed.attempt}" + (f": {message_id}" if message_id else "")
            log(conn, [claimed.id], at, "sent", detail)
    return ok


def record_retry(
    store: Store,
    claimed: Claim,
    *,
    owner: str,
    at: int,
    now: int,
    reason: str,
    retry_after: float | None,
    settings: DeliverySettings,
) -> str | None:
    """A passing failure: pending again after the backoff, or ``dead`` when attempts are
    used up. Returns the new state, or None when the claim was lost."""
    reason = _short(reason)
    with store.write() as conn:
        if claimed.attempt >= settings.attempts:
            final = _short(f"gave up after {claimed.attempt} attempts: {reason}")
            ok = _settle(conn, claimed, owner, now, state="dead", reason=final, last_error=reason)
            if ok:
                log(conn, [claimed.id], at, "dead", final)
            return "dead" if ok else None
        delay = retry_delay(claimed.attempt, settings, retry_after)
        next_at = at + int(delay.total_seconds())
        ok = _settle(
            conn, claimed, owner, now, state="pending", not_before=next_at, last_error=reason
        )
        if ok:
            log(conn, [claimed.id], at, "pending", f"attempt {claimed.attempt}: {reason}")
    return "pending" if ok else None


def record_dead(
    store: Store,
    claimed: Claim,
    *,
    owner: str,
    at: int,
    now: int,
    reason: str,
    unsubscribe: str | None,
) -> bool:
    """A permanent failure: ``dead`` at once with the provider's answer kept. When the
    provider says the address must not be used again, a suppression is recorded for it."""
    reason = _short(reason)
    with store.write() as conn:
        if not _settle(conn, claimed, owner, now, state="dead", reason=reason, last_error=reason):
            return False
        log(conn, [claimed.id], at, "dead", f"attempt {claimed.attempt}: {reason}")
        if unsubscribe:
            conn.execute(
                """
                INSERT INTO suppressions (contact_id, channel, address, reason, created_at)
                VALUES (?, ?, ?, ?, ?)
                """,
                (
                    claimed.row["contact_id"],
                    claimed.row["channel"],
                    unsubscribe,
                    f"provider {claimed.row['provider']}: {reason}",
                    at,
                ),
            )
    return True


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT] + "…"


def mark_sent_simulated(
    store: Store, *, at: int, now: int, costs: dict[str, float]
) -> list[tuple[str, str]]:
    """``simulate``: every due delivery is sent at ``at`` without calling any provider.

    Returns (delivery id, provider) of each; ``costs`` maps provider → cost per delivery.
    """
    with store.write() as conn:
        rows = conn.execute(
            f"""
            UPDATE deliveries
            SET state = 'sent', sent_at = :at, attempts = attempts + 1, updated_at = :now,
                cost = (SELECT value FROM json_each(:costs) WHERE key = deliveries.provider)
            WHERE {DUE_PENDING}
            RETURNING id, provider
            """,
            {"at": at, "now": now, "costs": json.dumps(costs)},
        ).fetchall()
        log(conn, [r[0] for r in rows], at, "sent", "simulated: no provider was called")
    return [(r[0], r[1]) for r in rows]
