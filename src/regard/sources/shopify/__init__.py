"""``type = "shopify"``: Shopify's webhooks, received at ``POST /ingest/<name>``.

Shopify signs each webhook with ``X-Shopify-Hmac-Sha256``, the base64 HMAC-SHA256 of the raw
body keyed with the app's client secret, and names it in ``X-Shopify-Topic``
(https://shopify.dev/docs/apps/build/webhooks/subscribe/https, "Verify the webhook").
The mandatory privacy webhooks ``customers/redact``, ``customers/data_request`` and
``shop/redact`` (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance) are
answered 200; ``customers/redact`` forgets the customer.
"""

from __future__ import annotations

from collections.abc import Mapping

from regard.sources.base import Batch, MalformedBody, Topics, header, identifier, obj
from regard.sources.base import signature_matches as _matches
from regard.sources.shopify.webhook import consent_row, customer_row, order_rows

__all__ = ["TOPICS", "ShopifySource"]

CUSTOMER_TOPICS = frozenset({"customers/create", "customers/update"})
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/paid", "orders/cancelled"})
CONSENT_TOPICS = {
    "customers_email_marketing_consent/update": "email",
    "customers_marketing_consent/update": "sms",
}
PRIVACY_TOPICS = frozenset({"customers/data_request", "shop/redact"})
TOPICS = frozenset(
    {*CUSTOMER_TOPICS, *ORDER_TOPICS, *CONSENT_TOPICS, *PRIVACY_TOPICS, "customers/redact"}
)
WEBHOOK = Topics(
    CUSTOMER_TOPICS, ORDER_TOPICS, TOPICS, customer_row, order_rows, "an order without a customer"
)


class ShopifySource:
    """Shopify's webhook topics → batches."""

    type = "shopify"

    def verify(self, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether ``X-Shopify-Hmac-Sha256`` signs the raw ``body`` with ``secret``."""
        return _matches(secret, body, header(headers, "X-Shopify-Hmac-Sha256"))

    def receive(self, headers: Mapping[str, str], body: bytes, now: int) -> Batch:
        """A verified webhook → what to store. Raises MalformedBody."""
        topic = (header(headers, "X-Shopify-Topic") or "").strip()
        batch, data = WEBHOOK.receive(topic, body)
        if data is None:
            pass  # unknown, or a customer's or an order's topic: done
        elif topic in CONSENT_TOPICS:
            batch.contacts.append(consent_row(data, CONSENT_TOPICS[topic]))
        elif topic == "customers/redact":
            customer = obj(data.get("customer"), "customer")
            if "id" not in customer:
                raise MalformedBody("customer.id is required")
            batch.forget.append(identifier(customer["id"], "customer.id"))
        else:
            batch.ignored = "nothing to do: regard keeps no shop data beyond its contacts"
        return batch
