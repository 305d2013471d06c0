"""What people do with deliveries by hand: list them, retry dead ones, cancel pending ones."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from regard.delivery.claims import log
from regard.errors import InputError
from regard.store import Store
from regard.times import iso

STATES = ("pending", "sending", "sent", "dead", "held_out", "skipped", "cancelled")
# the states whose reason means something; elsewhere it is reported as null
REASON_STATES = frozenset({"skipped", "dead"})


def list_deliveries(
    store: Store,
    *,
    state: str | None = None,
    campaign: str | None = None,
    contact: str | None = None,
) -> list[dict[str, Any]]:
    """Deliveries matching every given filter, oldest first, times as UTC ISO text.

    Message bodies are never included: they are personal and live only in the store.
    """
    if state is not None and state not in STATES:
        raise InputError(f"--state: unknown state {state!r} (one of {', '.join(STATES)})")
    where, params = [], []
    for column, value in (("state", state), ("campaign", campaign), ("contact_id", contact)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = "SELECT * FROM deliveries"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at, due_at, id"
    return [_public(row) for row in store.conn.execute(sql, params)]


def _public(row: Any) -> dict[str, Any]:
    pending = row["state"] == "pending"
    return {
        "delivery_id": row["id"],
        "campaign": row["campaign"],
        "contact_id": row["contact_id"],
        "occasion": row["occasion"],
        "state": row["state"],
        "reason": row["reason"] if row["state"] in REASON_STATES else None,
        "channel": row["channel"],
        "provider": row["provider"],
        "due_at": iso(row["due_at"]),
        "created_at": iso(row["created_at"]),
        "sent_at": iso(row["sent_at"]),
        "next_attempt_at": iso(row["not_before"] or row["due_at"]) if pending else None,
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "provider_message_id": row["provider_message_id"],
    }


def retry_deliveries(store: Store, ids: Sequence[str], *, at: int) -> list[str]:
    """Dead deliveries back to ``pending``, due again at once, attempts counted from zero.

    "At once" is the occasion's own due time, so the next run sends it also when that run
    acts at an earlier instant (``regard run --at``) than the clock of the retry.

    All or nothing: an unknown id, or one that is not dead, changes nothing and raises.
    """
    return _transition(
        store, ids, at=at, allowed="dead", verb="retried",
        sql="""UPDATE deliveries SET state = 'pending', attempts = 0, not_before = due_at,
               reason = NULL, updated_at = :at WHERE id IN (SELECT value FROM json_each(:ids))""",
        detail="retried by hand",
    )  # fmt: skip


def cancel_deliveries(store: Store, ids: Sequence[str], *, at: int) -> list[str]:
    """Pending deliveries to ``cancelled``: they will never be sent. All or nothing."""
    return _transition(
        store, ids, at=at, allowed="pending", verb="cancelled",
        sql="""UPDATE deliveries SET state = 'cancelled', updated_at = :at
               WHERE id IN (SELECT value FROM json_each(:ids))""",
        detail="cancelled by hand",
    )  # fmt: skip


def _transition(
    store: Store, ids: Sequence[str], *, at: int, allowed: str, verb: str, sql: str, detail: str
) -> list[str]:
    wanted = list(dict.fromkeys(ids))
    with store.write() as conn:
        found = {
            r["id"]: r["state"]
            for r in conn.execute(
                "SELECT id, state FROM deliveries WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            )
        }
        unknown = [i for i in wanted if i not in found]
        if unknown:
            raise InputError(f"no such delivery: {', '.join(unknown)} (nothing was {verb})")
        wrong = [f"{i} is {found[i]}" for i in wanted if found[i] != allowed]
        if wrong:
            raise InputError(
                f"only {allowed} deliveries can be {verb}: {'; '.join(wrong)} (nothing was {verb})"
            )
        conn.execute(sql, {"at": at, "ids": json.dumps(wanted)})
        log(conn, wanted, at, "pending" if allowed == "dead" else "cancelled", detail)
    return wanted
