"""The report: what each campaign did in a period, whether it worked, and how the shop
retains its customers. One document, the one ``regard report --json`` prints."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.report.counts import CampaignCounts, campaign_counts
from regard.report.retention import RetentionReport, retention_report
from regard.report.uplift import compare, explain
from regard.store import Store
from regard.times import from_epoch, iso, to_epoch, utcnow

DEFAULT_PERIOD = timedelta(days=365)
DEFAULT_HORIZON = timedelta(days=180)


class CampaignReport(TypedDict):
    """One campaign of the report: its deliveries decided in the period, and for a
    campaign with a goal, its ``conversion`` (:class:`regard.report.uplift.Conversion`
    with the goal and a one-line summary)."""

    name: str
    channel: str | None
    due: int
    sent: int
    held_out: int
    pending: int
    dead: int
    cancelled: int
    unconfirmed: int  # may have arrived; the service cannot say
    skipped: dict[str, int]  # by reason, reasons in order
    contacts: int
    cost: float | None
    sent_per_week: dict[str, int]  # the Monday starting each week (UTC) → sent
    conversion: NotRequired[dict[str, Any]]


class ReportDocument(TypedDict):
    """What :func:`build_report` returns; ``since`` and ``until`` are ISO 8601 (UTC)."""

    since: str
    until: str
    currency: str
    campaigns: dict[str, CampaignReport]
    retention: RetentionReport


def default_until(store: Store) -> datetime:
    """Now, or the latest event or delivery decision in the store if that is later (a store
    filled by ``regard run --at`` in the future is then reported whole)."""
    latest = store.reports.latest_activity()
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
) -> ReportDocument:
    """Per campaign: deliveries by state and the goal's uplift; for the shop: retention.

    ``campaign`` restricts the campaigns reported (the retention figures stay the shop's);
    raises KeyError for a campaign neither loaded nor in the store, ValueError for a
    period that ends before it starts.
    """
    start_at, end_at = resolve_period(store, since, until)
    start, end = to_epoch(start_at), to_epoch(end_at)
    known = {c.id: c for c in campaigns}
    counts = campaign_counts(store, config.provider_costs, start, end)
    weeks = store.reports.sent_per_week(start, end)
    ids = sorted(set(known) | set(counts))
    if campaign is not None:
        ids = [campaign] if campaign in ids else []
        if campaign not in known and campaign not in counts:
            raise KeyError(campaign)
    report_campaigns: dict[str, CampaignReport] = {}
    for cid in ids:
        c = counts.get(cid, CampaignCounts())
        entry = CampaignReport(
            name=known[cid].title if cid in known else cid,
            channel=known[cid].channel if cid in known else None,
            due=c.due,
            sent=c.sent,
            held_out=c.held_out,
            pending=c.pending,
            dead=c.dead,
            cancelled=c.cancelled,
            unconfirmed=c.unconfirmed,
            skipped=dict(sorted(c.skipped.items())),
            contacts=c.contacts,
            cost=c.cost,
            sent_per_week=weeks.get(cid, {}),
        )
        goal = known[cid].goal if cid in known else None
        if goal is not None:
            within = int(goal.within.total_seconds())
            arms = store.reports.goal_arms(cid, goal.event, within, start, end)
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
    return ReportDocument(
        since=iso(start) or "",
        until=iso(end) or "",
        currency=config.currency,
        campaigns=report_campaigns,
        retention=retention_report(store, start, end, int(horizon.total_seconds())),
    )
