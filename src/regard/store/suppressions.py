"""Suppressions: unsubscribes and bounced addresses, one row each, of one of two kinds.

- ``unsubscribed``: the contact (or whoever has the address) wants no marketing on a
  channel (``'*'``: on every channel). Service messages still go.
- ``bounced``: the address cannot be reached on the channel (a hard bounce, an inactive
  address, an unknown number); nothing of any purpose goes to it again. A bounce belongs
  to the address, not to the contact: a contact who gives a new address is reachable again.

Each row says where it came from (``source``: ``cli``, ``link``, ``hook:<provider>``,
``send:<provider>``) and when. Once a contact is forgotten its rows stay, with the address
replaced by its keyed hash (:class:`regard.store.area.Pseudonyms`), so an address that comes back under a new id is still
recognised without regard keeping the address itself.

:func:`suppressed_sql` is the one rule, asked by the tick of the contacts it decides for
and by dispatch of each delivery's ``to`` before it sends.

Addresses are stored and compared in one normal form, :func:`normal_address` (also the SQL
function ``normal_address(text)`` of every store connection): a provider that reports
``Spam.Complainer@example.com`` stops mail to ``spam.complainer@example.com`` too.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from regard.channels import CHANNELS
from regard.channels import channel as channel_of
from regard.errors import InputError
from regard.store.area import Area, normal_address
from regard.times import Instant, now_instant

Kind = Literal["unsubscribed", "bounced"]
KINDS: tuple[Kind, ...] = ("unsubscribed", "bounced")


class Suppression(TypedDict):
    """One suppression of a contact: ``channel`` ``'*'`` stops every channel; ``address``
    is the e-mail or phone it was made for (a ``sha256:`` hash once forgotten, None for
    the channels without one)."""

    channel: str
    address: str | None
    kind: Kind
    reason: str
    source: str | None
    created_at: Instant


__all__ = [
    "Suppression", "Suppressions", "bounced_sql", "normal_address", "suppressed_sql",
    "unsubscribed_sql",
]  # fmt: skip


class LinkTarget(TypedDict):
    """Whom an unsubscribe link's delivery reached: the contact, the channel, the
    contact's locale, and whether they are unsubscribed from marketing there now."""

    contact_id: str
    channel: str
    locale: str | None
    unsubscribed: bool


