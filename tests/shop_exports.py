"""Files in the shops' own layouts, built from their documented headers: Shopify's customer
CSV export, its orders CSV export (one row per line item, the order's fields on the first
row only), and WooCommerce's REST v3 JSON objects."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

SHOPIFY_CUSTOMER_COLUMNS = [
    "Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing",
    "Default Address Company", "Default Address Address1", "Default Address Address2",
    "Default Address City", "Default Address Province Code", "Default Address Country Code",
    "Default Address Zip", "Default Address Phone", "Phone", "Accepts SMS Marketing",
    "Total Spent", "Total Orders", "Note", "Tax Exempt", "Tags",
]  # fmt: skip

SHOPIFY_ORDER_COLUMNS = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at",
    "Accepts Marketing", "Currency", "Subtotal", "Shipping", "Taxes", "Total",
    "Discount Code", "Discount Amount", "Shipping Method", "Created at",
    "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem compare at price",
    "Lineitem sku", "Lineitem requires shipping", "Lineitem taxable",
    "Lineitem fulfillment status", "Billing Name", "Billing Street", "Billing Address1",
    "Billing Address2", "Billing Company", "Billing City", "Billing Zip", "Billing Province",
    "Billing Country", "Billing Phone", "Shipping Name", "Shipping Street",
    "Shipping Address1", "Shipping Address2", "Shipping Company", "Shipping City",
    "Shipping Zip", "Shipping Province", "Shipping Country", "Shipping Phone", "Notes",
    "Note Attributes", "Cancelled at", "Payment Method", "Payment Reference",
    "Refunded Amount", "Vendor", "Outstanding Balance", "Employee", "Location",
    "Device ID", "Id", "Tags", "Risk Level", "Source", "Lineitem discount", "Tax 1 Name",
    "Tax 1 Value", "Tax 2 Name", "Tax 2 Value", "Tax 3 Name", "Tax 3 Value", "Tax 4 Name",
    "Tax 4 Value", "Tax 5 Name", "Tax 5 Value", "Phone", "Receipt Number", "Duties",
    "Billing Province Name", "Shipping Province Name", "Payment ID", "Payment Terms Name",
    "Next Payment Due At", "Payment References",
]  # fmt: skip
assert len(SHOPIFY_ORDER_COLUMNS) == len(set(SHOPIFY_ORDER_COLUMNS)) == 79


def shopify_customers(*customers: dict[str, str]) -> str:
    """A customer export: every documented column, the given ones filled."""
    return _csv(SHOPIFY_CUSTOMER_COLUMNS, customers)


def shopify_orders(*orders: dict[str, Any]) -> str:
    """An orders export: one row per line item (``items``: a list of (name, quantity,
    price, sku)); the order's own fields only on its first row, as Shopify writes them."""
    rows: list[dict[str, str]] = []
    for order in orders:
        order = dict(order)
        items: Sequence[tuple[str, int, str, str]] = order.pop("items")
        for n, (name, quantity, price, sku) in enumerate(items):
            row = dict(order) if n == 0 else {"Name": order["Name"], "Email": order["Email"]}
            row.update({
                "Lineitem name": name, "Lineitem quantity": str(quantity),
                "Lineitem price": price, "Lineitem sku": sku,
                "Lineitem requires shipping": "true", "Lineitem taxable": "true",
                "Lineitem fulfillment status": "pending",
            })  # fmt: skip
            rows.append(row)
    return _csv(SHOPIFY_ORDER_COLUMNS, rows)


def _csv(columns: list[str], rows: Sequence[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        unknown = set(row) - set(columns)
        assert not unknown, unknown
        writer.writerow({c: row.get(c, "") for c in columns})
    return out.getvalue()


def woo_customer(cid: int, first: str, last: str, email: str, **billing: str) -> dict[str, Any]:
    """A /wc/v3/customers object as WooCommerce answers it."""
    return {
        "id": cid, "date_created": "2025-11-02T09:12:44", "date_created_gmt": "2025-11-02T08:12:44",
        "date_modified": "2026-02-01T10:00:00", "date_modified_gmt": "2026-02-01T09:00:00",
        "email": email, "first_name": first, "last_name": last, "role": "customer",
        "username": email.split("@")[0],
        "billing": {
            "first_name": first, "last_name": last, "company": billing.get("company", ""),
            "address_1": billing.get("address_1", ""), "address_2": billing.get("address_2", ""),
            "city": billing.get("city", ""), "postcode": billing.get("postcode", ""),
            "country": billing.get("country", ""), "state": "", "email": email,
            "phone": billing.get("phone", ""),
        },
        "shipping": {"first_name": first, "last_name": last, "company": "", "address_1": "",
                     "address_2": "", "city": "", "postcode": "", "country": "", "state": ""},
        "is_paying_customer": True, "avatar_url": "", "meta_data": [],
    }  # fmt: skip


def woo_order(
    oid: int,
    customer_id: int,
    email: str,
    total: str,
    *,
    status: str = "completed",
    paid: str | None = "2026-03-10T14:03:07",
    created: str = "2026-03-10T14:00:00",
    modified: str = "2026-03-10T14:05:00",
    currency: str = "EUR",
    refunds: Sequence[str] = (),
    first: str = "Jörg",
    last: str = "Müller",
) -> dict[str, Any]:
    """A /wc/v3/orders object as WooCommerce answers it."""
    return {
        "id": oid, "parent_id": 0, "number": str(oid), "order_key": f"wc_order_{oid}",
        "created_via": "checkout", "version": "8.5.1", "status": status, "currency": currency,
        "date_created": created, "date_created_gmt": created, "date_modified": modified,
        "date_modified_gmt": modified, "discount_total": "0.00", "shipping_total": "4.90",
        "total": total, "total_tax": "0.00", "prices_include_tax": True,
        "customer_id": customer_id, "customer_note": "",
        "billing": {"first_name": first, "last_name": last, "company": "",
                    "address_1": "Hauptstraße 3", "address_2": "", "city": "Zürich",
                    "state": "", "postcode": "8001", "country": "CH", "email": email,
                    "phone": ""},
        "shipping": {"first_name": first, "last_name": last, "company": "", "address_1": "",
                     "address_2": "", "city": "", "state": "", "postcode": "", "country": ""},
        "payment_method": "bacs", "payment_method_title": "Überweisung", "transaction_id": "",
        "date_paid": paid, "date_paid_gmt": paid, "date_completed": None,
        "date_completed_gmt": None, "cart_hash": "", "meta_data": [],
        "line_items": [{"id": oid * 10, "name": "Rosenstrauß", "product_id": 93,
                        "variation_id": 0, "quantity": 2, "tax_class": "", "subtotal": "40.00",
                        "total": "40.00", "sku": "ROSE-1", "price": 20}],
        "tax_lines": [], "shipping_lines": [], "fee_lines": [], "coupon_lines": [],
        "refunds": [{"id": oid * 100 + n, "reason": "", "total": t} for n, t in enumerate(refunds)],
    }  # fmt: skip
