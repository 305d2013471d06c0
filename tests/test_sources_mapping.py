"""The shops' mappings as pure functions, one shop object → (contact row, event row), and
the one-transaction store entry point they feed (:func:`import_records`)."""

from __future__ import annotations

from typing import Any

import pytest

from regard.config import Config
from regard.sources.base import MalformedBody
from regard.sources.shopify import webhook as shopify
from regard.sources.woocommerce import mapping as woo
from regard.store import Store
from regard.store.record_import import RejectedRecords, import_records
from shop_payloads import shopify_customer, shopify_order, woo_customer, woo_order


@pytest.mark.parametrize(
    ("locale", "language"),
    [("de-DE", "de"), ("de-CH", "de"), ("pt-BR", "pt"), ("en", "en"), ("fr_CA", "fr"),
     ("", None), (None, None)],
)  # fmt: skip
def test_shopify_locale_is_its_language_part(locale: Any, language: str | None) -> None:
    row = shopify.customer_row(shopify_customer(locale=locale))
    assert row.get("locale") == language


@pytest.mark.parametrize(
    ("state", "consent"),
    [("subscribed", True), ("unsubscribed", False), ("not_subscribed", False),
     ("pending", None), ("invalid", None), ("redacted", None)],
)  # fmt: skip
def test_shopify_consent_states(state: str, consent: bool | None) -> None:
    row = shopify.customer_row(shopify_customer(email_marketing_consent={"state": state}))
    assert row.get("consent_email", None) is consent


def test_shopify_customer_without_address2_or_phone() -> None:
    address = {**shopify_customer()["default_address"], "address2": None, "phone": None}
    row = shopify.customer_row(shopify_customer(default_address=address, phone="+4930123456"))
    assert row["street"] == "Bahnhofstrasse 12"
    assert row["phone"] == "+4930123456"
    assert shopify.split_tags(" a ,b,, c") == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("changes", "amount", "voided_at"),
    [
        ({}, "129.80", None),
        ({"current_total_price": None}, "129.80", None),
        ({"current_total_price": "99.00", "total_price": "129.80"}, "99.00", None),
        ({"financial_status": "voided"}, "129.80", "2026-03-10T15:05:00+01:00"),
        ({"financial_status": "refunded"}, "129.80", "2026-03-10T15:05:00+01:00"),
        ({"cancelled_at": "2026-03-11T08:00:00+01:00"}, "129.80", "2026-03-11T08:00:00+01:00"),
        ({"financial_status": "partially_refunded"}, "129.80", None),
    ],
)
def test_shopify_order_amount_and_void(
    changes: dict[str, Any], amount: str, voided_at: str | None
) -> None:
    contact, event = shopify.order_rows(shopify_order(**changes))
    assert contact is not None and event is not None
    assert (event["amount"], event["voided_at"]) == (amount, voided_at)
    assert event["occurred_at"] == "2026-03-10T15:03:07+01:00"
    assert contact["locale"] == "de"  # the order's customer_locale


def test_shopify_order_without_customer_is_ignored() -> None:
    assert shopify.order_rows(shopify_order(customer=None)) == (None, None)
    with pytest.raises(MalformedBody):
        shopify.order_rows(shopify_order(line_items="Rosen"))


@pytest.mark.parametrize(
    ("status", "stored", "voided"),
    [("processing", True, False), ("completed", True, False), ("cancelled", True, True),
     ("refunded", True, True), ("failed", True, True), ("trash", True, True),
     ("pending", False, False), ("on-hold", False, False), ("checkout-draft", False, False),
     ("wc-custom", False, False)],
)  # fmt: skip
def test_woocommerce_statuses(status: str, stored: bool, voided: bool) -> None:
    _contact, event = woo.order_rows(woo_order(status=status))
    assert (event is not None) is stored
    if event is not None:
        assert event["voided_at"] == ("2026-03-12T09:16:00Z" if voided else None)
        assert event["occurred_at"] == "2026-03-12T09:16:00Z"


