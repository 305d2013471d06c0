"""The report: what each campaign did in a period, whether it worked, and how the shop
retains its customers. One dictionary, the document ``regard report --json`` prints."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.report.counts import CampaignCounts, campaign_counts, goal_arms, sent_per_week
from regard.report.retention import cohort_curves, retention_figures
from regard.report.uplift import compare, explain
from regard.store import Store
from regard.times import from_epoch, iso, to_epoch, utcnow

DEFAULT_PERIOD = timedelta(days=365)
DEFAULT_HORIZON = timedelta(days=180)


def default_until(store: Store) -> datetime:
    """Now, or the latest event or delivery decision in the store if that is later (a store
    filled by ``regard run --at`` in the future is then reported whole)."""
    latest = store.conn.execute(
        "SELECT max(coalesce((SELECT max(occurred_at) FROM events), 0),"
        " coalesce((SELECT max(max(created_at), coalesce(max(sent_at), 0)) FROM deliveries), 0))"
    ).fetchone()[0]
    now = utcnow()
    return max(now, from_epoch(latest)) if latest else now


def resolve_period(
    store: Store, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    """The period a report covers: ``until`` defaults to :func:`default_until`, ``since``
    to a year before ``until``."""
    end = until or default_until(store)
    start = since or end - DEFAULT_PERIOD
    if start > end:
        raise ValueError(f"--since {iso(start)} is after --until {iso(end)}")
    return start, end


def build_report(
    store: Store,
    config: Config,
    campaigns: Iterable[Campaign],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    campaign: str | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> dict[str, Any]:
    """Per campaign: deliveries by state and the goal's uplift; for the shop: retention.

    ``campaign`` restricts the campaigns reported (the retention figures stay the shop's).
    """
    start_at, end_at = resolve_period(store, since, until)
    start, end = to_epoch(start_at), to_epoch(end_at)
    conn = store.conn
    known = {c.id: c for c in campaigns}
    counts = campaign_counts(conn, config, start, end)
    weeks = sent_per_week(conn, start, end)
    ids = sorted(set(known) | set(counts))
    if campaign is not None:
        ids = [campaign] if campaign in ids else []
        if campaign not in known and campaign not in counts:
            raise KeyError(campaign)
    report_campaigns: dict[str, Any] = {}
    for cid in ids:
        c = counts.get(cid, CampaignCounts())
        entry: dict[str, Any] = {
            "name": known[cid].title if cid in known else cid,
            "channel": known[cid].channel if cid in known else None,
            **c.as_dict(),
            "sent_per_week": weeks.get(cid, {}),
        }
        goal = known[cid].goal if cid in known else None
        if goal is not None:
            within = int(goal.within.total_seconds())
            arms = goal_arms(conn, cid, goal.event, within, start, end)
            conversion = compare(
                arms.contacted,
                arms.contacted_converted,
                arms.held_out,
                arms.held_out_converted,
                cost=c.cost,
            ).as_dict()
            if conversion["verdict"] == "no_control" and known[cid].holdout > 0:
                # a control group is set up, it just has nobody in it yet
                conversion["verdict"] = "too_small"
            conversion["goal"] = {"event": goal.event, "within_days": within / 86400}
            conversion["summary"] = explain(conversion["verdict"])
            entry["conversion"] = conversion
        report_campaigns[cid] = entry
    figures = retention_figures(conn, start, end, int(horizon.total_seconds())).as_dict()
    figures["cohorts"] = cohort_curves(conn, start, end)
    return {
        "since": iso(start),
        "until": iso(end),
        "currency": config.currency,
        "campaigns": report_campaigns,
        "retention": figures,
    }
