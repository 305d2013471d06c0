"""``type = "woocommerce"``: WooCommerce's webhooks, received at ``POST /ingest/<name>``.

WooCommerce signs each delivery with ``X-WC-Webhook-Signature``, the base64 HMAC-SHA256 of
the raw body keyed with the webhook's secret, and names it in ``X-WC-Webhook-Topic``
(https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks, "Delivery/payload").
When a webhook is saved, WooCommerce pings its URL with the form body ``webhook_id=<n>``,
unsigned; it is answered 200 and stores nothing. A webhook whose deliveries fail five
times in a row is disabled by WooCommerce.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from regard.sources.base import Batch, Topics, header, identifier
from regard.sources.base import signature_matches as _matches
from regard.sources.woocommerce.mapping import customer_row, order_rows

__all__ = ["TOPICS", "WooCommerceSource"]

CUSTOMER_TOPICS = frozenset({"customer.created", "customer.updated"})
ORDER_TOPICS = frozenset({"order.created", "order.updated", "order.restored"})
TOPICS = frozenset({*CUSTOMER_TOPICS, *ORDER_TOPICS, "order.deleted"})
WEBHOOK = Topics(
    CUSTOMER_TOPICS, ORDER_TOPICS, TOPICS, customer_row, order_rows, "not an order (yet)"
)
_PING = re.compile(rb"^webhook_id=\d+$")


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """WooCommerce's ping when a webhook is saved: the form body ``webhook_id=<n>`` (no
    JSON body ever looks like it)."""
    return bool(_PING.match(body.strip()))


class WooCommerceSource:
    """WooCommerce's webhook topics → batches."""

    type = "woocommerce"

    def verify(self, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether ``X-WC-Webhook-Signature`` signs the raw ``body`` with ``secret``; the
        unsigned ping passes (it stores nothing)."""
        signature = header(headers, "X-WC-Webhook-Signature")
        if signature is None and is_ping(headers, body):
            return True
        return _matches(secret, body, signature)

    def receive(self, headers: Mapping[str, str], body: bytes, now: int) -> Batch:
        """A verified webhook → what to store. Raises MalformedBody."""
        if is_ping(headers, body):
            return Batch(topic="ping", ignored="the ping of a new webhook")
        topic = (header(headers, "X-WC-Webhook-Topic") or "").strip()
        batch, data = WEBHOOK.receive(topic, body)
        if data is not None:  # order.deleted: {"id": n}
            batch.voids.append((identifier(data.get("id"), "id"), now))
        return batch
