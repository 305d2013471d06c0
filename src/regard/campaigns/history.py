"""Which campaigns count a contact's orders, and what ``check`` and ``import`` say about how
far back the store's order history reaches.

A first-order thank-you (``nth = 1``, or any ``nth``) and a milestone (``order_count`` or
``total_spent`` reaching a threshold) are only as good as the orders imported: with only
last month's orders in the store, a customer with eight orders gets "thank you for your
first order". The warning is given for enabled campaigns of those triggers unless the
shop's own lifetime counters (attribute ``shop_orders``) confirm that every contact's
orders are in the store; it also names how many contacts the store is short of orders for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from regard.campaigns.model import Campaign, EventTrigger, MilestoneTrigger, PostPurchaseTrigger
from regard.store.history import SHOP_ORDER_COUNT, OrderHistory
from regard.times import Instant, iso

# a history shorter than this, with no shop counters to confirm it, may be a part only
_YEAR = 365 * 86400


def counts_orders(campaign: Campaign) -> str | None:
    """What of the order history ``campaign``'s trigger counts (``post_purchase nth = 1``,
    ``milestone total_spent >= 500``), or None when it counts none."""
    trigger = campaign.trigger
    if isinstance(trigger, MilestoneTrigger):
        return f"milestone {trigger.metric} >= {trigger.threshold}"
    if isinstance(trigger, PostPurchaseTrigger) and trigger.nth is not None:
        return f"post_purchase nth = {trigger.nth}"
    if isinstance(trigger, EventTrigger) and trigger.event == "order" and trigger.nth is not None:
        return f"event order nth = {trigger.nth}"
    return None


def history_json(history: OrderHistory) -> dict[str, Any]:
    """The history as ``check --json`` and ``import --json`` show it: ``orders``,
    ``contacts`` (with an order), ``first_order_at``, ``last_order_at`` (ISO 8601 UTC or
    null), ``shop_counted`` (contacts with the shop's ``shop_orders``) and ``short``
    (those the store holds fewer orders for)."""
    return {
        "orders": history["orders"],
        "contacts": history["contacts"],
        "first_order_at": iso(history["first_at"]),
        "last_order_at": iso(history["last_at"]),
        "shop_counted": history["counted"],
        "short": history["short"],
    }


def describe_history(history: Mapping[str, Any]) -> str:
    """``orders from 2024-01-05 to 2026-03-01 (1200 orders of 310 contacts)`` of
    :func:`history_json`'s mapping."""
    if not history["orders"]:
        return "no orders"
    first, last = str(history["first_order_at"])[:10], str(history["last_order_at"])[:10]
    orders = "order" if history["orders"] == 1 else "orders"
    contacts = "contact" if history["contacts"] == 1 else "contacts"
    return (
        f"orders from {first} to {last} "
        f"({history['orders']} {orders} of {history['contacts']} {contacts})"
    )


def history_warnings(
    campaigns: Iterable[Campaign], history: OrderHistory, now: Instant
) -> list[str]:
    """The warning for the enabled campaigns that count orders, when the store's order
    history may not be whole: no orders at all, contacts whose shop counts more orders than
    the store holds, or (without the shop's counters to tell) a history shorter than a
    year. Empty when no enabled campaign counts orders."""
    counting = [(c.id, what) for c in campaigns if c.enabled and (what := counts_orders(c))]
    if not counting:
        return []
    named = ", ".join(f"{cid} ({what})" for cid, what in counting)
    short = history["short"]
    if short:
        contacts = "contact has" if short == 1 else "contacts have"
        why = (
            f"{short} {contacts} more orders in the shop (attribute {SHOP_ORDER_COUNT}) "
            "than in the store"
        )
    elif not history["orders"]:
        why = "the store has no orders"
    elif history["counted"] == 0 and (history["first_at"] or now) > now - _YEAR:
        first = (iso(history["first_at"]) or "")[:10]
        why = f"the store's orders reach back to {first} only"
    else:
        return []
    return [
        f"{why}: campaigns {named} count a contact's orders, and a customer whose earlier "
        "orders are not in the store counts as new; import the full order history first "
        "(regard import events FILE)"
    ]
