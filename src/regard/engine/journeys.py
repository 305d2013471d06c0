"""The sends a journey's follow-ups need, for ``plan`` and ``preview --at``.

A follow-up is due after a ``sent`` delivery of the campaign it follows. A tick at a
future T would find the earlier steps sent by the ticks before it; the store does not
hold those sends yet. So, inside their rolled-back transaction, ``plan`` and ``explain``
first replay the earlier steps (the campaigns that enabled follow-ups follow, up the
chain) over the stretch before T that their follow-ups look back on: ticks on a grid
ending before T, each followed by a simulated dispatch (the send-time rules, then every
due delivery accepted at once, as ``simulate`` does). A follow-up of a simulated send is
simulated too: its decision is marked so.

The replay's own decisions are then forgotten, except the sends its follow-ups need that
the tick at T would not consider itself (due before ``T - max_lateness``): the first
step's own occasions at T are decided by the tick at T exactly as without the replay.
"""

from __future__ import annotations

from collections.abc import Sequence

from regard.campaigns.journeys import parent_of
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.engine.decisions import Decision
from regard.engine.tick import Campaigns, campaign_list, run_tick
from regard.engine.windows import release_due
from regard.store import Store
from regard.times import Instant
from regard.triggers import FollowupTrigger, seconds
from regard.triggers.followup import OCCASION_PREFIX

# grid steps the replay picks from: the smallest at least the scheduler's interval that
# keeps the replay under MAX_TICKS ticks (whole minutes, hours and days, so that delays
# in those units fall on the grid)
_STEPS = (300, 900, 3600, 6 * 3600, 86400)
MAX_TICKS = 400


def replay_earlier_steps(
    store: Store,
    config: Config,
    campaigns: Sequence[Campaign],
    at: Instant,
    *,
    contact_ids: Sequence[str] | None = None,
) -> set[str]:
    """Replay, in the caller's transaction, the earlier steps of the enabled follow-ups
    among ``campaigns`` before ``at``; returns the ids of the deliveries it sent (a
    follow-up after one of them is simulated)."""
    enabled = {c.id: c for c in campaigns if c.enabled}
    followups = [c for c in enabled.values() if parent_of(c) in enabled]
    if not followups:
        return set()
    upstream: dict[str, Campaign] = {}
    back, near = 0, None
    for f in followups:
        reach, step = 0, f
        seen = {f.id}
        while isinstance(step.trigger, FollowupTrigger) and step.trigger.campaign in enabled:
            reach += seconds(step.max_lateness) + seconds(step.trigger.delay)
            parent = enabled[step.trigger.campaign]
            if parent.id in seen:
                break
            seen.add(parent.id)
            upstream[parent.id] = parent
            step = parent
        back = max(back, reach)
        delay = seconds(f.trigger.delay) if isinstance(f.trigger, FollowupTrigger) else 0
        near = delay if near is None else min(near, delay)
    start, end = at - back, at - max(near or 0, 1)
    span = max(end - start, 0)
    interval = int(config.scheduler.interval.total_seconds())
    step_s = next((s for s in _STEPS if s >= interval and span / s <= MAX_TICKS), _STEPS[-1])
    # the grid ends before `at` and falls on `at - k * step` (a delay before `at` is on it)
    instants = sorted(
        Instant(at - k * step_s) for k in range(1, (at - start) // step_s + 1)
        if start <= at - k * step_s <= end
    )  # fmt: skip
    chosen = list(upstream.values())
    ids = [c.id for c in chosen]
    created: dict[str, Decision] = {}
    sent: set[str] = set()
    for t in instants:
        result = run_tick(store, config, chosen, t, contact_ids=contact_ids)
        created.update((d.delivery_id, d) for d in result.decisions)
        release_due(store, config, chosen, t)
        sent.update(store.backtests.send_simulated(ids, t))
    # keep the replay's sends that the tick at `at` would not consider itself
    lateness = {c.id: seconds(c.max_lateness) for c in chosen}
    states = store.deliveries.states(list(created))
    keep = {
        i for i, d in created.items()
        if states.get(i) == "sent" and d.due_at < at - lateness[d.campaign]
    }  # fmt: skip
    store.backtests.forget(sorted(set(created) - keep))
    return sent - (set(created) - keep)


def plan(
    store: Store, config: Config, campaigns: Campaigns, at: Instant, *, campaign: str | None = None
) -> list[Decision]:
    """What a tick at ``at`` would decide (optionally only for one campaign), writing
    nothing: the tick itself, run in a transaction that is rolled back, after the replay
    of the earlier steps its follow-ups need (:func:`replay_earlier_steps`); a follow-up
    of a simulated send is marked ``simulated``."""
    loaded = campaign_list(campaigns)
    with store.rolled_back():
        simulated = replay_earlier_steps(store, config, loaded, at)
        result = run_tick(store, config, loaded, at)
    mark_simulated(result.decisions, simulated)
    return [d for d in result.decisions if campaign is None or d.campaign == campaign]


def mark_simulated(decisions: Sequence[Decision], simulated: set[str]) -> None:
    """Mark the follow-ups of simulated sends as simulated."""
    for d in decisions:
        if (
            d.occasion.startswith(OCCASION_PREFIX)
            and d.occasion[len(OCCASION_PREFIX) :] in simulated
        ):
            d.simulated = True
