"""Unsubscribes: a suppression row stops a channel (or every channel, ``'*'``) for a contact.

Once a contact is forgotten its suppression rows stay, with the address replaced by
its keyed hash (:class:`regard.store.area.Pseudonyms`), so an address that comes back under a new id can still be recognised
as unsubscribed without regard keeping the address itself.

Addresses are stored and compared in one normal form, :func:`normal_address` (also the SQL
function ``normal_address(text)`` of every store connection): a provider that reports
``Spam.Complainer@example.com`` stops mail to ``spam.complainer@example.com`` too.
"""

from __future__ import annotations

from typing import TypedDict

from regard.channels import CHANNELS
from regard.channels import channel as channel_of
from regard.errors import InputError
from regard.store.area import Area, normal_address
from regard.times import Instant, now_instant


class Suppression(TypedDict):
    """One suppression of a contact: ``channel`` ``'*'`` stops every channel; ``address``
    is the e-mail or phone it was made for (a ``sha256:`` hash once forgotten, None for
    the channels without one)."""

    channel: str
    address: str | None
    reason: str
    created_at: Instant


__all__ = ["Suppression", "Suppressions", "normal_address", "unsubscribed_sql"]


class Suppressions(Area):
    """The ``suppressions`` table: unsubscribes and provider-reported unreachable addresses."""

    def add(self, contact_id: str, channel: str = "*", *, reason: str = "unsubscribed") -> bool:
        """Stop ``channel`` (default ``'*'``: every channel) for a contact, from now on.
        Returns False when that suppression was already there. Raises InputError for an
        unknown channel or contact."""
        if channel != "*" and channel not in CHANNELS:
            raise InputError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
        with self.store.write() as conn:
            row = conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
            if row is None:
                raise InputError(f"unknown contact {contact_id!r}")
            address = None if channel == "*" else channel_of(channel).address(dict(row))
            if address is not None:
                address = normal_address(address)
            exists = conn.execute(
                "SELECT 1 FROM suppressions WHERE contact_id = ? AND channel = ?",
                (contact_id, channel),
            ).fetchone()
            if exists:
                return False
            conn.execute(
                "INSERT INTO suppressions (contact_id, channel, address, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (contact_id, channel, address, reason, now_instant()),
            )
            return True

    def add_unreachable(
        self, contact_id: str, channel: str, address: str, *, reason: str, at: Instant
    ) -> None:
        """Stop ``address`` on ``channel``: a provider said it must not be used again
        (bounced, inactive, replied STOP). Recorded for the contact and by address, so it
        holds for any contact with that address (compared in its normal form)."""
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO suppressions (contact_id, channel, address, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (contact_id, channel, normal_address(address), reason, at),
            )

    def of(self, contact_id: str) -> list[Suppression]:
        """The contact's suppressions, oldest first."""
        rows = self.conn.execute(
            "SELECT channel, address, reason, created_at FROM suppressions "
            "WHERE contact_id = ? ORDER BY created_at, rowid",
            (contact_id,),
        )
        return [
            Suppression(channel=r[0], address=r[1], reason=r[2], created_at=Instant(r[3]))
            for r in rows
        ]


def unsubscribed_sql(contact: str, channel: str, address: str) -> str:
    """The one unsubscribe rule, as an SQL condition over three SQL expressions: true when
    a suppression on ``channel`` or on every channel (``'*'``) names the contact, or names
    its ``address`` (NULL for none) in its normal form (suppressions are stored in it) or
    hashed (the suppression of a contact forgotten since). The tick asks it of the contacts
    it decides for, dispatch of each delivery's ``to`` before it sends."""
    return f"""(
        EXISTS (SELECT 1 FROM suppressions s
                WHERE s.contact_id = {contact} AND s.channel IN ({channel}, '*'))
        OR ({address} IS NOT NULL AND EXISTS (
            SELECT 1 FROM suppressions s
            WHERE s.channel IN ({channel}, '*')
              AND s.address IN (normal_address({address}), address_hash({address}))))
    )"""
