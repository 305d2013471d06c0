"""A tick: every enabled campaign evaluated at T, in priority order, each decision recorded.

``tick`` writes in one transaction; ``plan`` runs the very same code in a transaction that
is rolled back. A recorded (campaign, contact, occasion) is never revisited: due occasions
that already have a row are left out, and the insert is ``ON CONFLICT DO NOTHING`` for the
case of two ticks at once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from regard.campaigns.loader import CampaignSet
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.engine.decisions import Decision, capped, delivery_id, in_holdout
from regard.engine.facts import audience_filter, facts_select
from regard.engine.messages import Renderer
from regard.engine.recipients import consent_given, recipient, unsubscribed
from regard.engine.windows import next_opening, release_due
from regard.store.contacts import DERIVED_FACTS, contact_from_row
from regard.times import to_epoch
from regard.triggers import Occasion, Span, due_occasions, seconds
from regard.triggers.anniversary import contact_zone

if TYPE_CHECKING:
    from regard.store import Store


@dataclass
class TickResult:
    """What one tick at ``at`` decided, and how many due deliveries it held back."""

    at: int
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
    store: Store, config: Config, campaigns: Campaigns, at: datetime, *, kind: str = "run"
) -> TickResult:
    """Evaluate every enabled campaign at ``at`` and record each decision, in one
    transaction; then hold back what is outside its window or over its daily limit.

    ``kind`` (run, daemon, simulate) names the caller; the caller records the tick itself.
    """
    chosen, moment = campaign_list(campaigns), to_epoch(at)
    with store.write() as conn:
        result = run_tick(conn, config, chosen, moment)
        result.deferred = release_due(store, config, chosen, moment)
    result.kind = kind
    return result


def plan(
    store: Store, config: Config, campaigns: Campaigns, at: datetime, *, campaign: str | None = None
) -> list[Decision]:
    """What a tick at ``at`` would decide (optionally only for one campaign), writing
    nothing: the tick itself, run in a transaction that is rolled back."""
    with store.rolled_back() as conn:
        result = run_tick(conn, config, campaign_list(campaigns), to_epoch(at))
    return [d for d in result.decisions if campaign is None or d.campaign == campaign]


def run_tick(
    conn: sqlite3.Connection,
    config: Config,
    campaigns: list[Campaign],
    at: int,
    *,
    contact_ids: Sequence[str] | None = None,
) -> TickResult:
    """The tick's body on an open write transaction (shared by tick, plan and explain)."""
    result = TickResult(at)
    renderer = Renderer(conn, config)
    for campaign in in_priority_order(campaigns):
        span = campaign_span(config, campaign, at, contact_ids)
        if span is None:
            continue
        occasions = due_occasions(conn, config, campaign, span)
        result.evaluated += len(occasions)
        for row in candidates(conn, config, campaign, occasions, at):
            decision = decide(conn, config, campaign, row, at, renderer)
            if record(conn, campaign, decision, at):
                result.decisions.append(decision)
    return result


def campaign_span(
    config: Config, campaign: Campaign, at: int, contact_ids: Sequence[str] | None = None
) -> Span | None:
    """``[T - max_lateness, T]`` clipped to starts_at / ends_at (whole days in the config's
    time zone, ends_at inclusive); None when nothing of it is left."""
    lo, hi = at - seconds(campaign.max_lateness), at
    if campaign.starts_at is not None:
        lo = max(lo, _midnight(campaign.starts_at, config))
    if campaign.ends_at is not None:
        hi = min(hi, _midnight(campaign.ends_at + timedelta(days=1), config) - 1)
    return Span(lo, hi, at, contact_ids) if lo <= hi else None


def _midnight(day: date, config: Config) -> int:
    return to_epoch(datetime.combine(day, datetime.min.time(), tzinfo=config.tz))


