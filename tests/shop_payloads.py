"""Shop objects in the shapes the shops document, for the sources' tests: Shopify's
Admin REST Customer and Order resources (as its webhooks send them), WooCommerce's REST v3
customers and orders. German and Swiss customers, line items, refunds, guests, CHF."""

from __future__ import annotations

import json
from typing import Any

from regard.sources.base import hmac_base64

SHOPIFY_SECRET = "shpss_5f2c8e0a9b7d4c1e"
WOO_SECRET = "wc-9XyZ!secret"
API_TOKEN = "api-token-3d1f"


def shopify_customer(**changes: Any) -> dict[str, Any]:
    customer: dict[str, Any] = {
        "id": 706405506930370084,
        "email": "juergen.mueller@example.ch",
        "created_at": "2026-03-02T10:15:00+01:00",
        "updated_at": "2026-03-02T10:15:00+01:00",
        "first_name": "Jürgen",
        "last_name": "Müller",
        "state": "enabled",
        "phone": None,
        "locale": "de-CH",
        "tags": "Stammkunde, VIP ",
        "currency": "CHF",
        "email_marketing_consent": {
            "state": "subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2026-03-02T10:15:00+01:00",
        },
        "sms_marketing_consent": {
            "state": "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": None,
            "consent_collected_from": "OTHER",
        },
        "default_address": {
            "id": 1053317291,
            "customer_id": 706405506930370084,
            "first_name": "Jürgen",
            "last_name": "Müller",
            "company": "Blumenhaus Müller AG",
            "address1": "Bahnhofstrasse 12",
            "address2": "3. Stock",
            "city": "Zürich",
            "province": "Zürich",
            "country": "Switzerland",
            "zip": "8001",
            "phone": "+41 44 668 18 00",
            "province_code": "ZH",
            "country_code": "CH",
            "country_name": "Switzerland",
            "default": True,
        },
    }
    customer.update(changes)
    return customer


def shopify_order(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "name": "#1001",
        "order_number": 1001,
        "email": "juergen.mueller@example.ch",
        "created_at": "2026-03-10T15:01:00+01:00",
        "processed_at": "2026-03-10T15:03:07+01:00",
        "updated_at": "2026-03-10T15:05:00+01:00",
        "cancelled_at": None,
        "cancel_reason": None,
        "currency": "CHF",
        "current_total_price": "129.80",
        "total_price": "129.80",
        "subtotal_price": "119.80",
        "financial_status": "paid",
        "fulfillment_status": None,
        "customer_locale": "de-CH",
        "line_items": [
            {
                "id": 866550311766439020,
                "sku": "ROSE-12",
                "title": "Rosenstrauß „Grüße aus Zürich“",
                "quantity": 2,
                "price": "49.90",
                "price_set": {"shop_money": {"amount": "49.90", "currency_code": "CHF"}},
            },
            {
                "id": 141249953214522974,
                "sku": "VASE-S",
                "title": "Glasvase klein",
                "quantity": 1,
                "price": "20.00",
            },
        ],
        "refunds": [],
        "customer": {
            "id": 706405506930370084,
            "email": "juergen.mueller@example.ch",
            "first_name": "Jürgen",
            "last_name": "Müller",
            "phone": None,
            "currency": "CHF",
            "default_address": shopify_customer()["default_address"],
        },
    }
    order.update(changes)
    return order


def woo_customer(**changes: Any) -> dict[str, Any]:
    customer: dict[str, Any] = {
        "id": 25,
        "date_created": "2026-03-01T11:00:00",
        "date_created_gmt": "2026-03-01T10:00:00",
        "date_modified_gmt": "2026-03-01T10:00:00",
        "email": "Baerbel.Schroeder@example.de",
        "first_name": "Bärbel",
        "last_name": "Schröder",
        "role": "customer",
        "username": "baerbel",
        "billing": {
            "first_name": "Bärbel",
            "last_name": "Schröder",
            "company": "",
            "address_1": "Königsallee 5",
            "address_2": "",
            "city": "Düsseldorf",
            "state": "NW",
            "postcode": "40212",
            "country": "DE",
            "email": "Baerbel.Schroeder@example.de",
            "phone": "0211 1234567",
        },
        "shipping": {"first_name": "Bärbel", "last_name": "Schröder", "country": "DE"},
        "is_paying_customer": True,
        "avatar_url": "https://secure.gravatar.com/avatar/x",
        "meta_data": [],
    }
    customer.update(changes)
    return customer


def woo_order(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": 727,
        "parent_id": 0,
        "number": "727",
        "order_key": "wc_order_58d2d042d1d",
        "created_via": "checkout",
        "status": "processing",
        "currency": "EUR",
        "date_created": "2026-03-12T10:15:00",
        "date_created_gmt": "2026-03-12T09:15:00",
        "date_modified": "2026-03-12T10:16:00",
        "date_modified_gmt": "2026-03-12T09:16:00",
        "date_paid": "2026-03-12T10:16:00",
        "date_paid_gmt": "2026-03-12T09:16:00",
        "discount_total": "0.00",
        "shipping_total": "4.90",
        "total": "64.80",
        "total_tax": "10.35",
        "prices_include_tax": True,
        "customer_id": 25,
        "billing": woo_customer()["billing"],
        "payment_method": "bacs",
        "line_items": [
            {
                "id": 315,
                "name": "Tulpen „Frühlingsgruß“",
                "product_id": 93,
                "quantity": 2,
                "subtotal": "59.90",
                "total": "59.90",
                "sku": "TULP-10",
                "price": 29.95,
            }
        ],
        "refunds": [],
    }
    order.update(changes)
    return order


def body_of(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def shopify_headers(topic: str, body: bytes, secret: str = SHOPIFY_SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": hmac_base64(secret, body),
        "X-Shopify-Shop-Domain": "blumen-rosa.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }


def woo_headers(topic: str, body: bytes, secret: str = WOO_SECRET) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://blumen-rosa.de/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": hmac_base64(secret, body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "9f1c",
    }
