"""A tick: every enabled campaign evaluated at T, in priority order, each decision recorded.

``tick`` writes in one transaction; ``plan`` runs the very same code in a transaction that
is rolled back. A recorded (campaign, contact, occasion) is never revisited: due occasions
that already have a row are left out, and a row another tick recorded first at the same
time is left as it is (:meth:`regard.store.decisions.Decisions.record`).

``tick`` and ``plan`` take T as a datetime and convert it once; below them it travels as
an :class:`~regard.times.Instant`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from regard.campaigns.loader import CampaignSet
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.engine.decisions import Decision, capped, delivery_id, in_holdout
from regard.engine.messages import Renderer
from regard.engine.recipients import channel_address, consent_given, mobile_only, recipient
from regard.engine.windows import next_opening, release_due
from regard.store import Store
from regard.store.occasions import Candidate
from regard.times import Instant, to_epoch
from regard.triggers import Occasion, Span, due_occasions, seconds
from regard.triggers.anniversary import contact_zone


@dataclass
class TickResult:
    """What one tick at ``at`` decided, and how many due deliveries it held back."""

    at: Instant
    decisions: list[Decision] = field(default_factory=list)
    deferred: int = 0
    evaluated: int = 0  # due occasions the triggers found (recorded ones included)
    kind: str = "run"

    @property
    def counts(self) -> dict[str, int]:
        """Decisions by state: pending, held_out, skipped."""
        counts = {"pending": 0, "held_out": 0, "skipped": 0}
        for d in self.decisions:
            counts[d.decision] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary, for logs and tick records."""
        reasons: dict[str, int] = {}
        for d in self.decisions:
            if d.reason:
                reasons[d.reason] = reasons.get(d.reason, 0) + 1
        return {
            "evaluated": self.evaluated,
            **self.counts,
            "skipped_by_reason": reasons,
            "deferred": self.deferred,
        }


# what callers pass as "the campaigns": a list, a mapping by id, or a loaded CampaignSet
Campaigns = Iterable[Campaign] | Mapping[str, Campaign] | CampaignSet


def campaign_list(campaigns: Campaigns) -> list[Campaign]:
    """Campaigns from a list, a mapping by id, or a loaded set."""
    if isinstance(campaigns, CampaignSet):
        return list(campaigns.campaigns)
    if isinstance(campaigns, Mapping):
        return list(campaigns.values())
    return list(campaigns)


def in_priority_order(campaigns: Iterable[Campaign]) -> list[Campaign]:
    """Enabled campaigns, higher priority first, ties by id."""
    return sorted((c for c in campaigns if c.enabled), key=lambda c: (-c.priority, c.id))


def tick(
    store: Store, config: Config, campaigns: Campaigns, at: Instant, *, kind: str = "run"
) -> TickResult:
    """Evaluate every enabled campaign at ``at`` and record each decision, in one
    transaction; then hold back what is outside its window or over its daily limit.

    ``kind`` (run, daemon, simulate) names the caller; the caller records the tick itself.
    """
    with store.write():
        result = run_tick(store, config, campaign_list(campaigns), at)
    result.kind = kind
    return result


def plan(
    store: Store, config: Config, campaigns: Campaigns, at: Instant, *, campaign: str | None = None
) -> list[Decision]:
    """What a tick at ``at`` would decide (optionally only for one campaign), writing
    nothing: the tick itself, run in a transaction that is rolled back."""
    with store.rolled_back():
        result = run_tick(store, config, campaign_list(campaigns), at)
    return [d for d in result.decisions if campaign is None or d.campaign == campaign]


def run_tick(
    store: Store,
    config: Config,
    campaigns: list[Campaign],
    at: Instant,
    *,
    contact_ids: Sequence[str] | None = None,
) -> TickResult:
    """The tick's body inside an open write transaction (shared by tick, plan and explain)."""
    result = TickResult(at)
    renderer = Renderer(config)
    for campaign in in_priority_order(campaigns):
        span = campaign_span(config, campaign, at, contact_ids)
        if span is None:
            continue
        occasions = due_occasions(store, config, campaign.trigger, span)
        result.evaluated += len(occasions)
        due = candidates(store, config, campaign, occasions, at)
        if not due:
            continue
        looked_up = Lookups.of(store, campaign, due)
        for candidate in due:
            decision = decide(store, config, campaign, candidate, at, renderer, looked_up)
            if record(store, campaign, decision, at):
                result.decisions.append(decision)
    result.deferred = release_due(store, config, campaigns, at)
    return result


