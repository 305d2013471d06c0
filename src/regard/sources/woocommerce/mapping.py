"""WooCommerce's customer and order objects (REST API v3, the shape its webhooks send) →
regard's import rows. The one place that knows WooCommerce's field names: the webhooks, the
``.json`` import of ``/wc/v3/customers`` and ``/wc/v3/orders`` arrays, and the sync.

Shapes as documented by WooCommerce:
- Customers: https://woocommerce.github.io/woocommerce-rest-api-docs/#customer-properties
  (``id``, ``email``, ``first_name``, ``last_name``, ``billing`` ``{first_name, last_name,
  company, address_1, address_2, city, postcode, country, email, phone}``). The v1 and
  v2 customer endpoints (``/wc/v2/customers``) also send the shop's lifetime counters
  ``orders_count`` and ``total_spent``; v3 does not (WC_REST_Customers_V2_Controller,
  https://woocommerce.com/wc-apidocs/files/woocommerce-includes-rest-api-controllers-version2-class-wc-rest-customers-v2-controller.html).
  Where present they are kept as the attributes ``shop_orders`` and
  ``shop_spent``.
- Orders: https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties
  (``id``, ``number``, ``status``, ``currency``, ``total`` — a decimal string —,
  ``customer_id`` — 0 for a guest —, ``date_created_gmt``, ``date_paid_gmt``,
  ``date_modified_gmt`` — GMT without an offset —, ``billing``, ``line_items`` ``[{sku,
  name, quantity, price}]``, ``refunds`` ``[{id, reason, total}]`` with negative totals).
- Order statuses: pending, processing, on-hold, completed, cancelled, refunded, failed,
  trash, checkout-draft (https://woocommerce.com/document/managing-orders/order-statuses/).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from regard.sources.base import MalformedBody, Mapped, Row, counter, identifier, obj, objects

SOURCE = "woocommerce"

# the v1/v2 customers' lifetime counters → the attributes they are kept as
COUNTERS = {"orders_count": "shop_orders", "total_spent": "shop_spent"}
ORDER_STATUSES = frozenset({"processing", "completed"})
VOIDED_STATUSES = frozenset({"cancelled", "refunded", "failed", "trash"})
# not (yet) an order: nothing is stored until it becomes one
WAITING_STATUSES = frozenset({"pending", "on-hold", "checkout-draft"})


def gmt(value: Any) -> Any:
    """A WooCommerce ``*_gmt`` time (``2026-03-10T14:03:07``, no offset) as UTC."""
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith("Z") or "+" in text[10:] or "-" in text[10:]:
            return text
        return text + "Z"
    return None


def guest_id(email: Any) -> str | None:
    """A guest's contact id: ``guest:<lower-cased e-mail>`` (None without an e-mail)."""
    if not isinstance(email, str) or not email.strip():
        return None
    return f"guest:{email.strip().lower()}"


def _address(billing: dict[str, Any], row: Row) -> None:
    if "company" in billing:
        row["company"] = billing["company"] or None
    if "address_1" in billing or "address_2" in billing:
        parts = [billing.get("address_1"), billing.get("address_2")]
        row["street"] = ", ".join(str(p).strip() for p in parts if p and str(p).strip()) or None
    if "postcode" in billing:
        row["postal_code"] = billing["postcode"] or None
    if "city" in billing:
        row["city"] = billing["city"] or None
    if "country" in billing:
        row["country"] = billing["country"] or None
    if "phone" in billing:
        row["phone"] = billing["phone"] or None


def customer_row(customer: dict[str, Any]) -> Row:
    """One WooCommerce customer → a contact row (WooCommerce sends empty strings for what
    is not set; they clear the field)."""
    row: Row = {"id": identifier(customer.get("id"), "customer.id")}
    billing = obj(customer.get("billing"), "customer.billing")
    for name in ("email", "first_name", "last_name"):
        if name in customer:
            row[name] = customer[name] or billing.get(name) or None
    _address(billing, row)
    for key, name in COUNTERS.items():
        if customer.get(key) not in (None, ""):
            row[name] = counter(customer[key], whole=name == "shop_orders")
    return row


def order_contact(order: dict[str, Any]) -> Row | None:
    """The contact of an order: its customer (``customer_id``), or the guest of its billing
    e-mail when ``customer_id`` is 0; None for a guest order without an e-mail."""
    billing = obj(order.get("billing"), "order.billing")
    customer_id = order.get("customer_id")
    if customer_id in (0, "0", None, ""):
        contact_id = guest_id(billing.get("email"))
        if contact_id is None:
            return None
    else:
        contact_id = identifier(customer_id, "order.customer_id")
    row: Row = {"id": contact_id}
    for name in ("email", "first_name", "last_name"):
        if name in billing:
            row[name] = billing[name] or None
    _address(billing, row)
    return row


def _decimal(value: Any, where: str) -> Decimal:
    try:
        return Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise MalformedBody(f"{where} is not a decimal number") from None


def _amount(order: dict[str, Any]) -> str | None:
    """``total`` plus the (negative) refund totals, as a decimal string."""
    total = order.get("total")
    if total is None or total == "":
        return None
    amount = _decimal(total, "order.total")
    for n, refund in enumerate(objects(order.get("refunds"), "order.refunds")):
        if refund.get("total") not in (None, ""):
            amount += _decimal(refund["total"], f"order.refunds[{n}].total")
    return str(amount)


def order_rows(order: dict[str, Any]) -> Mapped:
    """One WooCommerce order → (its contact row, its event row).

    ``processing`` / ``completed``: an order. ``cancelled``, ``refunded``, ``failed``,
    ``trash``: the order, voided at ``date_modified_gmt``. ``pending``, ``on-hold``,
    ``checkout-draft`` (and statuses regard does not know): ``(None, None)``, not (yet)
    stored. A guest order without an e-mail has no contact: ``(None, None)``.
    """
    status = str(order.get("status") or "").strip().lower()
    if status not in ORDER_STATUSES and status not in VOIDED_STATUSES:
        return None, None
    contact = order_contact(order)
    if contact is None:
        return None, None
    event: Row = {
        "id": identifier(order.get("id"), "order.id"),
        "contact_id": contact["id"],
        "type": "order",
        "occurred_at": gmt(order.get("date_paid_gmt")) or gmt(order.get("date_created_gmt")),
        "amount": _amount(order),
        "currency": order.get("currency") or None,
        "number": order.get("number"),
        "status": status,
        "items": [
            {
                "sku": item.get("sku") or None,
                "name": item.get("name"),
                "quantity": item.get("quantity"),
                "price": item.get("price"),
            }
            for item in objects(order.get("line_items"), "order.line_items")
        ],
        "source": SOURCE,
        "voided_at": (
            gmt(order.get("date_modified_gmt")) or gmt(order.get("date_created_gmt"))
            if status in VOIDED_STATUSES
            else None
        ),
    }
    return contact, event
