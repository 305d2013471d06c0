"""The delivery record: what providers receive, the outbox holds and webhooks post.

Its shape lives with the store, which builds it from a stored delivery; it is named here
too, where the delivery code and the adapters look for it.
"""

from __future__ import annotations

from regard.store.records import MESSAGE_FIELDS, RECORD_FIELDS, DeliveryRecord, delivery_record

__all__ = ["MESSAGE_FIELDS", "RECORD_FIELDS", "DeliveryRecord", "delivery_record"]