class Suppressions(Area):
    """The ``suppressions`` table: unsubscribes and bounced addresses."""

    def add(
        self,
        contact_id: str,
        channel: str = "*",
        *,
        reason: str = "unsubscribed",
        source: str = "cli",
        at: Instant | None = None,
    ) -> bool:
        """Unsubscribe a contact from marketing on ``channel`` (default ``'*'``: every
        channel), from ``at`` (default now). Returns False when the contact was already
        unsubscribed there (nothing changes then). Raises InputError for an unknown channel
        or contact."""
        _check_channel(channel)
        with self.store.write() as conn:
            row = conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
            if row is None:
                raise InputError(f"unknown contact {contact_id!r}")
            address = None if channel == "*" else channel_of(channel).address(dict(row))
            if address is not None:
                address = normal_address(address)
            exists = conn.execute(
                "SELECT 1 FROM suppressions WHERE contact_id = ? AND channel IN (?, '*') "
                "AND kind = 'unsubscribed'",
                (contact_id, channel),
            ).fetchone()
            if exists:
                return False
            conn.execute(
                "INSERT INTO suppressions (contact_id, channel, address, kind, reason, source, "
                "created_at) VALUES (?, ?, ?, 'unsubscribed', ?, ?, ?)",
                (contact_id, channel, address, reason, source, at or now_instant()),
            )
            return True

    def remove(self, contact_id: str, channel: str = "*") -> bool:
        """Resubscribe a contact to marketing on ``channel`` (default ``'*'``: every
        channel): their unsubscribes there, by contact or by its address, are removed; an
        unsubscribe from every channel becomes one of each other channel when only
        ``channel`` is resubscribed. Bounces stay. Returns False when there was nothing to
        remove. Raises InputError for an unknown channel or contact."""
        _check_channel(channel)
        with self.store.write() as conn:
            row = conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
            if row is None:
                raise InputError(f"unknown contact {contact_id!r}")
            contact = dict(row)
            channels = list(CHANNELS) if channel == "*" else [channel]
            changed = 0
            if channel != "*":
                everything = conn.execute(
                    "SELECT reason, source, created_at FROM suppressions WHERE contact_id = ? "
                    "AND channel = '*' AND kind = 'unsubscribed'",
                    (contact_id,),
                ).fetchall()
                for kept in everything:
                    for other in CHANNELS:
                        if other != channel:
                            conn.execute(
                                "INSERT INTO suppressions (contact_id, channel, address, kind, "
                                "reason, source, created_at) "
                                "VALUES (?, ?, ?, 'unsubscribed', ?, ?, ?)",
                                (contact_id, other, channel_of(other).address(contact), *kept),
                            )
                changed += conn.execute(
                    "DELETE FROM suppressions WHERE contact_id = ? AND channel = '*' "
                    "AND kind = 'unsubscribed'",
                    (contact_id,),
                ).rowcount
            else:
                changed += conn.execute(
                    "DELETE FROM suppressions WHERE contact_id = ? AND channel = '*' "
                    "AND kind = 'unsubscribed'",
                    (contact_id,),
                ).rowcount
            for name in channels:
                address = channel_of(name).address(contact)
                changed += conn.execute(
                    "DELETE FROM suppressions WHERE channel = ? AND kind = 'unsubscribed' "
                    "AND (contact_id = ? OR (CAST(? AS TEXT) IS NOT NULL AND address IN (?, ?, ?)))",
                    (name, contact_id, address, address, _lower(address), self._hash(address)),
                ).rowcount
            return changed > 0

    def add_unreachable(
        self,
        contact_id: str | None,
        channel: str,
        address: str,
        *,
        reason: str,
        at: Instant,
        source: str | None = None,
    ) -> None:
        """``address`` has bounced on ``channel``: a provider said it must not be used again
        (a hard bounce, an inactive address, an unknown number). Recorded by address (and
        for the contact, when known), so it holds for any contact with that address, for
        every purpose."""
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO suppressions (contact_id, channel, address, kind, reason, source, "
                "created_at) VALUES (?, ?, ?, 'bounced', ?, ?, ?)",
                (contact_id, channel, normal_address(address), reason, source or "provider", at),
            )

    def link_target(self, delivery_id: str) -> LinkTarget | None:
        """The contact and channel of delivery ``delivery_id``, for its unsubscribe link;
        None when there is no such delivery or its contact is gone (forgotten)."""
        row = self.conn.execute(
            "SELECT d.contact_id, d.channel, c.locale, c.email, c.phone FROM deliveries d "
            "JOIN contacts c ON c.id = d.contact_id WHERE d.id = ?",
            (delivery_id,),
        ).fetchone()
        if row is None:
            return None
        address = {"email": row["email"], "sms": row["phone"]}.get(row["channel"])
        found = self.conn.execute(
            f"SELECT {unsubscribed_sql('?1', '?2', '?3')}",
            (row["contact_id"], row["channel"], address),
        ).fetchone()[0]
        return LinkTarget(
            contact_id=row["contact_id"],
            channel=row["channel"],
            locale=row["locale"],
            unsubscribed=bool(found),
        )

    def contacts_with(self, channel: str, address: str) -> list[str]:
        """The ids of the contacts whose address on ``channel`` is ``address`` (compared
        as the unsubscribe rule compares them: as written or folded)."""
        return [contact_id for contact_id, _ in self._holders(channel, address)]

    def _holders(self, channel: str, address: str) -> list[tuple[str, str]]:
        """(id, the address as the contact has it) of the contacts with ``address``."""
        column = {"email": "email", "sms": "phone"}.get(channel)
        if column is None:
            return []
        rows = self.conn.execute(
            f"SELECT id, {column} FROM contacts WHERE {column} = ?1 "
            f"OR lower_address({column}) = lower_address(?1) ORDER BY id",
            (address,),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def by_address(
        self,
        kind: Kind,
        channel: str,
        address: str,
        *,
        reason: str,
        source: str,
        at: Instant,
    ) -> bool:
        """A provider reported ``address`` on ``channel`` as ``kind`` (bounced, or
        unsubscribed: a spam complaint, a STOP reply). Recorded for every contact with the
        address. False when it was recorded already, or when no contact has the address
        (nothing changes then)."""
        _check_channel(channel)
        with self.store.write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM suppressions WHERE channel IN (?, '*') AND kind = ? "
                "AND (lower_address(address) = lower_address(?) OR address = ?)",
                (channel, kind, address, self._hash(address)),
            ).fetchone()
            if exists:
                return False
            holders = self._holders(channel, address)
            if not holders:
                return False  # no contact has the address: nothing to stop
            for owner, theirs in holders:  # kept as the contact has it, as the rule compares
                conn.execute(
                    "INSERT INTO suppressions (contact_id, channel, address, kind, reason, "
                    "source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (owner, channel, theirs, kind, reason, source, at),
                )
            return True

    def remove_by_address(self, channel: str, address: str) -> bool:
        """The person at ``address`` resubscribed on ``channel`` (a START reply, a
        reactivation): the unsubscribes naming the address, or a contact who has it, are
        removed. Bounces stay. False when there was none."""
        _check_channel(channel)
        with self.store.write() as conn:
            changed = conn.execute(
                "DELETE FROM suppressions WHERE channel = ? AND kind = 'unsubscribed' "
                "AND (lower_address(address) = lower_address(?) OR address = ?)",
                (channel, address, self._hash(address)),
            ).rowcount
            for owner in self.contacts_with(channel, address):
                changed += int(self.remove(owner, channel))
        return changed > 0

    def of(self, contact_id: str) -> list[Suppression]:
        """The contact's suppressions, oldest first: those naming the contact, and those
        naming one of its current addresses."""
        contact = self.conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
        addresses = (
            [a for a in (channel_of(n).address(dict(contact)) for n in CHANNELS) if a]
            if contact is not None
            else []
        )
        hashed = self.store.pseudonyms.address
        forms = sorted({f for a in addresses for f in (a, a.lower(), hashed(a))})
        marks = ",".join("?" * len(forms)) or "NULL"
        rows = self.conn.execute(
            "SELECT channel, address, kind, reason, source, created_at FROM suppressions "
            f"WHERE contact_id = ? OR address IN ({marks}) ORDER BY created_at, rowid",
            (contact_id, *forms),
        )
        seen: set[tuple[str, str, int]] = set()
        found: list[Suppression] = []
        for r in rows:
            if r[2] == "bounced" and (r[1] is None or r[1] not in forms):
                continue  # a bounce is the address's: an address since replaced is reachable
            key = (r[0], r[2], r[5])
            if key in seen:
                continue
            seen.add(key)
            found.append(
                Suppression(
                    channel=r[0],
                    address=r[1],
                    kind=r[2],
                    reason=r[3],
                    source=r[4],
                    created_at=Instant(r[5]),
                )
            )
        return found

    def _hash(self, address: str | None) -> str | None:
        return None if address is None else self.store.pseudonyms.address(address)

    def summary(self, contact_id: str) -> dict[Kind, dict[str, Instant]]:
        """The contact's suppressions by kind: channel (``'*'`` for all) → the earliest
        instant it holds from."""
        result: dict[Kind, dict[str, Instant]] = {kind: {} for kind in KINDS}
        for s in self.of(contact_id):
            result[s["kind"]].setdefault(s["channel"], s["created_at"])
        return result


