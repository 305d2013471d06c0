"""Unsubscribes: a suppression row stops a channel (or every channel, ``'*'``) for a contact.

Once a contact is forgotten its suppression rows stay, with the address replaced by
:func:`address_hash`, so an address that comes back under a new id can still be recognised
as unsubscribed without regard keeping the address itself.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Literal

from regard.channels import CHANNELS
from regard.errors import InputError
from regard.store.area import Area
from regard.times import to_epoch, utcnow

if TYPE_CHECKING:
    from regard.store import Store

Channel = Literal["email", "sms", "card", "webhook", "*"]


def unsubscribe(
    store: Store, contact_id: str, channel: str = "*", *, reason: str = "unsubscribed"
) -> bool:
    """Stop ``channel`` (default ``'*'``: every channel) for a contact. Returns False when
    that suppression was already there. Raises InputError for an unknown contact."""
    if channel != "*" and channel not in CHANNELS:
        raise InputError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
    with store.write() as conn:
        row = conn.execute(
            "SELECT email, phone FROM contacts WHERE id = ?", (contact_id,)
        ).fetchone()
        if row is None:
            raise InputError(f"unknown contact {contact_id!r}")
        address = {"email": row["email"], "sms": row["phone"]}.get(channel)
        exists = conn.execute(
            "SELECT 1 FROM suppressions WHERE contact_id = ? AND channel = ?", (contact_id, channel)
        ).fetchone()
        if exists:
            return False
        conn.execute(
            "INSERT INTO suppressions (contact_id, channel, address, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (contact_id, channel, address, reason, to_epoch(utcnow())),
        )
        return True


def suppressions_of(conn: sqlite3.Connection, contact_id: str) -> list[dict[str, object]]:
    """The contact's suppression rows, oldest first."""
    return [
        dict(r)
        for r in conn.execute(
            "SELECT channel, address, reason, created_at FROM suppressions "
            "WHERE contact_id = ? ORDER BY created_at, rowid",
            (contact_id,),
        )
    ]


class Suppressions(Area):
    """The ``suppressions`` table: unsubscribes and provider-reported unreachable addresses."""
