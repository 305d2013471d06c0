"""Shopify's customer and order objects (Admin REST API, the shape its webhooks send) →
regard's import rows. The one place that knows Shopify's field names: the webhooks, the
``.json`` import and the sync map through these functions.

Shapes as documented by Shopify:
- Customer resource: https://shopify.dev/docs/api/admin-rest/latest/resources/customer
  (``id``, ``email``, ``phone``, ``first_name``, ``last_name``, ``locale``, ``tags`` — one
  comma-separated string —, ``email_marketing_consent`` / ``sms_marketing_consent``
  ``{state, opt_in_level, consent_updated_at}``, ``default_address`` ``{company, address1,
  address2, city, zip, country_code, phone}``). Since API version 2025-01 customer webhooks
  leave out ``tags`` and the consent objects (https://shopify.dev/changelog/new-customer-s-
  webhook-and-changes-to-existing-customer-s-webhooks-payload): absent, they stay as stored.
  The Customer resource also carries the shop's lifetime counters ``orders_count`` and
  ``total_spent`` (a decimal string); an order's ``customer`` no longer does since API
  version 2022-04 (https://shopify.dev/changelog/property-deprecations-in-the-rest-admin-
  api-order-resource). Where present they are kept as the attributes ``shop_orders``
  and ``shop_spent``.
- Order resource: https://shopify.dev/docs/api/admin-rest/latest/resources/order
  (``id``, ``name``, ``processed_at``, ``created_at``, ``updated_at``, ``cancelled_at``,
  ``current_total_price`` / ``total_price`` — decimal strings —, ``currency``,
  ``financial_status``, ``fulfillment_status``, ``customer_locale``, ``customer``,
  ``line_items`` ``[{sku, title, quantity, price}]``).
- Consent webhooks (https://shopify.dev/docs/api/webhooks, topics
  ``customers_email_marketing_consent/update`` and ``customers_marketing_consent/update``):
  ``{"customer_id": …, "email_address": …, "email_marketing_consent": {"state": …}}`` and
  ``{"customer_id": …, "phone": …, "sms_marketing_consent": {"state": …}}``.
"""

from __future__ import annotations

from typing import Any

from regard.sources.base import MalformedBody, Mapped, Row, counter, identifier, obj, objects

SOURCE = "shopify"

# Shopify's marketing states → consent; other states (pending, invalid, redacted) say nothing
CONSENT_STATES = {"subscribed": True, "unsubscribed": False, "not_subscribed": False}
# the Customer resource's lifetime counters → the attributes they are kept as
COUNTERS = {"orders_count": "shop_orders", "total_spent": "shop_spent"}
# a refunded or voided order has not happened, as far as thanking for it goes
VOIDING_STATUSES = frozenset({"refunded", "voided"})


def language(locale: Any) -> str | None:
    """The language part of a Shopify locale: ``de-DE`` → ``de``, ``pt-BR`` → ``pt``."""
    if not isinstance(locale, str) or not locale.strip():
        return None
    return locale.strip().replace("_", "-").split("-")[0].lower()


def consent(value: Any) -> bool | None:
    """A consent object's ``state`` as consent (None: it says nothing)."""
    state = obj(value, "marketing consent").get("state")
    if not isinstance(state, str):
        return None
    return CONSENT_STATES.get(state.strip().lower())


def split_tags(value: Any) -> list[str]:
    """Shopify's tags (``"VIP, Stammkundin"``) as a list, each trimmed."""
    if isinstance(value, list):
        parts = [str(t) for t in value]
    elif isinstance(value, str):
        parts = value.split(",")
    elif value is None:
        return []
    else:
        raise MalformedBody("customer.tags must be a string of comma-separated tags")
    return [t.strip() for t in parts if t.strip()]