def test_woocommerce_guest_refunds_and_times() -> None:
    refunds = [{"id": 1, "total": "-10.00"}, {"id": 2, "total": "-4.80"}]
    billing = {**woo_customer()["billing"], "email": " Gast@Beispiel.DE "}
    contact, event = woo.order_rows(
        woo_order(customer_id=0, billing=billing, refunds=refunds, date_paid_gmt=None)
    )
    assert contact is not None and event is not None
    assert contact["id"] == event["contact_id"] == "guest:gast@beispiel.de"
    assert event["amount"] == "50.00"
    assert event["occurred_at"] == "2026-03-12T09:15:00Z"  # date_created_gmt, as UTC
    no_email = {**billing, "email": ""}
    assert woo.order_rows(woo_order(customer_id=0, billing=no_email)) == (None, None)


def test_woocommerce_customer_clears_empty_fields() -> None:
    row = woo.customer_row(woo_customer())
    assert row["company"] is None and row["street"] == "Königsallee 5"
    assert row["postal_code"] == "40212" and row["phone"] == "0211 1234567"


def test_import_records_is_one_transaction_contacts_first(store: Store) -> None:
    config = Config(timezone="Europe/Berlin")
    contact, event = shopify.order_rows(shopify_order())
    assert contact is not None and event is not None
    taken = import_records(store, config, [contact], [event])
    assert (taken.contacts, taken.events) == (1, 1)
    bad = {**event, "id": "2", "occurred_at": "gestern"}
    other = {"id": "neu", "email": "neu@example.de"}
    with pytest.raises(RejectedRecords) as rejected:
        import_records(store, config, [other], [bad])
    assert rejected.value.problems[0].startswith("events[0].occurred_at: ")
    assert store.contacts.get("neu") is None  # the good contact was not written either


def test_import_records_lenient_drops_an_invalid_optional_field(store: Store) -> None:
    config = Config()
    row = shopify.customer_row(shopify_customer(phone="kein Telefon", locale="xx-YY"))
    taken = import_records(store, config, [row], [], lenient=True)
    assert taken.contacts == 1
    assert sorted(d.split(":")[0] for d in taken.dropped) == [
        "contacts[0].locale",
        "contacts[0].phone",
    ]
    stored = store.contacts.get(row["id"])
    assert stored is not None and stored["phone"] is None and stored["city"] == "Zürich"
    with pytest.raises(RejectedRecords):
        import_records(store, config, [row], [], lenient=False)


def test_woocommerce_ping_is_answered_without_a_signature() -> None:
    from regard.sources.woocommerce import WooCommerceSource

    source = WooCommerceSource()
    for headers in ({}, {"X-WC-Webhook-Topic": "action.woocommerce_ping"}):
        assert source.verify("geheim", headers, b"webhook_id=12")
        assert source.receive(headers, b"webhook_id=12", 0).ignored
    assert not source.verify("geheim", {}, b'{"id": 1}')
    assert not source.verify("geheim", {"X-WC-Webhook-Signature": "x"}, b"webhook_id=12")


def test_the_shops_lifetime_counters_are_kept_as_attributes() -> None:
    # Shopify's Customer resource (customers.json, customers/* webhooks, the sync)
    row = shopify.customer_row(shopify_customer(orders_count=8, total_spent="1240.50"))
    assert (row["shop_orders"], row["shop_spent"]) == (8, 1240.5)
    # an order's customer no longer has them (API 2022-04): nothing is set, nothing cleared
    contact, _ = shopify.order_rows(shopify_order())
    assert contact is not None and "shop_orders" not in contact
    # WooCommerce's v2 customers have them, v3's do not
    row = woo.customer_row(woo_customer(orders_count=3, total_spent="99.90"))
    assert (row["shop_orders"], row["shop_spent"]) == (3, 99.9)
    assert "shop_orders" not in woo.customer_row(woo_customer())
