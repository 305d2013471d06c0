"""A chain of follow-ups reported as one journey: each step's counts, the share of the
journey's entrants that exited, and the whole journey's conversion against the first
step's control group.

Who enters: the contacts the first step was sent to (decided in the period). A contact
held out of the first step gets no follow-up, so the first step's held-out contacts are
the journey's control group. The goal is the first step's ``[goal]`` (else the first one
along the steps); its window is ``within`` plus the journey's length (the longest chain
of delays), so that the last step has its full window too, for both arms alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from regard.campaigns.journeys import Journey, journeys
from regard.campaigns.model import Campaign
from regard.report.counts import CampaignCounts
from regard.report.uplift import compare, explain
from regard.store import Store
from regard.times import Instant


class JourneyStep(TypedDict):
    """One step of a journey and its deliveries decided in the period."""

    campaign: str
    follows: str | None
    delay_days: float
    due: int
    sent: int
    held_out: int
    pending: int
    dead: int
    cancelled: int
    skipped: dict[str, int]
    exited: int  # skipped or cancelled because the exit came
    cost: float | None


class JourneyReport(TypedDict):
    """One journey of the report, keyed by its first step in ``journeys``."""

    steps: list[JourneyStep]
    entered: int  # deliveries of the first step that were sent
    exited: int  # follow-ups skipped or cancelled by the exit, every step together
    exited_share: float | None  # exited / entered
    conversion: dict[str, Any] | None


def journey_reports(
    store: Store,
    campaigns: Iterable[Campaign],
    counted: Mapping[str, CampaignCounts],
    since: Instant,
    until: Instant,
    *,
    only: str | None = None,
) -> dict[str, JourneyReport]:
    """Every chain of the loaded ``campaigns`` as a journey (with ``only``, those it is a
    step of); ``counted`` are the report's counts per campaign."""
    loaded = list(campaigns)
    by_id = {c.id: c for c in loaded}
    chains = [j for j in journeys(loaded) if only is None or only in j.ids]
    if not chains:
        return {}
    exits: dict[str, int] = {}
    for row in store.reports.campaign_states(since, until):
        if row["reason"] == "exited" and row["state"] in ("skipped", "cancelled"):
            exits[row["campaign"]] = exits.get(row["campaign"], 0) + row["deliveries"]
    out: dict[str, JourneyReport] = {}
    for journey in chains:
        steps = [
            _step(s.campaign, s.follows, s.delay, counted.get(s.campaign), exits)
            for s in journey.steps
        ]
        entered = steps[0]["sent"]
        exited = sum(s["exited"] for s in steps[1:])
        out[journey.first] = JourneyReport(
            steps=steps,
            entered=entered,
            exited=exited,
            exited_share=min(exited / entered, 1.0) if entered else None,
            conversion=_conversion(store, journey, by_id, steps, since, until),
        )
    return out


def _step(
    campaign: str,
    follows: str | None,
    delay: int,
    c: CampaignCounts | None,
    exits: Mapping[str, int],
) -> JourneyStep:
    c = c or CampaignCounts()
    return JourneyStep(
        campaign=campaign,
        follows=follows,
        delay_days=delay / 86400,
        due=c.due,
        sent=c.sent,
        held_out=c.held_out,
        pending=c.pending,
        dead=c.dead,
        cancelled=c.cancelled,
        skipped=dict(sorted(c.skipped.items())),
        exited=exits.get(campaign, 0),
        cost=c.cost,
    )


def _conversion(
    store: Store,
    journey: Journey,
    by_id: Mapping[str, Campaign],
    steps: list[JourneyStep],
    since: Instant,
    until: Instant,
) -> dict[str, Any] | None:
    goal = next((by_id[i].goal for i in journey.ids if by_id[i].goal is not None), None)
    if goal is None:
        return None
    within = int(goal.within.total_seconds()) + journey.length
    arms = store.reports.goal_arms(journey.first, goal.event, within, since, until)
    costs = [s["cost"] for s in steps if s["cost"] is not None]
    conversion = compare(
        arms.contacted,
        arms.contacted_converted,
        arms.held_out,
        arms.held_out_converted,
        cost=sum(costs) if costs else None,
    ).as_dict()
    if conversion["verdict"] == "no_control" and by_id[journey.first].holdout > 0:
        conversion["verdict"] = "too_small"
    conversion["goal"] = {"event": goal.event, "within_days": within / 86400}
    conversion["summary"] = explain(conversion["verdict"])
    return conversion