def customer_row(customer: dict[str, Any], *, locale: Any = None) -> Row:
    """One Shopify customer → a contact row (only the fields the object has).

    ``locale`` is a fallback for the customer's own ``locale`` (an order's
    ``customer_locale``)."""
    row: Row = {"id": identifier(customer.get("id"), "customer.id")}
    for name in ("email", "first_name", "last_name"):
        if name in customer:
            row[name] = customer[name]
    address = customer.get("default_address")
    has_address = isinstance(address, dict)
    if has_address:
        assert isinstance(address, dict)
        if "company" in address:
            row["company"] = address["company"]
        if "address1" in address or "address2" in address:
            parts = [address.get("address1"), address.get("address2")]
            row["street"] = ", ".join(str(p).strip() for p in parts if p and str(p).strip())
        if "zip" in address:
            row["postal_code"] = address["zip"]
        if "city" in address:
            row["city"] = address["city"]
        if "country_code" in address:
            row["country"] = address["country_code"]
    elif address is not None:
        raise MalformedBody("customer.default_address must be an object")
    phone = customer.get("phone")
    if not phone and has_address:
        phone = obj(address, "customer.default_address").get("phone")
    if phone or "phone" in customer:
        row["phone"] = phone
    spoken = language(customer.get("locale")) or language(locale)
    if spoken:
        row["locale"] = spoken
    for channel in ("email", "sms"):
        key = f"{channel}_marketing_consent"
        if key in customer:
            given = consent(customer[key])
            if given is not None:
                row[f"consent_{channel}"] = given
    if "tags" in customer:
        row["tags"] = split_tags(customer["tags"])
    for key, name in COUNTERS.items():
        if customer.get(key) not in (None, ""):
            row[name] = counter(customer[key], whole=name == "shop_orders")
    return row


def _voided_at(order: dict[str, Any]) -> Any:
    if order.get("cancelled_at"):
        return order["cancelled_at"]
    status = order.get("financial_status")
    if isinstance(status, str) and status.lower() in VOIDING_STATUSES:
        return order.get("updated_at") or order.get("processed_at") or order.get("created_at")
    return None


def _items(line_items: Any) -> list[Row]:
    return [
        {
            "sku": item.get("sku"),
            "name": item.get("title", item.get("name")),
            "quantity": item.get("quantity"),
            "price": item.get("price"),
        }
        for item in objects(line_items, "order.line_items")
    ]


def order_rows(order: dict[str, Any]) -> Mapped:
    """One Shopify order → (its customer's contact row, its event row); ``(None, None)``
    for an order without a customer (it is ignored)."""
    customer = order.get("customer")
    if not customer:
        return None, None
    customer = obj(customer, "order.customer")
    if "id" not in customer or customer.get("id") in (None, ""):
        return None, None
    contact = customer_row(customer, locale=order.get("customer_locale"))
    if "email" not in contact and order.get("email"):
        contact["email"] = order["email"]
    event: Row = {
        "id": identifier(order.get("id"), "order.id"),
        "contact_id": contact["id"],
        "type": "order",
        "occurred_at": order.get("processed_at") or order.get("created_at"),
        "amount": _first(order, "current_total_price", "total_price"),
        "currency": order.get("currency"),
        "name": order.get("name"),
        "financial_status": order.get("financial_status"),
        "fulfillment_status": order.get("fulfillment_status"),
        "items": _items(order.get("line_items")),
        "source": SOURCE,
        "voided_at": _voided_at(order),
    }
    return contact, event


def consent_row(body: dict[str, Any], channel: str) -> Row:
    """A consent webhook (``customers_email_marketing_consent/update`` for ``email``,
    ``customers_marketing_consent/update`` for ``sms``) → a contact row of ``customer_id``
    with only that consent (and nothing else) when the state says something."""
    customer_id = body.get("customer_id", body.get("id"))
    row: Row = {"id": identifier(customer_id, "customer_id")}
    given = consent(body.get(f"{channel}_marketing_consent"))
    if given is not None:
        row[f"consent_{channel}"] = given
    return row


def _first(source: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = source.get(name)
        if value is not None and value != "":
            return value
    return None
