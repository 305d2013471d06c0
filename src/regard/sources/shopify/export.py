"""Shopify's own CSV exports → import rows: ``regard import … --format shopify``.

Layouts as Shopify's help center documents them:
- Customers → Export (https://help.shopify.com/en/manual/customers/import-export-customers,
  "Customer CSV file format"): ``Customer ID``, ``First Name``, ``Last Name``, ``Email``,
  ``Accepts Email Marketing``, ``Default Address Company``, ``Default Address Address1``,
  ``Default Address Address2``, ``Default Address City``, ``Default Address Province Code``,
  ``Default Address Country Code``, ``Default Address Zip``, ``Default Address Phone``,
  ``Phone``, ``Accepts SMS Marketing``, ``Total Spent``, ``Total Orders``, ``Note``,
  ``Tax Exempt``, ``Tags`` (comma-separated). ``Total Orders`` and ``Total Spent`` are the
  shop's lifetime counters: kept as the attributes ``shop_orders`` and
  ``shop_spent`` (regard's own ``order_count`` and ``total_spent`` count the orders
  imported).
- Orders → Export (https://help.shopify.com/en/manual/fulfillment/managing-orders/exporting-orders,
  "Order CSV file format"): one row per line item, the order's own fields on its first row
  and empty on the others; ``Name`` (``#1001``) groups them. Times are written
  ``2026-03-10 15:03:07 +0100``; ``Total`` is the order total, ``Refunded Amount`` what was
  refunded, ``Cancelled at`` when it was cancelled, ``Id`` the order's id, ``Email`` the
  customer's address (the export has no customer id).

Spreadsheet programs keep Shopify's leading ``'`` on ids, zip codes and phone numbers
(it stops them from turning ``01067`` into ``1067``); it is removed. Totals are summed
as decimals, never as floats. Contacts come first (the customer export); an order's
contact is found by its ``Email`` among the store's contacts, case-insensitively.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from regard.sources.base import MalformedBody, counter
from regard.sources.shopify import webhook
from regard.store.importer import CONTACT_EMAIL, CONTACT_ROW, Lines
from regard.store.readers import BadLine, Ignored, Row

SOURCE = "shopify"

CUSTOMER_REQUIRED = ("Customer ID",)
ORDER_REQUIRED = ("Name", "Id", "Email", "Created at")

# the customer export's columns → contact fields (Tags, consent and the address separately)
CUSTOMER_FIELDS = {
    "First Name": "first_name",
    "Last Name": "last_name",
    "Email": "email",
    "Default Address Company": "company",
    "Default Address City": "city",
    "Default Address Country Code": "country",
    "Default Address Zip": "postal_code",
}
# kept as attributes, named as regard's fields are
CUSTOMER_ATTRIBUTES = {
    "Default Address Province Code": "province_code",
    "Note": "note",
    "Tax Exempt": "tax_exempt",
}
# the shop's own lifetime counters: regard derives order_count and total_spent from the
# orders imported, and keeps the shop's as attributes (an audience can use them, and
# `check` compares them with the orders the store holds)
CUSTOMER_COUNTERS = {"Total Orders": "shop_orders", "Total Spent": "shop_spent"}
_YES = {"yes": True, "true": True, "no": False, "false": False}
_SHOPIFY_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?)\s*(?:([+-]\d{2}):?(\d{2})|(Z|UTC))?$"
)


def unquote(value: Any) -> Any:
    """A cell without Shopify's leading ``'`` (``'01067`` → ``01067``), stripped."""
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("'"):
            value = value[1:].strip()
    return value


def shopify_time(value: Any) -> Any:
    """``2026-03-10 15:03:07 +0100`` → ``2026-03-10T15:03:07+01:00`` (ISO 8601); other
    text is passed on for the import to judge."""
    if not isinstance(value, str) or not value.strip():
        return None
    m = _SHOPIFY_TIME.match(value.strip())
    if m is None:
        return value
    day, clock, hours, minutes, zulu = m.groups()
    offset = f"{hours}:{minutes}" if hours else ("Z" if zulu else "")
    return f"{day}T{clock}{offset}"


def _consent(value: Any) -> Any:
    text = unquote(value)
    if not isinstance(text, str) or not text:
        return None
    return _YES.get(text.lower(), text)


def customer_row(row: Row) -> Row:
    """One row of the customer export → a contact row."""
    out: Row = {"id": unquote(row.get("Customer ID"))}
    for column, name in CUSTOMER_FIELDS.items():
        if column in row:
            out[name] = unquote(row[column])
    if "Default Address Address1" in row or "Default Address Address2" in row:
        parts = [
            unquote(row.get("Default Address Address1")),
            unquote(row.get("Default Address Address2")),
        ]
        out["street"] = ", ".join(p for p in parts if p) or None
    phone = unquote(row.get("Phone")) or unquote(row.get("Default Address Phone"))
    if "Phone" in row or "Default Address Phone" in row:
        out["phone"] = phone or None
    if "Accepts Email Marketing" in row:
        out["consent_email"] = _consent(row["Accepts Email Marketing"])
    if "Accepts SMS Marketing" in row:
        out["consent_sms"] = _consent(row["Accepts SMS Marketing"])
    if "Tags" in row:
        out["tags"] = unquote(row["Tags"]) or ""
    for column, name in CUSTOMER_ATTRIBUTES.items():
        if column in row:
            out[name] = unquote(row[column]) or None
    for column, name in CUSTOMER_COUNTERS.items():
        if column in row:
            out[name] = counter(unquote(row[column]), whole=name == "shop_orders")
    return out


def _decimal(value: Any) -> Decimal | None:
    text = unquote(value)
    if not isinstance(text, str) or not text:
        return None
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _item(row: Row) -> Row | None:
    name = unquote(row.get("Lineitem name"))
    if not name:
        return None
    item: Row = {"sku": unquote(row.get("Lineitem sku")) or None, "name": name}
    quantity, price = unquote(row.get("Lineitem quantity")), unquote(row.get("Lineitem price"))
    if quantity:
        item["quantity"] = int(quantity) if quantity.isdigit() else quantity
    if price:
        item["price"] = price
    return item


def order_row(rows: list[Row]) -> Row | BadLine:
    """The line-item rows of one order (its first row carries the order's fields) → an
    event row naming its contact by e-mail."""
    first = rows[0]
    total = _decimal(first.get("Total"))
    refunded = _decimal(first.get("Refunded Amount")) or Decimal(0)
    if total is None and unquote(first.get("Total")):
        return BadLine(f"Total: {first.get('Total')!r} is not a decimal number")
    items = [item for item in (_item(r) for r in rows) if item is not None]
    event: Row = {
        "id": unquote(first.get("Id")),
        CONTACT_EMAIL: unquote(first.get("Email")) or "",
        "type": "order",
        "occurred_at": shopify_time(unquote(first.get("Paid at")))
        or shopify_time(unquote(first.get("Created at"))),
        "amount": str(total - refunded) if total is not None else None,
        "currency": unquote(first.get("Currency")) or None,
        "name": unquote(first.get("Name")),
        "financial_status": unquote(first.get("Financial Status")) or None,
        "fulfillment_status": unquote(first.get("Fulfillment Status")) or None,
        "items": items,
        "source": SOURCE,
        "voided_at": shopify_time(unquote(first.get("Cancelled at"))),
    }
    if refunded:
        event["refunded"] = str(refunded)
    return event


def order_rows(lines: Lines) -> Lines:
    """Consecutive rows with the same ``Name`` → one order, at the line of its first row.
    An order without ``Email`` has no customer to thank: it is Ignored."""
    group: list[Row] = []
    start = 0
    name: Any = None
    for line, row in lines:
        if not isinstance(row, dict):
            yield line, row
            continue
        row_name = unquote(row.get("Name"))
        if group and row_name == name:
            group.append(row)
            continue
        if group:
            yield start, _order_or_ignored(group)
        group, start, name = [row], line, row_name
    if group:
        yield start, _order_or_ignored(group)


def _order_or_ignored(group: list[Row]) -> Row | BadLine | Ignored:
    if not unquote(group[0].get("Email")):
        return Ignored("an order without a customer e-mail")
    return order_row(group)


def customer_rows(lines: Lines) -> Lines:
    """Each row of the customer export → a contact row."""
    for line, row in lines:
        yield line, customer_row(row) if isinstance(row, dict) else row


def rest_rows(kind: str, lines: Lines) -> Lines:
    """A ``.json`` array of Admin REST objects (``customers.json``, ``orders.json``),
    through the webhooks' mapping: each order brings its customer."""
    for line, item in lines:
        if not isinstance(item, dict):
            yield line, item
            continue
        try:
            if kind == "contacts":
                yield line, webhook.customer_row(item)
                continue
            contact, event = webhook.order_rows(item)
        except MalformedBody as exc:
            yield line, BadLine(str(exc))
            continue
        if event is None:
            yield line, Ignored("an order without a customer")
            continue
        if contact is not None:
            event[CONTACT_ROW] = contact
        yield line, event


def rows(kind: str, lines: Lines) -> Lines:
    """The ``RowFormat`` entry: the customer export for contacts, the orders export for
    events; a JSON array of REST objects (it has ``id``, the CSV exports do not) through
    :func:`rest_rows`."""
    first = next(lines, None)
    if first is None:
        return
    again = _chain(first, lines)
    if isinstance(first[1], dict) and "id" in first[1]:
        yield from rest_rows(kind, again)
    elif kind == "contacts":
        yield from customer_rows(again)
    else:
        yield from order_rows(again)


def _chain(first: tuple[int, Any], rest: Lines) -> Lines:
    yield first
    yield from rest