def campaign_span(
    config: Config, campaign: Campaign, at: Instant, contact_ids: Sequence[str] | None = None
) -> Span | None:
    """``[T - max_lateness, T]`` clipped to starts_at / ends_at (whole days in the config's
    time zone, ends_at inclusive); None when nothing of it is left."""
    lo, hi = at - seconds(campaign.max_lateness), int(at)
    if campaign.starts_at is not None:
        lo = max(lo, _midnight(campaign.starts_at, config))
    if campaign.ends_at is not None:
        hi = min(hi, _midnight(campaign.ends_at + timedelta(days=1), config) - 1)
    return Span(Instant(lo), Instant(hi), at, contact_ids) if lo <= hi else None


def _midnight(day: date, config: Config) -> int:
    return to_epoch(datetime.combine(day, datetime.min.time(), tzinfo=config.tz))


def candidates(
    store: Store,
    config: Config,
    campaign: Campaign,
    occasions: list[Occasion],
    at: Instant,
    *,
    unrecorded: bool = True,
) -> list[Candidate]:
    """The due occasions joined with their contacts as of ``at``: those in the audience
    (filtered in SQL) and, with ``unrecorded``, not yet recorded, in (due, contact,
    occasion) order."""
    return store.occasions.candidates(
        campaign.id,
        occasions,
        at,
        audience=campaign.audience,
        tz=config.timezone,
        unrecorded=unrecorded,
    )


@dataclass(frozen=True)
class Lookups:
    """What the decisions of one campaign's candidates need from the store, fetched for
    all of them at once: who unsubscribed from the channel, and the triggering events."""

    unsubscribed: frozenset[str]
    events: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(cls, store: Store, campaign: Campaign, due: Sequence[Candidate]) -> Lookups:
        channel = campaign.channel
        asked = [(c.occasion.contact_id, channel_address(channel, c.contact)) for c in due]
        event_ids = {c.occasion.event_id for c in due if c.occasion.event_id}
        return cls(
            frozenset(store.decisions.unsubscribed(channel, asked)),
            store.events.many(event_ids),
        )


def decide(
    store: Store,
    config: Config,
    campaign: Campaign,
    candidate: Candidate,
    at: Instant,
    renderer: Renderer,
    looked_up: Lookups,
) -> Decision:
    """One due occasion through the checks, in the contract's order."""
    occasion, contact = candidate.occasion, candidate.contact
    decision = Decision(
        campaign.id,
        occasion.contact_id,
        occasion.occasion,
        occasion.due_at,
        "skipped",
        event_id=occasion.event_id,
        delivery_id=delivery_id(campaign.id, occasion.contact_id, occasion.occasion),
    )
    channel = campaign.channel
    if not consent_given(config, channel, contact):
        decision.reason = "no_consent"
        return decision
    if occasion.contact_id in looked_up.unsubscribed:
        decision.reason = "unsubscribed"
        return decision
    try:
        to = recipient(channel, contact, mobile_only=mobile_only(config, campaign.provider))
    except LookupError:
        decision.reason = "no_address"
        return decision
    if capped(store, config, campaign, occasion.contact_id, at):
        decision.reason = "capped"
        return decision
    if in_holdout(campaign, occasion.contact_id):
        decision.decision = "held_out"
        return decision
    event = looked_up.events.get(occasion.event_id) if occasion.event_id else None
    message, error = renderer.render(campaign, contact, occasion, to, at, event)
    if message is None:
        decision.reason, decision.error = "render_error", error
        return decision
    decision.decision, decision.message = "pending", message
    tz = contact_zone(contact.get("timezone"), config.timezone)
    decision.not_before = Instant(next_opening(campaign.window, at, tz))
    return decision


def record(store: Store, campaign: Campaign, decision: Decision, at: Instant) -> bool:
    """Record the decision as a delivery row (and its first log line); False when another
    tick recorded this occasion first."""
    return bool(store.decisions.record([decision.as_delivery(campaign)], at))
