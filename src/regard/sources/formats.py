"""The file layouts ``regard import --format`` reads, by name.

``plain`` is regard's own fields (:mod:`regard.store.importer` needs no format for it);
``shopify`` is Shopify's CSV exports (:mod:`regard.sources.shopify.export`);
``woocommerce`` is WooCommerce's REST JSON arrays, through the same mapping as its webhooks
(:mod:`regard.sources.woocommerce.mapping`).
"""

from __future__ import annotations

from regard.sources.base import MalformedBody
from regard.sources.shopify import export as shopify_export
from regard.sources.woocommerce.mapping import customer_row, order_rows
from regard.store.importer import CONTACT_ROW, Lines, RowFormat
from regard.store.readers import BadLine, Ignored

__all__ = ["FORMATS", "row_format"]


def _woocommerce_rows(kind: str, lines: Lines) -> Lines:
    """``/wc/v3/customers`` objects → contacts; ``/wc/v3/orders`` objects → events, each
    with its contact (the customer, or the guest of its billing e-mail)."""
    for line, item in lines:
        if not isinstance(item, dict):
            yield line, item
            continue
        try:
            if kind == "contacts":
                yield line, customer_row(item)
                continue
            contact, event = order_rows(item)
        except MalformedBody as exc:
            yield line, BadLine(str(exc))
            continue
        if event is None:
            status = item.get("status")
            yield line, Ignored(f"order status {status!r}: not an order (yet)")
            continue
        if contact is not None:
            event[CONTACT_ROW] = contact
        yield line, event


FORMATS: dict[str, RowFormat] = {
    "shopify": RowFormat(
        "shopify",
        {"contacts": shopify_export.CUSTOMER_REQUIRED, "events": shopify_export.ORDER_REQUIRED},
        shopify_export.rows,
    ),
    "woocommerce": RowFormat("woocommerce", {"contacts": (), "events": ()}, _woocommerce_rows),
}


def row_format(name: str) -> RowFormat | None:
    """The format called ``name``; None for ``plain`` (regard's own fields)."""
    if name == "plain":
        return None
    return FORMATS[name]
