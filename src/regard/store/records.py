"""The records where the store meets dispatch and the providers: the delivery record, a
claim, and the rows of the delivery listings."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from regard.times import iso

RECORD_FIELDS = (
    "delivery_id", "campaign", "contact_id", "occasion", "channel",
    "to", "subject", "text", "html", "card", "created_at",
)  # fmt: skip
MESSAGE_FIELDS = ("to", "subject", "text", "html", "card")


class DeliveryRecord(TypedDict):
    """The delivery record of the contract: what providers receive, the outbox holds and
    webhooks post. A part the message does not have is None, never invented."""

    delivery_id: str
    campaign: str
    contact_id: str
    occasion: str
    channel: str
    to: str | dict[str, Any] | None  # an address; for a card, the postal address
    subject: str | None
    text: str | None
    html: str | None
    card: dict[str, Any] | None  # a card's design, font and sender
    created_at: str  # UTC ISO 8601


def delivery_record(row: sqlite3.Row | Mapping[str, Any]) -> DeliveryRecord:
    """A ``deliveries`` row (``id``, ``campaign``, ``contact_id``, ``occasion``,
    ``channel``, ``message``, ``created_at``) → the delivery record of the contract.

    ``message`` holds the part rendered at enqueue (``{to, subject, text, html, card}``);
    the record is that plus the row's ids. Raises ValueError when ``message`` is not a
    JSON object.
    """
    message = json.loads(row["message"] or "{}")
    if not isinstance(message, dict):
        raise ValueError(f"delivery {row['id']}: message is not a JSON object")
    return DeliveryRecord(
        delivery_id=row["id"],
        campaign=row["campaign"],
        contact_id=row["contact_id"],
        occasion=row["occasion"],
        channel=row["channel"],
        to=message.get("to"),
        subject=message.get("subject"),
        text=message.get("text"),
        html=message.get("html"),
        card=message.get("card"),
        created_at=iso(int(row["created_at"])) or "",
    )


@dataclass(frozen=True)
class Claim:
    """One claimed delivery: what dispatch needs to send it and to record the outcome."""

    id: str
    campaign: str
    contact_id: str
    occasion: str
    channel: str
    provider: str
    message: str | None  # the stored message, JSON
    created_at: int
    attempt: int  # the number of this attempt (1 = the first)
    reclaimed: bool  # taken over from an expired claim (a crashed or stuck run)
    # the last attempt may have reached the service without an answer coming back
    outcome_unknown: bool = False
    first_attempt_at: int | None = None  # real time of the first attempt

    @property
    def uncertain(self) -> bool:
        """An earlier attempt may have reached the service: it timed out after sending,
        or its run was killed while it was ``sending``."""
        return self.reclaimed or self.outcome_unknown

    def record(self) -> DeliveryRecord:
        """The delivery record to send. Raises ValueError for a broken stored message."""
        return delivery_record(
            {
                "id": self.id,
                "campaign": self.campaign,
                "contact_id": self.contact_id,
                "occasion": self.occasion,
                "channel": self.channel,
                "message": self.message,
                "created_at": self.created_at,
            }
        )


class DueDelivery(TypedDict):
    """A delivery a dispatch would send now (what ``run --dry-run`` lists)."""

    id: str
    campaign: str
    contact_id: str
    occasion: str
    channel: str
    provider: str
    due_at: int
    attempts: int


class DeliveryRow(TypedDict):
    """A delivery as stored, without its message (personal: it stays in the store)."""

    id: str
    campaign: str
    contact_id: str
    occasion: str
    state: str
    reason: str | None
    channel: str
    provider: str
    due_at: int
    created_at: int
    sent_at: int | None
    not_before: int | None
    attempts: int
    last_error: str | None
    provider_message_id: str | None


class PacedDelivery(TypedDict):
    """A due pending delivery of a campaign with a window or a daily limit, with what the
    pacing needs of its contact."""

    id: str
    campaign: str
    contact_id: str
    due_at: int
    timezone: str | None  # the contact's own zone, if it has one
    total_spent: float
