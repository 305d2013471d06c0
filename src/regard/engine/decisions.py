"""The checks a due occasion goes through, in the contract's order, and what is recorded.

consent → unsubscribed → address → once_per_contact / cooldown / contact cap → holdout →
pending. Each check is a small indexed lookup for one contact, so a tick's cost follows the
number of due occasions.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.times import iso

# when a delivery counts against caps and cooldowns: its send time if sent; for one in
# flight, when it may go (not_before)
_INSTANT = (
    "CASE d.state WHEN 'sent' THEN coalesce(d.sent_at, d.created_at)"
    " ELSE coalesce(d.not_before, d.created_at) END"
)


def delivery_id(campaign: str, contact_id: str, occasion: str) -> str:
    """``d_`` + the first 32 hex digits of sha256(campaign ␟ contact ␟ occasion)."""
    key = f"{campaign}\x1f{contact_id}\x1f{occasion}".encode()
    return "d_" + hashlib.sha256(key).hexdigest()[:32]


def holdout_share(campaign: str, contact_id: str) -> float:
    """First 8 bytes of sha256("<campaign>:<contact>") big-endian, divided by 2^64."""
    digest = hashlib.sha256(f"{campaign}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(campaign: Campaign, contact_id: str) -> bool:
    """The contact is in the campaign's control group."""
    return campaign.holdout > 0 and holdout_share(campaign.id, contact_id) < campaign.holdout


def capped(
    conn: sqlite3.Connection, config: Config, campaign: Campaign, contact_id: str, at: int
) -> bool:
    """once_per_contact, cooldown or the contact cap forbids another delivery now.

    Deliveries recorded earlier in this very tick count too: they are rows already. Only
    deliveries sent or in flight count ("counting deliveries sent or pending"): a held-out
    contact never got the message, so it neither uses up once_per_contact nor starts a
    cooldown.
    """
    if campaign.once_per_contact or campaign.cooldown.total_seconds() > 0:
        count, latest = conn.execute(
            f"""
            SELECT count(*), max({_INSTANT}) FROM deliveries d
            WHERE d.contact_id = ? AND d.campaign = ?
              AND d.state IN ('sent', 'sending', 'pending')
            """,
            (contact_id, campaign.id),
        ).fetchone()
        if campaign.once_per_contact and count:
            return True
        cooldown = int(campaign.cooldown.total_seconds())
        if cooldown and latest is not None and latest > at - cooldown:
            return True
    limits = config.limits
    if limits.contact_max > 0:
        window = int(limits.contact_window.total_seconds())
        (recent,) = conn.execute(
            f"""
            SELECT count(*) FROM deliveries d
            WHERE d.contact_id = ? AND d.state IN ('sent', 'sending', 'pending')
              AND {_INSTANT} > ?
            """,
            (contact_id, at - window),
        ).fetchone()
        if recent >= limits.contact_max:
            return True
    return False


@dataclass
class Decision:
    """What a tick decided for one occasion: ``pending``, ``held_out`` or ``skipped``."""

    campaign: str
    contact_id: str
    occasion: str
    due_at: int
    decision: str
    reason: str | None = None
    event_id: str | None = None
    delivery_id: str = ""
    not_before: int | None = None
    message: dict[str, Any] | None = field(default=None, repr=False)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``plan --json`` object."""
        return {
            "campaign": self.campaign,
            "contact_id": self.contact_id,
            "occasion": self.occasion,
            "due_at": iso(self.due_at),
            "decision": self.decision,
            "reason": self.reason,
        }