def _check_channel(channel: str) -> None:
    if channel != "*" and channel not in CHANNELS:
        raise InputError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")


def _lower(address: str | None) -> str | None:
    return None if address is None else normal_address(address)


def suppressed_sql(contact: str, channel: str, address: str, kind: Kind) -> str:
    """The one suppression rule, as an SQL condition over three SQL expressions: true when
    a suppression of ``kind`` stops ``channel`` for the contact.

    - ``unsubscribed``: a row on ``channel`` or on every channel (``'*'``) names the contact,
      or names its ``address`` (NULL for none) as written, lower-cased or hashed (the
      suppression of a contact forgotten since).
    - ``bounced``: a row on ``channel`` names the address in one of those forms (a bounce is
      the address's, whoever has it now); for channels without an address, the contact.

    The address is cast to text: as a bare parameter PostgreSQL could not type it.
    """
    address = f"CAST({address} AS TEXT)"
    by_address = f"""({address} IS NOT NULL AND EXISTS (
            SELECT 1 FROM suppressions s
            WHERE s.kind = '{kind}' AND s.channel IN ({channel}, '*')
              AND s.address IN ({address}, lower_address({address}), address_hash({address}))))"""
    if kind == "bounced":
        return f"""({by_address}
        OR ({address} IS NULL AND EXISTS (SELECT 1 FROM suppressions s
                WHERE s.kind = 'bounced' AND s.contact_id = {contact}
                  AND s.channel IN ({channel}, '*'))))"""
    return f"""(
        EXISTS (SELECT 1 FROM suppressions s
                WHERE s.kind = 'unsubscribed' AND s.contact_id = {contact}
                  AND s.channel IN ({channel}, '*'))
        OR {by_address}
    )"""


def unsubscribed_sql(contact: str, channel: str, address: str) -> str:
    """:func:`suppressed_sql` for unsubscribes (they stop marketing only)."""
    return suppressed_sql(contact, channel, address, "unsubscribed")


def bounced_sql(contact: str, channel: str, address: str) -> str:
    """:func:`suppressed_sql` for bounced addresses (they stop every purpose)."""
    return suppressed_sql(contact, channel, address, "bounced")
