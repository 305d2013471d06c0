"""What a tick at T would do for one contact and one campaign, and why.

Built on the tick itself: the whole tick runs for that one contact in a transaction that
is rolled back (so higher-priority campaigns count against the contact cap exactly as they
would), and when it decides nothing for the campaign, the trigger is asked again to say
why: not due yet (and when it will be), too late, outside starts/ends, not in the
audience, or decided earlier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.engine.decisions import Decision
from regard.engine.journeys import mark_simulated, replay_earlier_steps
from regard.engine.tick import Campaigns, campaign_list, campaign_span, candidates, run_tick
from regard.errors import InputError
from regard.store import Store
from regard.store.history import History
from regard.times import Instant, format_duration, iso
from regard.triggers import Occasion, Span, due_occasions, seconds

# the span around T explain first looks in for the occasion it reports as "was due" or
# "will be due"
_HORIZON = int(timedelta(days=400).total_seconds())
# beyond that span it looks further, in spans twice as long each time, up to a century
_FARTHEST = int(timedelta(days=36525).total_seconds())

REASONS = {
    "no_consent": "no consent for the channel",
    "unsubscribed": "unsubscribed from the channel",
    "no_address": "no address for the channel",
    "bounced": "the address bounced (no message of any purpose goes to it)",
    "capped": "capped (once per contact, cooldown or the contact cap)",
    "render_error": "the template does not render",
    "exited": "the journey's exit came (its [exit] event after the occasion's start)",
}


@dataclass
class Explanation:
    """The answer: a decision a tick would record (pending, held_out, skipped), or none,
    with ``reason`` (a word) and ``detail`` (a sentence)."""

    campaign: str
    contact_id: str
    at: Instant
    decision: str | None
    reason: str | None
    detail: str
    occasion: str | None = None
    due_at: Instant | None = None
    event_id: str | None = None
    message: dict[str, Any] | None = field(default=None, repr=False)
    error: str | None = None  # the template error, for render_error
    simulated: bool = False  # a follow-up of a send the replay simulated

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "contact_id": self.contact_id,
            "at": iso(self.at),
            "decision": self.decision,
            "reason": self.reason,
            "detail": self.detail,
            "occasion": self.occasion,
            "due_at": iso(self.due_at),
            "event_id": self.event_id,
            "message": self.message,
            **({"simulated": True} if self.simulated else {}),
        }


def explain(
    store: Store,
    config: Config,
    campaign: Campaign,
    contact_id: str,
    at: Instant,
    event_id: str | None = None,
    *,
    campaigns: Campaigns | None = None,
) -> Explanation:
    """What a tick at ``at`` would do for ``contact_id`` in ``campaign`` (only the occasion
    of ``event_id`` when given). ``campaigns`` are the others evaluated in the same tick.
    Raises InputError for an unknown contact."""
    others = [c for c in campaign_list(campaigns or []) if c.id != campaign.id]
    with store.rolled_back():
        if store.contacts.get(contact_id) is None:
            raise InputError(f"no contact with id {contact_id!r}")
        if event_id is not None:
            event = store.events.get(event_id)
            if event is None or event["contact_id"] != contact_id:
                raise InputError(f"contact {contact_id!r} has no event with id {event_id!r}")
        if not campaign.enabled:
            return _none(campaign, contact_id, at, "disabled", "the campaign is disabled")
        evaluated = [*others, campaign]
        simulated = replay_earlier_steps(store, config, evaluated, at, contact_ids=[contact_id])
        result = run_tick(store, config, evaluated, at, contact_ids=[contact_id])
        mark_simulated(result.decisions, simulated)
        mine = [d for d in result.decisions if d.campaign == campaign.id and _wanted(d, event_id)]
        if mine:
            return _decided(mine[0], at)
        return _why_not(store, config, campaign, contact_id, at, event_id)


def _wanted(item: Decision | Occasion, event_id: str | None) -> bool:
    return event_id is None or event_id in (item.event_id, item.occasion)


def _decided(d: Decision, at: Instant) -> Explanation:
    if d.decision == "pending":
        detail = f"would send for occasion {d.occasion} (due {iso(d.due_at)})"
        if d.simulated:
            detail += ", after a send that is simulated (not in the store yet)"
        if d.not_before is not None and d.not_before > at:
            detail += f", at the window's opening {iso(d.not_before)}"
    elif d.decision == "held_out":
        detail = f"held out: the contact is in the campaign's control group ({d.occasion})"
    else:
        detail = f"would be skipped: {REASONS.get(d.reason or '', d.reason)}"
        if d.error:
            detail += f": {d.error}"
    return Explanation(
        d.campaign,
        d.contact_id,
        at,
        d.decision,
        d.reason if d.decision == "skipped" else None,
        detail,
        d.occasion,
        d.due_at,
        d.event_id,
        d.message,
        d.error,
        d.simulated,
    )


def _none(campaign: Campaign, contact_id: str, at: Instant, reason: str, detail: str,
          occasion: Occasion | None = None) -> Explanation:  # fmt: skip
    return Explanation(
        campaign.id,
        contact_id,
        at,
        None,
        reason,
        detail,
        occasion.occasion if occasion else None,
        occasion.due_at if occasion else None,
        occasion.event_id if occasion else None,
    )


def _why_not(
    store: Store,
    config: Config,
    campaign: Campaign,
    contact_id: str,
    at: Instant,
    event_id: str | None,
) -> Explanation:
    lateness = seconds(campaign.max_lateness)
    trigger = campaign.trigger

    def occasions(lo: int, hi: int) -> list[Occasion]:
        span = Span(Instant(lo), Instant(hi), at, [contact_id])
        return [o for o in due_occasions(store, config, trigger, span) if _wanted(o, event_id)]

    near_lo, near_hi = at - lateness - _HORIZON, at + _HORIZON
    found = occasions(near_lo, near_hi)
    past = [o for o in found if o.due_at < at - lateness]
    future = [o for o in found if o.due_at > at]
    if not past:
        past = _further(occasions, near_lo - 1, -1)
    if not future:
        future = _further(occasions, near_hi + 1, +1)
    current = [o for o in found if at - lateness <= o.due_at <= at]
    # what was decided, whatever its age (the campaign's deliveries of this contact): an
    # occasion due now, else the latest one before, when that one was decided
    decided = History(store).decided(campaign.id, contact_id)
    latest = current if current else past[-1:]
    recorded_ones = [o for o in latest if o.occasion in decided]
    if recorded_ones:
        o = recorded_ones[-1]
        recorded = decided[o.occasion]
        how = recorded.state + (f" ({recorded.reason})" if recorded.reason else "")
        detail = f"already decided by the tick at {iso(recorded.created_at)}: {how}"
        return _none(campaign, contact_id, at, "already_decided", detail, o)
    if current:
        span = campaign_span(config, campaign, at, [contact_id])
        inside = [o for o in current if span is not None and span.lo <= o.due_at <= span.hi]
        if not inside:
            detail = f"due {iso(current[0].due_at)}, outside the campaign's starts_at / ends_at"
            return _none(campaign, contact_id, at, "outside_dates", detail, current[0])
        if not candidates(store, config, campaign, inside, at, unrecorded=False):
            return _none(campaign, contact_id, at, "not_in_audience",
                         "not in the campaign's audience", inside[0])  # fmt: skip
    missed = ""
    if past:
        o = past[-1]
        missed = (
            f"was due {iso(o.due_at)} ({o.occasion}), more than max_lateness "
            f"({format_duration(campaign.max_lateness)}) before {iso(at)}"
        )
    if future:
        o = future[0]
        detail = f"not due at {iso(at)}: due {iso(o.due_at)} ({o.occasion})"
        return _none(campaign, contact_id, at, "not_due",
                     detail + (f"; the one before {missed}" if missed else ""), o)  # fmt: skip
    if past:
        return _none(campaign, contact_id, at, "too_late", missed, past[-1])
    return _none(campaign, contact_id, at, "no_occasion", trigger.no_occasion())


def _further(
    occasions: Callable[[int, int], list[Occasion]], edge: int, way: int
) -> list[Occasion]:
    """The occasions nearest to ``edge`` beyond it (``way`` -1: before it, back to 1970;
    +1: after it, up to a century ahead): the trigger is asked for spans twice as long each
    time, from ``edge`` outwards, until one has an occasion. Each is one of the trigger's
    indexed queries for this contact, and only the occasions of the span that holds the
    nearest are read, however long the contact's history."""
    bound = 0 if way < 0 else edge + _FARTHEST
    length, near = _HORIZON, edge
    while (near >= bound) if way < 0 else (near <= bound):
        far = max(near - length, bound) if way < 0 else min(near + length, bound)
        found = occasions(min(near, far), max(near, far))
        if found:
            return found
        near, length = far + way, length * 2
    return []