def candidates(
    conn: sqlite3.Connection,
    config: Config,
    campaign: Campaign,
    occasions: list[Occasion],
    at: int,
    *,
    audience: bool = True,
    unrecorded: bool = True,
) -> list[dict[str, Any]]:
    """The due occasions joined with their contacts as of ``at``: those in the audience
    (filtered in SQL) and not yet recorded, in (due, contact, occasion) order."""
    if not occasions:
        return []
    due = json.dumps([[o.contact_id, o.occasion, o.due_at, o.event_id] for o in occasions])
    where, params = (
        audience_filter(campaign.audience, at, config.timezone) if audience else ("1", [])
    )
    sql = f"""
        WITH due (contact_id, occasion, due_at, event_id) AS (
            SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                   json_extract(value, '$[2]'), json_extract(value, '$[3]')
            FROM json_each(?)
        )
        SELECT due.occasion AS due_occasion, due.due_at AS due_due_at,
               due.event_id AS due_event_id, c.*, {facts_select(at)}
        FROM due JOIN contacts c ON c.id = due.contact_id
        WHERE ({where})
    """
    args: list[Any] = [due, *params]
    if unrecorded:
        sql += """
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.campaign = ?
                          AND d.contact_id = due.contact_id AND d.occasion = due.occasion)"""
        args.append(campaign.id)
    sql += " ORDER BY due.due_at, due.contact_id, due.occasion"
    rows = []
    for row in conn.execute(sql, args):
        raw = dict(row)
        occasion = Occasion(
            raw.pop("due_due_at"), raw["id"], raw.pop("due_occasion"), raw.pop("due_event_id")
        )
        for name in DERIVED_FACTS:
            raw[name] = raw.pop(f"asof_{name}")
        rows.append({"occasion": occasion, "contact": contact_from_row(raw)})
    return rows


def decide(
    conn: sqlite3.Connection,
    config: Config,
    campaign: Campaign,
    row: dict[str, Any],
    at: int,
    renderer: Renderer,
) -> Decision:
    """One due occasion through the checks, in the contract's order."""
    occasion: Occasion = row["occasion"]
    contact: dict[str, Any] = row["contact"]
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
    if unsubscribed(conn, channel, contact):
        decision.reason = "unsubscribed"
        return decision
    try:
        to = recipient(channel, contact)
    except LookupError:
        decision.reason = "no_address"
        return decision
    if capped(conn, config, campaign, occasion.contact_id, at):
        decision.reason = "capped"
        return decision
    if in_holdout(campaign, occasion.contact_id):
        decision.decision = "held_out"
        return decision
    message, error = renderer.render(campaign, contact, occasion, to, at)
    if message is None:
        decision.reason, decision.error = "render_error", error
        return decision
    decision.decision, decision.message = "pending", message
    tz = contact_zone(contact.get("timezone"), config.timezone)
    decision.not_before = next_opening(campaign.window, at, tz)
    return decision


def record(conn: sqlite3.Connection, campaign: Campaign, decision: Decision, at: int) -> bool:
    """Insert the decision as a delivery row (and its first log line); False when another
    tick recorded this occasion first."""
    cursor = conn.execute(
        """
        INSERT INTO deliveries (id, campaign, contact_id, occasion, event_id, channel, provider,
            state, reason, priority, due_at, created_at, not_before, message, last_error,
            updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (campaign, contact_id, occasion) DO NOTHING
        """,
        (
            decision.delivery_id,
            campaign.id,
            decision.contact_id,
            decision.occasion,
            decision.event_id,
            campaign.channel,
            campaign.provider,
            decision.decision,
            decision.reason,
            campaign.priority,
            decision.due_at,
            at,
            decision.not_before,
            json.dumps(decision.message, ensure_ascii=False) if decision.message else None,
            decision.error,
            at,
        ),
    )
    if cursor.rowcount == 0:
        return False
    conn.execute(
        "INSERT INTO delivery_log (delivery_id, at, state, detail) VALUES (?, ?, ?, ?)",
        (decision.delivery_id, at, decision.decision, decision.reason),
    )
    return True
