"""``POST /ingest/<source name>`` against a real ``regard serve`` process: Shopify's and
WooCommerce's webhooks signed and mis-signed for every topic the contract names, in the
shops' documented shapes; the api's 422; a server killed right after a 200 keeps the data."""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import pytest

from conftest import Workspace
from regard.store import open_store
from shop_payloads import (
    API_TOKEN,
    SHOPIFY_SECRET,
    WOO_SECRET,
    body_of,
    shopify_customer,
    shopify_headers,
    shopify_order,
    woo_customer,
    woo_headers,
    woo_order,
)

SOURCES = """
[sources.laden]
type = "shopify"
secret = "${SHOPIFY_WEBHOOK_SECRET}"

[sources.woo]
type = "woocommerce"
secret = "${WOO_WEBHOOK_SECRET}"

[sources.crm]
type = "api"
secret = "${REGARD_INGEST_TOKEN}"
"""
ENV = {
    "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET,
    "WOO_WEBHOOK_SECRET": WOO_SECRET,
    "REGARD_INGEST_TOKEN": API_TOKEN,
}


@pytest.fixture
def server(workspace: Workspace, served: Any) -> Any:
    workspace.config.write_text(workspace.config.read_text() + SOURCES, encoding="utf-8")
    return served(workspace.config, env=ENV)


def rows(workspace: Workspace, table: str) -> list[dict[str, Any]]:
    with open_store(workspace.store_target) as store:
        return [dict(r) for r in store.conn.execute(f"SELECT * FROM {table} ORDER BY id")]


