"""What a tick needs to decide and record: unsubscribes, caps and cooldowns, what is
decided already, and the recording of its decisions."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from regard.store.area import Area
from regard.store.lifecycle import DeliveryState, NewDelivery, create
from regard.store.suppressions import Kind, suppressed_sql
from regard.times import Instant

# when a delivery counts against caps and cooldowns: its send time if sent; for one in
# flight, when it may go (not_before)
_INSTANT = (
    "CASE d.state WHEN 'sent' THEN coalesce(d.sent_at, d.created_at)"
    " ELSE coalesce(d.not_before, d.created_at) END"
)
# the states that count: sent, or still on its way
_COUNTED = "('sent', 'sending', 'pending', 'unconfirmed')"  # an unconfirmed one may have arrived


@dataclass(frozen=True)
class Counted:
    """A contact's deliveries that count against caps and cooldowns (sent, sending or
    pending), each at its instant: when it was sent, or when it may go (``not_before``,
    else its creation)."""

    in_campaign: int  # of the campaign asked about
    latest_in_campaign: Instant | None  # the latest instant among those
    recent: int  # of any campaign, with an instant after ``since``


class Recorded(NamedTuple):
    """The delivery a tick recorded for an occasion: its state, reason and the tick's T."""

    state: DeliveryState
    reason: str | None
    created_at: Instant


class Decisions(Area):
    """The tick's questions about earlier deliveries, and the recording of its decisions."""

    def unsubscribed(self, channel: str, recipients: Iterable[tuple[str, str | None]]) -> set[str]:
        """The contacts among ``recipients`` (contact id, its address on ``channel`` or
        None) that have unsubscribed from ``channel``, in one query.

        A suppression stops a contact when it is on ``channel`` or on every channel
        (``'*'``), and names the contact or its address: the address as written,
        lower-cased, or hashed (the suppression of a contact forgotten since), the rule
        dispatch applies to the message's ``to`` before it sends.
        """
        return self.suppressed(channel, recipients, "unsubscribed")

    def bounced(self, channel: str, recipients: Iterable[tuple[str, str | None]]) -> set[str]:
        """The contacts among ``recipients`` (contact id, address on ``channel`` or None)
        whose address on ``channel`` has bounced, in one query."""
        return self.suppressed(channel, recipients, "bounced")

    def suppressed(
        self, channel: str, recipients: Iterable[tuple[str, str | None]], kind: Kind
    ) -> set[str]:
        """The contacts among ``recipients`` that a suppression of ``kind`` stops on
        ``channel`` (:func:`regard.store.suppressions.suppressed_sql`), in one query."""
        asked = [[contact_id, address] for contact_id, address in recipients]
        if not asked:
            return set()
        rows = self.conn.execute(
            f"""
            WITH asked (contact_id, address) AS (
                SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
                FROM json_each(:asked)
            )
            SELECT a.contact_id FROM asked a
            WHERE {suppressed_sql("a.contact_id", ":channel", "a.address", kind)}
            """,
            {"asked": json.dumps(asked), "channel": channel},
        )
        return {row[0] for row in rows}

    def counted(self, contact_id: str, campaign_id: str, since: Instant) -> Counted:
        """The contact's deliveries that count against caps and cooldowns, in one indexed
        query (index: contact). Deliveries recorded earlier in the same tick count too:
        they are rows already."""
        in_campaign, latest, recent = self.conn.execute(
            f"""
            SELECT coalesce(sum(d.campaign = ?1), 0),
                   max(CASE WHEN d.campaign = ?1 THEN {_INSTANT} END),
                   coalesce(sum({_INSTANT} > ?2), 0)
            FROM deliveries d WHERE d.contact_id = ?3 AND d.state IN {_COUNTED}
            """,
            (campaign_id, since, contact_id),
        ).fetchone()
        return Counted(in_campaign, latest, recent)

    def counted_many(
        self, contact_ids: Collection[str], campaign_id: str, since: Instant
    ) -> dict[str, Counted]:
        """:meth:`counted` for each of ``contact_ids`` at once, in one indexed query
        (index: contact): the contacts of one batch of a tick's candidates. A contact
        without a counted delivery is left out (it counts nothing). The contact index
        always: without it SQLite may pick the state index for a long IN-list and read every
        counted delivery of the store."""
        ids = sorted(set(contact_ids))
        if not ids:
            return {}
        rows = self.conn.execute(
            f"""
            SELECT d.contact_id,
                   coalesce(sum(CASE WHEN d.campaign = ? THEN 1 ELSE 0 END), 0),
                   max(CASE WHEN d.campaign = ? THEN {_INSTANT} END),
                   coalesce(sum(CASE WHEN {_INSTANT} > ? THEN 1 ELSE 0 END), 0)
            FROM deliveries d INDEXED BY deliveries_contact_time
            WHERE d.contact_id IN ({", ".join("?" for _ in ids)}) AND d.state IN {_COUNTED}
            GROUP BY d.contact_id
            """,
            [campaign_id, campaign_id, since, *ids],
        )
        return {str(r[0]): Counted(int(r[1]), r[2], int(r[3])) for r in rows}

    def recorded(self, campaign_id: str, contact_id: str, occasion: str) -> Recorded | None:
        """The delivery recorded for this occasion of the campaign, if any."""
        row = self.conn.execute(
            "SELECT state, reason, created_at FROM deliveries"
            " WHERE campaign = ? AND contact_id = ? AND occasion = ?",
            (campaign_id, contact_id, occasion),
        ).fetchone()
        if row is None:
            return None
        return Recorded(DeliveryState(row["state"]), row["reason"], row["created_at"])

    def record(self, deliveries: Sequence[NewDelivery], at: Instant) -> list[str]:
        """Record the decisions of the tick at ``at`` as new deliveries (each with its first
        log line) through :func:`regard.store.lifecycle.create`; returns the ids recorded.
        An occasion another tick recorded first is left as it is (and not returned).

        Inside a transaction (the tick's) it joins it without a savepoint of its own: a
        tick records each decision as it makes it, and a savepoint per row would make every
        insert copy its pages to a statement journal first.
        """
        if self.conn.in_transaction:
            return create(self.conn, deliveries, at=at)
        with self.store.write() as conn:
            return create(conn, deliveries, at=at)
