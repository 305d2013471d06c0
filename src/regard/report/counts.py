"""What each campaign did in a period: deliveries by state, skipped by reason, cost, and
the two arms of its goal (contacted and held out), counted by ``store.reports``.

A delivery belongs to the period its decision fell in (``created_at``, the tick that
decided it). Conversion: a goal event of the contact that occurred after the anchor and
at most ``within`` after it. The anchor of a sent delivery is its ``sent_at``; of a
held-out one, the tick that held it out (``created_at``) — the moment it would have been
sent, since dispatch follows evaluation in every tick. Events after the report's end do
not exist for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from regard.store import Store
from regard.times import Instant


@dataclass
class CampaignCounts:
    """Deliveries of one campaign decided in the period, by state."""

    due: int = 0
    sent: int = 0
    held_out: int = 0
    pending: int = 0
    dead: int = 0
    cancelled: int = 0
    unconfirmed: int = 0  # may have arrived; the service cannot say (a person decides)
    skipped: dict[str, int] = field(default_factory=dict)
    contacts: int = 0
    cost: float | None = None


def campaign_counts(
    store: Store, prices: Mapping[str, float], since: Instant, until: Instant
) -> dict[str, CampaignCounts]:
    """Counts for every campaign with a delivery decided in [since, until].

    ``prices`` is the cost per message of each provider that sets one: a sent delivery
    without a recorded cost costs its provider's price; a campaign whose sent deliveries
    have neither has no cost (None), not a cost of 0.
    """
    counts: dict[str, CampaignCounts] = defaultdict(CampaignCounts)
    for row in store.reports.campaign_states(since, until):
        c = counts[row["campaign"]]
        n = row["deliveries"]
        c.due += n
        state = row["state"]
        if state == "skipped":
            c.skipped[row["reason"]] = c.skipped.get(row["reason"], 0) + n
        elif state == "sending":  # in flight: still waiting for its provider's answer
            c.pending += n
        else:
            setattr(c, state, getattr(c, state) + n)
    for campaign, reached in store.reports.contacts_reached(since, until).items():
        counts[campaign].contacts = reached
    for sent in store.reports.sent_by_provider(since, until):
        price = prices.get(sent["provider"])
        if sent["priced"] == 0 and price is None:
            continue
        extra = (sent["sent"] - sent["priced"]) * (price or 0.0)
        c = counts[sent["campaign"]]
        c.cost = (c.cost or 0.0) + sent["recorded"] + extra
    return dict(counts)