def snapshot(workspace: Workspace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return rows(workspace, "contacts"), rows(workspace, "events")


def post(server: Any, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/ingest/{source}", content=body, headers=headers, timeout=10)


def shopify(
    server: Any, topic: str, payload: Any, *, secret: str = SHOPIFY_SECRET
) -> httpx.Response:
    body = body_of(payload)
    return post(server, "laden", body, shopify_headers(topic, body, secret))


def woo(server: Any, topic: str, payload: Any, *, secret: str = WOO_SECRET) -> httpx.Response:
    body = body_of(payload)
    return post(server, "woo", body, woo_headers(topic, body, secret))


def signed_once_and_again(
    workspace: Workspace, send: Any, topic: str, payload: Any, expected: dict[str, Any]
) -> None:
    """Mis-signed: 401, nothing stored. Signed: 200 with the counts. Again: no change."""
    before = snapshot(workspace)
    wrong = send(topic, payload, secret="not-the-secret")
    assert wrong.status_code == 401, topic
    assert snapshot(workspace) == before, topic
    answer = send(topic, payload)
    assert answer.status_code == 200, (topic, answer.text)
    assert answer.json() == {"ok": True, **expected}, topic
    after = snapshot(workspace)
    again = send(topic, payload)
    assert again.status_code == 200, topic
    assert snapshot(workspace) == after, f"{topic}: the second delivery changed the store"


def test_every_shopify_topic_signed_and_mis_signed(workspace: Workspace, server: Any) -> None:
    def send(topic: str, payload: Any, secret: str = SHOPIFY_SECRET) -> httpx.Response:
        return shopify(server, topic, payload, secret=secret)

    cid = "706405506930370084"
    for topic in ("customers/create", "customers/update"):
        signed_once_and_again(
            workspace, send, topic, shopify_customer(), {"contacts": 1, "events": 0}
        )
    [contact] = rows(workspace, "contacts")
    assert {
        "id": cid, "email": "juergen.mueller@example.ch", "phone": "+41446681800",
        "first_name": "Jürgen", "last_name": "Müller", "company": "Blumenhaus Müller AG",
        "street": "Bahnhofstrasse 12, 3. Stock", "postal_code": "8001", "city": "Zürich",
        "country": "CH", "locale": "de", "consent_email": 1, "consent_sms": 0,
        "tags": '["stammkunde","vip"]',  # tags are kept lower-cased (docs/import.md)
    }.items() <= contact.items()  # fmt: skip

    # a 2025-01 customer webhook has no tags and no consent objects: they stay as they were
    lean = shopify_customer(first_name="Jürgen-Peter")
    for key in ("tags", "email_marketing_consent", "sms_marketing_consent"):
        del lean[key]
    assert send("customers/update", lean).json()["contacts"] == 1
    [contact] = rows(workspace, "contacts")
    assert (contact["first_name"], contact["tags"], contact["consent_email"]) == (
        "Jürgen-Peter", '["stammkunde","vip"]', 1,
    )  # fmt: skip

    for topic in ("orders/create", "orders/updated", "orders/paid"):
        signed_once_and_again(workspace, send, topic, shopify_order(), {"contacts": 1, "events": 1})
    [event] = rows(workspace, "events")
    assert {
        "id": "820982911946154508", "contact_id": cid, "type": "order",
        "occurred_at": 1773151387, "amount": 129.8, "currency": "CHF", "voided_at": None,
    }.items() <= event.items()  # fmt: skip
    assert json.loads(event["properties"]) == {
        "name": "#1001",
        "financial_status": "paid",
        "items": [
            {
                "sku": "ROSE-12",
                "name": "Rosenstrauß „Grüße aus Zürich“",
                "quantity": 2,
                "price": 49.9,
            },
            {"sku": "VASE-S", "name": "Glasvase klein", "quantity": 1, "price": 20.0},
        ],
        "source": "shopify",
    }
    assert rows(workspace, "contacts")[0]["order_count"] == 1

    # a partial refund lowers the amount; a full one voids the order
    refunded = shopify_order(
        current_total_price="79.90", financial_status="partially_refunded",
        updated_at="2026-03-11T09:00:00+01:00",
    )  # fmt: skip
    assert send("orders/updated", refunded).status_code == 200
    assert rows(workspace, "events")[0]["amount"] == 79.9
    cancelled = shopify_order(
        cancelled_at="2026-03-12T08:00:00+01:00", financial_status="refunded",
        updated_at="2026-03-12T08:00:05+01:00",
    )  # fmt: skip
    signed_once_and_again(
        workspace, send, "orders/cancelled", cancelled, {"contacts": 1, "events": 1}
    )
    assert rows(workspace, "events")[0]["voided_at"] == 1773298800
    assert rows(workspace, "contacts")[0]["order_count"] == 0  # a voided order counts for nothing

    # an order without a customer is ignored
    signed_once_and_again(
        workspace,
        send,
        "orders/create",
        shopify_order(id=9, customer=None),
        {"contacts": 0, "events": 0},
    )
    assert len(rows(workspace, "events")) == 1

    email = {
        "customer_id": int(cid), "email_address": "juergen.mueller@example.ch",
        "email_marketing_consent": {"state": "unsubscribed", "opt_in_level": "single_opt_in",
                                    "consent_updated_at": "2026-03-13T10:00:00+01:00"},
    }  # fmt: skip
    signed_once_and_again(
        workspace,
        send,
        "customers_email_marketing_consent/update",
        email,
        {"contacts": 1, "events": 0},
    )
    sms = {
        "customer_id": int(cid), "phone": "+41446681800",
        "sms_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                  "consent_updated_at": "2026-03-13T10:00:00+01:00"},
    }  # fmt: skip
    signed_once_and_again(
        workspace, send, "customers_marketing_consent/update", sms, {"contacts": 1, "events": 0}
    )
    [contact] = rows(workspace, "contacts")
    assert (contact["consent_email"], contact["consent_sms"]) == (0, 1)

    privacy = {"shop_id": 954889, "shop_domain": "blumen-rosa.myshopify.com"}
    request = {**privacy, "orders_requested": [820982911946154508],
               "customer": {"id": int(cid), "email": "juergen.mueller@example.ch", "phone": None},
               "data_request": {"id": 9999}}  # fmt: skip
    for topic, payload in (("customers/data_request", request), ("shop/redact", privacy)):
        signed_once_and_again(workspace, send, topic, payload, {"contacts": 0, "events": 0})
    assert len(rows(workspace, "contacts")) == 1

    redact = {**privacy, "customer": {"id": int(cid), "email": "juergen.mueller@example.ch"},
              "orders_to_redact": [820982911946154508]}  # fmt: skip
    signed_once_and_again(workspace, send, "customers/redact", redact, {"contacts": 0, "events": 0})
    assert rows(workspace, "contacts") == []
    assert rows(workspace, "events")[0]["contact_id"].startswith("forgotten:")
    # the shop's next webhook for the forgotten customer does not bring them back
    assert send("customers/update", shopify_customer()).status_code == 200
    assert rows(workspace, "contacts") == []

    signed_once_and_again(
        workspace,
        send,
        "products/update",
        {"id": 1, "title": "Rosen"},
        {"contacts": 0, "events": 0},
    )
    assert shopify(server, "orders/create", "not an object").status_code == 400
    assert (
        post(
            server, "laden", b"{not json", shopify_headers("orders/create", b"{not json")
        ).status_code
        == 400
    )
    no_signature = post(server, "laden", b"{}", {"X-Shopify-Topic": "customers/create"})
    assert no_signature.status_code == 401
    server.stop()
    log = server.log()
    assert "products/update: ignored (unknown topic)" in log
    assert "juergen" not in log.lower() and "Müller" not in log and SHOPIFY_SECRET not in log


def test_every_woocommerce_topic_signed_and_mis_signed(workspace: Workspace, server: Any) -> None:
    def send(topic: str, payload: Any, secret: str = WOO_SECRET) -> httpx.Response:
        return woo(server, topic, payload, secret=secret)

    # the ping of a new webhook: a form body, unsigned
    ping = post(
        server, "woo", b"webhook_id=12", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert ping.status_code == 200
    assert ping.json() == {"ok": True, "contacts": 0, "events": 0}

    for topic in ("customer.created", "customer.updated"):
        signed_once_and_again(workspace, send, topic, woo_customer(), {"contacts": 1, "events": 0})
    [contact] = rows(workspace, "contacts")
    assert {
        "id": "25", "email": "Baerbel.Schroeder@example.de", "first_name": "Bärbel",
        "last_name": "Schröder", "company": None, "street": "Königsallee 5",
        "postal_code": "40212", "city": "Düsseldorf", "country": "DE", "phone": "+492111234567",
    }.items() <= contact.items()  # fmt: skip

    refund = [{"id": 730, "reason": "Blumen welk", "total": "-14.90"}]
    for topic in ("order.created", "order.updated"):
        signed_once_and_again(
            workspace, send, topic, woo_order(refunds=refund), {"contacts": 1, "events": 1}
        )
    [event] = rows(workspace, "events")
    assert {
        "id": "727", "contact_id": "25", "type": "order", "occurred_at": 1773306960,
        "amount": 49.9, "currency": "EUR", "voided_at": None,
    }.items() <= event.items()  # fmt: skip
    assert json.loads(event["properties"]) == {
        "number": "727",
        "status": "processing",
        "items": [
            {"sku": "TULP-10", "name": "Tulpen „Frühlingsgruß“", "quantity": 2, "price": 29.95}
        ],
        "source": "woocommerce",
    }

    # a guest: contact guest:<lower-cased e-mail>; pending is not stored yet
    guest = woo_order(
        id=728, number="728", customer_id=0, status="pending", currency="CHF", total="35.00",
        billing={**woo_customer()["billing"], "email": "Guest.Gast@Example.CH", "country": "CH",
                 "phone": "", "first_name": "Gül", "last_name": "Öztürk"},
    )  # fmt: skip
    signed_once_and_again(workspace, send, "order.created", guest, {"contacts": 0, "events": 0})
    guest["status"] = "completed"
    signed_once_and_again(workspace, send, "order.updated", guest, {"contacts": 1, "events": 1})
    by_id = {c["id"]: c for c in rows(workspace, "contacts")}
    assert by_id["guest:guest.gast@example.ch"]["first_name"] == "Gül"
    assert {e["id"]: e["currency"] for e in rows(workspace, "events")} == {
        "727": "EUR",
        "728": "CHF",
    }

    # cancelled: voided at date_modified_gmt; restored: an order again
    cancelled = woo_order(status="cancelled", date_modified_gmt="2026-03-13T08:00:00")
    signed_once_and_again(workspace, send, "order.updated", cancelled, {"contacts": 1, "events": 1})
    assert rows(workspace, "events")[0]["voided_at"] == 1773388800
    signed_once_and_again(
        workspace, send, "order.restored", woo_order(), {"contacts": 1, "events": 1}
    )
    assert rows(workspace, "events")[0]["voided_at"] is None

    # deleted: voided now (and a second delete keeps the first time)
    signed_once_and_again(
        workspace, send, "order.deleted", {"id": 727}, {"contacts": 0, "events": 0}
    )
    assert rows(workspace, "events")[0]["voided_at"] is not None

    signed_once_and_again(
        workspace, send, "coupon.created", {"id": 5}, {"contacts": 0, "events": 0}
    )
    body = body_of(woo_customer())
    assert post(server, "woo", body, {"X-WC-Webhook-Topic": "customer.updated"}).status_code == 401


def test_api_takes_contacts_then_events_all_or_nothing(workspace: Workspace, server: Any) -> None:
    auth = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    good = {
        "contacts": [{"id": "k1", "email": "anna@example.de", "first_name": "Änne", "tags": ["vip"]}],
        "events": [
            {"id": "o1", "contact_id": "k1", "occurred_at": "2026-03-01T10:00:00Z", "amount": "49.90",
             "items": [{"sku": "A", "name": "Rosen", "quantity": "2", "price": "24.95"}]},
            {"id": "o2", "contact_id": "k1", "occurred_at": "2026-03-02T10:00:00Z", "amount": 10,
             "voided_at": "2026-03-03T10:00:00Z"},
        ],
    }  # fmt: skip
    answer = post(server, "crm", body_of(good), auth)
    assert answer.status_code == 200
    assert answer.json() == {"ok": True, "contacts": 1, "events": 2}
    after = snapshot(workspace)
    assert after[0][0]["order_count"] == 1 and after[0][0]["total_spent"] == 49.9
    assert post(server, "crm", body_of(good), auth).status_code == 200
    assert snapshot(workspace) == after

    bad = {
        "contacts": [{"id": "k2", "email": "ok@example.de"}, {"id": "k3", "email": "not-an-address"}],
        "events": [
            {"id": "o3", "contact_id": "k2", "occurred_at": "2026-03-04T10:00:00Z"},
            {"id": "o4", "contact_id": "k2", "occurred_at": "2026-03-04T10:00:00Z"},
            {"id": "o5", "contact_id": "k2", "occurred_at": "yesterday"},
            {"id": "o6", "contact_id": "nobody", "occurred_at": "2026-03-04T10:00:00Z"},
        ],
    }  # fmt: skip
    rejected = post(server, "crm", body_of(bad), auth)
    assert rejected.status_code == 422
    errors = rejected.json()["errors"]
    assert any(e.startswith("contacts[1].email: ") for e in errors), errors
    assert any(e.startswith("events[2].occurred_at: ") for e in errors), errors
    assert not any(e.startswith(("contacts[0]", "events[0]", "events[1]")) for e in errors)
    assert snapshot(workspace) == after

    unknown = {"events": [{"id": "o7", "contact_id": "nobody", "occurred_at": "2026-03-04"}]}
    answer = post(server, "crm", body_of(unknown), auth)
    assert answer.status_code == 422
    assert answer.json()["errors"][0].startswith("events[0].contact_id: unknown contact")
    assert snapshot(workspace) == after

    wrong = {**auth, "Authorization": "Bearer nope"}
    assert post(server, "crm", body_of(good), wrong).status_code == 401
    assert (
        post(server, "crm", body_of(good), {"Content-Type": "application/json"}).status_code == 401
    )
    assert post(server, "crm", b"[1, 2]", auth).status_code == 400
    assert post(server, "crm", b'{"contacts": {"id": 1}}', auth).status_code == 400
    assert post(server, "nirgends", body_of(good), auth).status_code == 404
    assert snapshot(workspace) == after


def test_a_server_killed_right_after_answering_200_has_the_data(
    workspace: Workspace, server: Any
) -> None:
    body = body_of(shopify_order())
    answer = post(server, "laden", body, shopify_headers("orders/create", body))
    assert answer.status_code == 200
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    assert [e["id"] for e in rows(workspace, "events")] == ["820982911946154508"]
    assert [c["id"] for c in rows(workspace, "contacts")] == ["706405506930370084"]


def test_status_shows_each_source_and_what_it_took_today(workspace: Workspace, server: Any) -> None:
    body = body_of(shopify_customer())
    for _ in range(2):
        assert (
            post(server, "laden", body, shopify_headers("customers/update", body)).status_code
            == 200
        )
    server.stop()
    result = workspace.cli("status", "--json", env=ENV)
    sources = json.loads(result.stdout)["sources"]
    assert sources["laden"]["today"] == 2
    assert sources["laden"]["last_topic"] == "customers/update"
    assert sources["laden"]["last_at"] is not None
    assert sources["woo"] == {
        "type": "woocommerce",
        "last_at": None,
        "last_topic": None,
        "today": 0,
        "sync": {},  # no `regard sync` yet
    }
    text = workspace.cli("status", env=ENV).stdout
    assert "laden (shopify): last " in text and "2 today" in text


def test_config_rejects_unknown_source_keys(workspace: Workspace) -> None:
    workspace.config.write_text(
        workspace.config.read_text()
        + '\n[sources.x]\ntype = "shopify"\nsecret = "s"\nsecrte = "t"\n',
        encoding="utf-8",
    )
    result = workspace.cli("status")
    assert result.exit_code == 1
    assert "secrte" in result.output


def test_a_burst_is_committed_together_and_a_bad_request_alone_is_refused(
    workspace: Workspace, server: Any
) -> None:
    import asyncio

    auth = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}

    def contact(n: int) -> bytes:
        return body_of({"contacts": [{"id": f"b{n}", "email": f"b{n}@example.de"}]})

    bodies = [contact(n) for n in range(30)]
    bodies[7] = body_of({"contacts": [{"id": "b7", "email": "kaputt"}]})

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=20) as client:
            return await asyncio.gather(
                *(client.post(f"{server.url}/ingest/crm", content=b, headers=auth) for b in bodies)
            )

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [422 if n == 7 else 200 for n in range(30)]
    assert answers[7].json()["errors"][0].startswith("contacts[0].email: ")
    stored = {c["id"] for c in rows(workspace, "contacts")}
    assert stored == {f"b{n}" for n in range(30) if n != 7}
