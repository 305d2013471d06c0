"""The checks a due occasion goes through, in the contract's order, and what is recorded.

address → bounced → (marketing only) consent → unsubscribed → once_per_contact / cooldown /
contact cap → holdout → pending. The bounces and unsubscribes of a campaign's due occasions are looked up in one query; the caps
in one small indexed lookup per occasion (they count what this tick recorded just before),
so a tick's cost follows the number of due occasions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.store import Store
from regard.store.lifecycle import DeliveryExit, DeliveryState, NewDelivery
from regard.times import Instant, iso


def delivery_id(campaign: str, contact_id: str, occasion: str) -> str:
    """``d_`` + the first 32 hex digits of sha256 of the three parts, each as a netstring
    (``<byte length>:<UTF-8 bytes>,``): no two occasions share the encoded key, whatever
    characters their ids hold. (Rows recorded before this encoding keep their ids: an
    occasion is recognised by its campaign, contact and occasion, never by its id.)"""
    key = b"".join(
        b"%d:%s," % (len(raw), raw)
        for raw in (part.encode("utf-8") for part in (campaign, contact_id, occasion))
    )
    return "d_" + hashlib.sha256(key).hexdigest()[:32]


def holdout_share(campaign: str, contact_id: str) -> float:
    """First 8 bytes of sha256("<campaign>:<contact>") big-endian, divided by 2^64."""
    digest = hashlib.sha256(f"{campaign}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(campaign: Campaign, contact_id: str) -> bool:
    """The contact is in the campaign's control group."""
    return campaign.holdout > 0 and holdout_share(campaign.id, contact_id) < campaign.holdout


def capped(store: Store, config: Config, campaign: Campaign, contact_id: str, at: Instant) -> bool:
    """once_per_contact, cooldown or the contact cap forbids another delivery now.

    Deliveries recorded earlier in this very tick count too: they are rows already. Only
    deliveries sent or in flight count ("counting deliveries sent or pending"): a held-out
    contact never got the message, so it neither uses up once_per_contact nor starts a
    cooldown.
    """
    cooldown = int(campaign.cooldown.total_seconds())
    limits = config.limits
    if not (campaign.once_per_contact or cooldown > 0 or limits.contact_max > 0):
        return False
    window = int(limits.contact_window.total_seconds())
    counted = store.decisions.counted(contact_id, campaign.id, Instant(at - window))
    if campaign.once_per_contact and counted.in_campaign:
        return True
    latest = counted.latest_in_campaign
    if cooldown and latest is not None and latest > at - cooldown:
        return True
    return limits.contact_max > 0 and counted.recent >= limits.contact_max


@dataclass
class Decision:
    """What a tick decided for one occasion: ``pending``, ``held_out`` or ``skipped``."""

    campaign: str
    contact_id: str
    occasion: str
    due_at: Instant
    decision: str
    reason: str | None = None
    event_id: str | None = None
    delivery_id: str = ""
    not_before: Instant | None = None
    decided_at: Instant | None = None  # the tick's T
    message: dict[str, Any] | None = field(default=None, repr=False)
    error: str | None = None
    exit: DeliveryExit | None = None  # the campaign's [exit], for dispatch to re-check
    simulated: bool = False  # plan/preview: a follow-up of a send the replay simulated

    def as_json(self) -> dict[str, Any]:
        """The ``plan --json`` object."""
        return {
            "campaign": self.campaign,
            "contact_id": self.contact_id,
            "occasion": self.occasion,
            "due_at": iso(self.due_at),
            "decision": self.decision,
            "reason": self.reason,
            # only for a follow-up of a send that plan's replay simulated
            **({"simulated": True} if self.simulated else {}),
        }

    def as_delivery(self, campaign: Campaign) -> NewDelivery:
        """The row this decision becomes, with the pacing dispatch keeps from the campaign
        as it was decided: its window, its daily limit, and when the occasion is too late
        (``max_lateness`` after it was due, not counting the wait for a closed window)."""
        lateness = int(campaign.max_lateness.total_seconds())
        window_wait = 0
        if self.not_before is not None and self.decided_at is not None:
            window_wait = max(0, self.not_before - self.decided_at)
        return NewDelivery(
            id=self.delivery_id,
            campaign=campaign.id,
            contact_id=self.contact_id,
            occasion=self.occasion,
            event_id=self.event_id,
            channel=campaign.channel,
            provider=campaign.provider,
            state=DeliveryState(self.decision),
            reason=self.reason,
            priority=campaign.priority,
            due_at=self.due_at,
            not_before=self.not_before,
            message=self.message,
            error=self.error,
            purpose=campaign.purpose,
            exit=self.exit,
            pace_window=campaign.window.model_dump_json() if campaign.window else None,
            pace_daily_limit=campaign.daily_limit,
            expires_at=self.due_at + lateness + window_wait,
        )


def exit_of(campaign: Campaign, start: Instant | None, tz: str) -> DeliveryExit | None:
    """What dispatch needs to re-check the campaign's ``[exit]`` on the delivery row: its
    event type, the start it counts from, its ``where`` (naive dates in ``tz``)."""
    if campaign.exit is None or start is None:
        return None
    return DeliveryExit(campaign.exit.event, start, campaign.exit.where or None, tz)
