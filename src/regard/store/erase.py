"""Erasing a contact from the store (``regard contacts forget``, :mod:`regard.forget`):

- the contact row is deleted;
- its events stay as anonymous rows: ``contact_id`` becomes ``forgotten:<keyed hash of the id>``
  and every property is dropped (a shop's free-form properties may hold anything personal),
  so counts, amounts and times still add up in reports;
- its deliveries keep their state for the counts, with the same pseudonym, while the
  rendered message (``to``, subject, texts), the provider's answers and the log details
  are erased; deliveries not sent yet are cancelled;
- its suppressions stay (an unsubscribe must outlive the erasure) with the address
  replaced by its keyed hash (:class:`~regard.store.area.Pseudonyms`);
- the id is remembered as a keyed hash in ``forgotten``: importing it again skips its rows.

The outbox files of ``file`` providers are the provider's to clean
(:func:`regard.providers.file.remove_outbox_lines`), and the WAL is truncated afterwards
(:meth:`regard.store.Store.checkpoint`), so that no old page with the data lingers in it
(``secure_delete`` zeroes what is freed in the database file itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from regard.channels import CHANNELS, channel
from regard.errors import InputError
from regard.store.area import ADDRESS_PREFIX
from regard.store.lifecycle import DeliveryState, move
from regard.times import now_instant

if TYPE_CHECKING:
    from regard.store import Store

PERSONAL_FIELDS = (
    "email", "phone", "first_name", "last_name", "company", "street", "address2",
)  # fmt: skip


@dataclass(frozen=True)
class Erasure:
    """What the store erased of one contact (``already_forgotten``: nothing, it was)."""

    contact_id: str
    pseudonym: str
    events: int = 0
    deliveries: int = 0
    cancelled: int = 0
    suppressions: int = 0
    already_forgotten: bool = False


def pseudonym(store: Store, contact_id: str) -> str:
    """The contact id that anonymous rows of a forgotten contact carry."""
    return f"forgotten:{store.pseudonyms.contact(contact_id)}"


def erase_contact(store: Store, contact_id: str) -> Erasure:
    """Erase ``contact_id``'s personal data from the store (see the module docstring), in
    one transaction. Raises InputError for an id that is neither in the store nor
    forgotten before."""
    alias = pseudonym(store, contact_id)
    id_hash = store.pseudonyms.contact(contact_id)
    now = now_instant()
    with store.write() as conn:
        contact = conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
        if contact is None:
            known = conn.execute("SELECT 1 FROM forgotten WHERE id_hash = ?", (id_hash,)).fetchone()
            if known is None:
                raise InputError(f"unknown contact {contact_id!r}")
            return Erasure(contact_id, alias, already_forgotten=True)
        personal = [str(contact[k]) for k in PERSONAL_FIELDS if contact[k]]
        events = conn.execute(
            "UPDATE events SET contact_id = ?, properties = '{}' WHERE contact_id = ?",
            (alias, contact_id),
        ).rowcount
        unsent = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM deliveries WHERE contact_id = ? AND state IN ('pending', 'sending')",
                (contact_id,),
            )
        ]
        cancelled = move(
            conn,
            unsent,
            (DeliveryState.PENDING, DeliveryState.SENDING),
            DeliveryState.CANCELLED,
            at=now,
            now=now,
            detail="forgotten",
            reason="forgotten",
        )
        conn.execute(
            "UPDATE delivery_log SET detail = NULL WHERE delivery_id IN "
            "(SELECT id FROM deliveries WHERE contact_id = ?)",
            (contact_id,),
        )
        reasons = conn.execute(
            "SELECT id, reason FROM deliveries WHERE contact_id = ? AND reason IS NOT NULL",
            (contact_id,),
        ).fetchall()
        conn.executemany(
            "UPDATE deliveries SET reason = ? WHERE id = ?",
            [(_scrub(row["reason"], personal), row["id"]) for row in reasons],
        )
        deliveries = conn.execute(
            "UPDATE deliveries SET contact_id = ?, message = NULL, last_error = NULL, "
            "lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE contact_id = ?",
            (alias, now, contact_id),
        ).rowcount
        addresses = [a for a in (channel(n).address(dict(contact)) for n in CHANNELS) if a]
        rows = conn.execute(
            "SELECT rowid, address, reason FROM suppressions WHERE contact_id = ? "
            f"OR lower_address(address) IN ({','.join('?' * len(addresses)) or 'NULL'})",
            (contact_id, *(a.lower() for a in addresses)),
        ).fetchall()
        conn.executemany(
            "UPDATE suppressions SET contact_id = ?, address = ?, reason = ? WHERE rowid = ?",
            [
                (
                    alias,
                    _hashed(store, row["address"]),
                    _scrub(row["reason"], personal),
                    row["rowid"],
                )
                for row in rows
            ],
        )
        conn.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
        conn.execute(
            "INSERT INTO forgotten (id_hash, forgotten_at) VALUES (?, ?) "
            "ON CONFLICT (id_hash) DO UPDATE SET forgotten_at = excluded.forgotten_at",
            (id_hash, now),
        )
    return Erasure(
        contact_id,
        alias,
        events=events,
        deliveries=deliveries,
        cancelled=len(cancelled),
        suppressions=len(rows),
    )


def _hashed(store: Store, address: str | None) -> str | None:
    if address and not address.startswith(ADDRESS_PREFIX):
        return store.pseudonyms.address(address)
    return address


def _scrub(text: str | None, personal: list[str]) -> str | None:
    """``text`` with every personal value replaced, whatever its case: services quote an
    address as they normalise it (Postmark lower-cases it)."""
    if not text or not personal:
        return text
    values = sorted({v for v in personal if v.strip()}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(v) for v in values), re.IGNORECASE)
    return pattern.sub("[erased]", text)
