"""Delivery: claims, dispatch, retries and leases; listing, retrying and cancelling."""

from __future__ import annotations

from regard.delivery.dispatch import DispatchResult, dispatch
from regard.delivery.manage import (
    cancel_deliveries,
    confirm_deliveries,
    list_deliveries,
    retry_deliveries,
)
from regard.delivery.owners import default_owner
from regard.store.records import delivery_record

__all__ = [
    "DispatchResult",
    "cancel_deliveries",
    "confirm_deliveries",
    "default_owner",
    "delivery_record",
    "dispatch",
    "list_deliveries",
    "retry_deliveries",
]
