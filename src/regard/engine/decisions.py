"""The checks a due occasion goes through, in the contract's order, and what is recorded.

address → bounced → (marketing only) consent → unsubscribed → once_per_contact / cooldown /
contact cap → holdout → pending. The bounces, unsubscribes and the counts the caps need are
looked up once per batch of a campaign's due occasions (one query each); the caps then count
the batch's own decisions in memory (:class:`Caps`), so a tick's cost follows the number of
due occasions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.store.decisions import Counted
from regard.store.lifecycle import DeliveryExit, DeliveryState, NewDelivery
from regard.times import Instant, iso


def delivery_id(campaign: str, contact_id: str, occasion: str, due_at: int) -> str:
    """``d_`` + the occasion's due instant (unix seconds, 10 hex digits) + the first 22 hex
    digits of sha256 of the three parts, each as a netstring (``<byte length>:<UTF-8
    bytes>,``): no two occasions share the encoded key, whatever characters their ids hold.

    The due instant comes first because a tick records a campaign's occasions in due order:
    its ids then arrive in order and land side by side at the end of the ids' index and the
    delivery log's. Ids that were hashes alone touched a page of each index per row, and
    every commit of a big tick wrote most of those pages again (a big day's records cost
    a third less CPU this way). Rows recorded under earlier encodings keep their ids: an
    occasion is recognised by its campaign, contact and occasion, never by its id."""
    a, b, c = campaign.encode("utf-8"), contact_id.encode("utf-8"), occasion.encode("utf-8")
    key = b"%d:%s,%d:%s,%d:%s," % (len(a), a, len(b), b, len(c), c)
    return f"d_{due_at & 0xFF_FFFF_FFFF:010x}{hashlib.sha256(key).hexdigest()[:22]}"


def holdout_share(campaign: str, contact_id: str) -> float:
    """First 8 bytes of sha256("<campaign>:<contact>") big-endian, divided by 2^64."""
    digest = hashlib.sha256(f"{campaign}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(campaign: Campaign, contact_id: str) -> bool:
    """The contact is in the campaign's control group."""
    return campaign.holdout > 0 and holdout_share(campaign.id, contact_id) < campaign.holdout


class Caps:
    """once_per_contact, cooldown and the contact cap for the candidates of one batch of a
    tick: what the store counted for their contacts in the batch's read snapshot
    (:meth:`regard.store.decisions.Decisions.counted_many`, which holds every decision of
    this tick recorded before the batch), plus this batch's own pending decisions so far.

    Only deliveries sent or in flight count ("counting deliveries sent or pending"): a
    held-out contact never got the message, so it neither uses up once_per_contact nor
    starts a cooldown. A pending decision counts at its ``not_before``, as its row will.
    """

    def __init__(
        self, config: Config, campaign: Campaign, at: Instant, counted: Mapping[str, Counted]
    ) -> None:
        self.cooldown = int(campaign.cooldown.total_seconds())
        self.once = campaign.once_per_contact
        self.contact_max = config.limits.contact_max
        self.since = at - int(config.limits.contact_window.total_seconds())
        self.at = at
        self._counts = {
            contact_id: _Tally(c.in_campaign, c.latest_in_campaign, c.recent)
            for contact_id, c in counted.items()
        }

    @property
    def active(self) -> bool:
        """Whether the campaign has a cap at all (else nothing needs counting)."""
        return self.once or self.cooldown > 0 or self.contact_max > 0

    def capped(self, contact_id: str) -> bool:
        """once_per_contact, cooldown or the contact cap forbids another delivery now."""
        if not self.active:
            return False
        tally = self._counts.get(contact_id)
        if tally is None:
            return False
        if self.once and tally.in_campaign:
            return True
        latest = tally.latest_in_campaign
        if self.cooldown and latest is not None and latest > self.at - self.cooldown:
            return True
        return self.contact_max > 0 and tally.recent >= self.contact_max

    def count(self, contact_id: str, instant: Instant) -> None:
        """A pending decision of this campaign for the contact, counting at ``instant``."""
        tally = self.count_elsewhere(contact_id, instant)
        tally.in_campaign += 1
        latest = tally.latest_in_campaign
        tally.latest_in_campaign = instant if latest is None else max(latest, instant)

    def count_elsewhere(self, contact_id: str, instant: Instant) -> _Tally:
        """A pending decision of another campaign for the contact, counting at ``instant``
        (toward the contact cap only); returns the contact's tally."""
        tally = self._counts.setdefault(contact_id, _Tally(0, None, 0))
        tally.recent += instant > self.since
        return tally


@dataclass
class _Tally:
    in_campaign: int
    latest_in_campaign: int | None
    recent: int


@dataclass(slots=True)
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

    def as_delivery(
        self, campaign: Campaign, pacing: Pacing | None = None, message_text: str | None = None
    ) -> NewDelivery:
        """The row this decision becomes, with the pacing dispatch keeps from the campaign
        as it was decided: its window, its daily limit, and when the occasion is too late
        (``max_lateness`` after it was due, not counting the wait for a closed window).
        ``pacing``: the campaign's, made once for many decisions (:meth:`Pacing.of`);
        ``message_text``: the message already serialised as it is stored (in its place)."""
        pacing = pacing or Pacing.of(campaign)
        lateness = pacing.lateness
        window_wait = 0
        if self.not_before is not None and self.decided_at is not None:
            window_wait = max(0, self.not_before - self.decided_at)
        return NewDelivery(
            id=self.delivery_id,
            campaign=self.campaign,
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
            message=message_text if message_text is not None else self.message,
            error=self.error,
            purpose=campaign.purpose,
            exit=self.exit,
            pace_window=pacing.window,
            pace_daily_limit=campaign.daily_limit,
            expires_at=self.due_at + lateness + window_wait,
        )


@dataclass(frozen=True)
class Pacing:
    """What every delivery row of a campaign keeps of it: its window as JSON, its lateness."""

    window: str | None
    lateness: int

    @classmethod
    def of(cls, campaign: Campaign) -> Pacing:
        window = campaign.window.model_dump_json() if campaign.window else None
        return cls(window, int(campaign.max_lateness.total_seconds()))


def exit_of(campaign: Campaign, start: Instant | None, tz: str) -> DeliveryExit | None:
    """What dispatch needs to re-check the campaign's ``[exit]`` on the delivery row: its
    event type, the start it counts from, its ``where`` (naive dates in ``tz``)."""
    if campaign.exit is None or start is None:
        return None
    return DeliveryExit(campaign.exit.event, start, campaign.exit.where or None, tz)
