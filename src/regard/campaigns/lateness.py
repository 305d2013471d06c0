"""Which of an import's new events came too late for an enabled campaign.

A tick considers an occasion only while ``due ≥ T − max_lateness``: an order imported six
days after it happened is never thanked by a campaign with ``delay = "3d"`` and
``max_lateness = "2d"``. The import says so, per campaign, instead of letting it pass in
silence. Counted for the triggers whose occasion is one event (``event``,
``post_purchase``), with their ``nth`` and ``where``; the audience and consent are not
asked (the count is of events no tick will consider, not of messages lost for certain).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from regard.campaigns.loader import load_campaigns
from regard.config import Config
from regard.store import Store
from regard.store.importer import ImportResult
from regard.times import to_epoch
from regard.triggers.base import seconds
from regard.triggers.event import EventTrigger, PostPurchaseTrigger


def late_events(store: Store, config: Config, result: ImportResult) -> dict[str, int]:
    """Per enabled campaign (by id, only those with any): how many of the events
    ``result``'s import inserted are due at a time no tick will consider any more (due +
    max_lateness before the import's time), within the campaign's starts_at / ends_at."""
    if result.inserted <= 0 or not config.campaigns_dir.is_dir():
        return {}
    late: dict[str, int] = {}
    for campaign in load_campaigns(config).enabled:
        trigger = campaign.trigger
        if not isinstance(trigger, EventTrigger | PostPurchaseTrigger):
            continue
        hi = result.stamp - seconds(campaign.max_lateness) - 1
        lo = None
        if campaign.starts_at is not None:
            lo = _midnight(campaign.starts_at, config)
        if campaign.ends_at is not None:
            hi = min(hi, _midnight(campaign.ends_at + timedelta(days=1), config) - 1)
        if lo is not None and lo > hi:
            continue
        count = store.events.late_since(
            result.first_new_rowid,
            trigger.event,
            seconds(trigger.delay),
            lo,
            hi,
            nth=trigger.nth,
            where=trigger.where,
            tz=config.timezone,
        )
        if count:
            late[campaign.id] = count
    return late


def _midnight(day: date, config: Config) -> int:
    return to_epoch(datetime.combine(day, datetime.min.time(), tzinfo=config.tz))
