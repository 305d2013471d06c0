"""``regard sync``: WooCommerce REST v3 and Shopify Admin GraphQL, against loopback fakes
that check auth, pagination and the cursor, and answer 429s, 5xx and throttling."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from conftest import Workspace
from import_helpers import contact, rows, snapshot
from regard.errors import ConfigError
from regard.sources import SYNC_RUNNERS
from regard.sources.sync import SyncError, sync_source
from regard.store import open_store
from regard.workspace import load_config
from shop_apis import (
    SHOPIFY_TOKEN,
    THROTTLED,
    WOO_KEY,
    WOO_SECRET,
    FakeShop,
    fake_shop,
    gql_customer,
    gql_order,
)
from shop_exports import woo_customer, woo_order


def configure(workspace: Workspace, table: str) -> None:
    text = workspace.config.read_text()
    workspace.config.write_text(text + "\n[sources.shop]\n" + table)


def woo_table(url: str, key: str = WOO_KEY) -> str:
    return (
        f'type = "woocommerce"\nsecret = "hook-secret"\nurl = "{url}"\n'
        f'consumer_key = "{key}"\nconsumer_secret = "{WOO_SECRET}"\n'
    )


def woo_shop() -> FakeShop:
    customers = [
        woo_customer(1000 + n, "Jörg", f"Müller{n}", f"k{n}@example.ch") for n in range(120)
    ]
    orders = [
        woo_order(5000 + n, 1000 + n % 120, f"k{n % 120}@example.ch", "49.90",
                  modified=f"2026-03-{1 + n % 28:02d}T10:{n % 60:02d}:00")
        for n in range(230)
    ]  # fmt: skip
    orders.append(woo_order(6000, 0, "Gast@Example.DE", "25.00", currency="CHF", refunds=["-5.00"]))
    return FakeShop(customers=customers, orders=orders)


def sync(workspace: Workspace, full: bool = False, sleeps: list[float] | None = None) -> Any:
    config = load_config(str(workspace.config))
    with open_store(config.store_target) as store:
        return sync_source(
            store,
            config,
            "shop",
            SYNC_RUNNERS,
            full=full,
            backoff=0.01,
            sleep=(sleeps if sleeps is not None else []).append,
        )


def test_woocommerce_first_sync_then_only_what_changed(workspace: Workspace) -> None:
    with fake_shop(woo_shop()) as shop:
        configure(workspace, woo_table(shop.url))
        result = workspace.cli_json("sync", "shop")
        assert result["resources"]["customers"] == {"contacts": 120, "events": 0, "pages": 2}
        assert result["resources"]["orders"]["pages"] == 3 and result["events"] == 231
        gets = shop.requests("/wc/v3/")
        assert all(s.headers["authorization"].startswith("Basic ") for s in gets)
        orders = [s.query for s in shop.requests("/orders")]
        assert [q["page"] for q in orders] == ["1", "2", "3"]
        assert all(q["per_page"] == "100" and "modified_after" not in q for q in orders)
        db = workspace.store_target
        assert contact(db, "guest:gast@example.de")["order_count"] == 1
        guest = rows(db, "SELECT amount, currency FROM events WHERE id = '6000'")[0]
        assert (guest["amount"], guest["currency"]) == (20.0, "CHF")
        before = snapshot(db)
        shop.seen.clear()
        again = workspace.cli_json("sync", "shop")
        assert (again["contacts"], again["events"]) == (0, 0)
        assert shop.requests("/customers") == []  # customers only on the first sync
        (query,) = [s.query for s in shop.requests("/orders")]
        assert query["modified_after"] == "2026-03-28T10:55:00"  # the last date_modified_gmt
        assert query["dates_are_gmt"] == "true"
        assert snapshot(db) == before  # nothing new: nothing changed
        shop.orders[0].update(status="cancelled", date_modified_gmt="2026-04-02T08:00:00")
        third = workspace.cli_json("sync", "shop")
        assert third["events"] == 1
        assert rows(db, "SELECT voided_at FROM events WHERE id = '5000'")[0]["voided_at"]
        shop.seen.clear()
        full = workspace.cli_json("sync", "shop", "--full")
        assert full["contacts"] >= 120 and shop.requests("/customers")


def test_woocommerce_retries_429_and_5xx_and_refuses_a_wrong_key(workspace: Workspace) -> None:
    with fake_shop(woo_shop()) as shop:
        configure(workspace, woo_table(shop.url))
        shop.faults.extend(
            [(429, {"Retry-After": "0"}, {"code": "too_many"}), (503, {}, {}), (502, {}, {})]
        )
        sleeps: list[float] = []
        result = sync(workspace, sleeps=sleeps)
        assert result.retries == 3 and sleeps[0] == 0.0 and len(sleeps) == 3
        assert result.events == 231
        shop.faults.extend([(500, {}, {})] * 6)
        with pytest.raises(SyncError, match=r"HTTP 500 .gave up after 6 attempts"):
            sync(workspace)
    with fake_shop(woo_shop()) as shop:
        workspace.config.write_text(workspace.config.read_text().replace(WOO_KEY, "ck_wrong"))
        workspace.config.write_text(
            workspace.config.read_text().replace(
                workspace.config.read_text().split('url = "')[1].split('"')[0], shop.url
            )
        )
        answer = workspace.cli("sync", "shop")
        assert answer.exit_code == 1
        assert "WooCommerce refused the REST API key (HTTP 401)" in answer.stderr


def test_plain_http_only_to_loopback(workspace: Workspace) -> None:
    configure(workspace, woo_table("http://shop.example.com"))
    answer = workspace.cli("sync", "shop")
    assert answer.exit_code == 1 and "plain http:// only to this machine" in answer.stderr
    with pytest.raises(ConfigError, match=r"no \[sources.other\]"):
        config = load_config(str(workspace.config))
        with open_store(config.store_target) as store:
            sync_source(store, config, "other", SYNC_RUNNERS)


def shopify_shop() -> FakeShop:
    customers = [
        gql_customer(700 + n, "Zoë", f"Grünewald{n}", f"z{n}@example.ch",
                     f"2026-03-{1 + n % 20:02d}T08:00:{n % 60:02d}Z", tags=["B2B", "Großkunde"])
        for n in range(150)
    ]  # fmt: skip
    orders = [
        gql_order(900 + n, customers[n], "89.90", f"2026-03-{2 + n % 20:02d}T09:00:00Z")
        for n in range(120)
    ]
    orders.append(
        gql_order(
            1500, customers[3], "120.00", "2026-03-25T10:00:00Z", current="100.00", currency="CHF"
        )
    )
    orders.append(gql_order(1501, customers[4], "30.00", "2026-03-26T10:00:00Z", status="REFUNDED"))
    return FakeShop(customers=customers, orders=orders)


def shopify_table(url: str, token: str = SHOPIFY_TOKEN) -> str:
    return f'type = "shopify"\nsecret = "hook-secret"\nshop = "{url}"\ntoken = "{token}"\n'


def test_shopify_graphql_pages_cursor_and_throttle(workspace: Workspace) -> None:
    with fake_shop(shopify_shop()) as shop:
        configure(workspace, shopify_table(shop.url))
        shop.faults.append((200, {}, THROTTLED))
        sleeps: list[float] = []
        result = sync(workspace, sleeps=sleeps)
        assert sleeps and sleeps[0] == pytest.approx((52 - 2) / 100)  # waited for the bucket
        assert result.resources["customers"]["pages"] == 2 and result.contacts >= 150
        assert result.events == 122
        posts = shop.requests("graphql.json")
        assert all(s.headers["x-shopify-access-token"] == SHOPIFY_TOKEN for s in posts)
        assert [s.body["variables"]["after"] for s in posts if "customers(" in s.body["query"]][
            -2:
        ] == [None, "100"]
        db = workspace.store_target
        c = contact(db, "703")
        assert json.loads(c["tags"]) == ["b2b", "großkunde"] and c["consent_email"] == 1
        assert c["locale"] == "de" and c["country"] == "DE"
        chf = rows(db, "SELECT amount, currency FROM events WHERE id = '1500'")[0]
        assert (chf["amount"], chf["currency"]) == (100.0, "CHF")  # after the refund
        assert rows(db, "SELECT voided_at FROM events WHERE id = '1501'")[0]["voided_at"]
        before = snapshot(db)
        shop.seen.clear()
        again = sync(workspace)
        queries = [s.body["variables"]["query"] for s in shop.requests("graphql.json")]
        assert queries == [
            "updated_at:>='2026-03-20T08:00:59Z'",
            "updated_at:>='2026-03-26T10:00:00Z'",
        ]
        assert snapshot(db) == before and again.resources["orders"]["pages"] == 1
        status = workspace.cli("status")
        assert "shop" in status.stdout and "orders" in status.stdout


def test_shopify_retries_429_and_5xx_then_gets_the_same_pages(workspace: Workspace) -> None:
    with fake_shop(shopify_shop()) as shop:
        configure(workspace, shopify_table(shop.url))
        shop.faults.extend([(429, {"Retry-After": "0"}, {}), (502, {}, {}), (503, {}, {})])
        sleeps: list[float] = []
        result = sync(workspace, sleeps=sleeps)
        assert result.retries == 3 and sleeps[0] == 0.0 and len(sleeps) == 3
        assert result.events == 122 and result.resources["customers"]["pages"] == 2
        posts = shop.requests("graphql.json")
        assert all(s.headers["x-shopify-access-token"] == SHOPIFY_TOKEN for s in posts)
        shop.faults.extend([(500, {}, {})] * 6)
        with pytest.raises(SyncError, match=r"HTTP 500 .gave up after 6 attempts"):
            sync(workspace, full=True)


def test_shopify_refuses_a_wrong_token(workspace: Workspace) -> None:
    with fake_shop(shopify_shop()) as shop:
        configure(workspace, shopify_table(shop.url, token="shpat_wrong"))
        answer = workspace.cli("sync", "shop")
        assert answer.exit_code == 1 and "Shopify refused the access token" in answer.stderr


def test_the_daemon_syncs_every_sync_interval(workspace: Workspace) -> None:
    import threading
    import time

    from regard.daemon import Daemon

    with fake_shop(woo_shop()) as shop:
        configure(workspace, woo_table(shop.url) + 'sync_interval = "1s"\n')
        config = load_config(str(workspace.config))
        daemon = Daemon(config, lambda store, config, at, stop: {"evaluated": 0})
        thread = threading.Thread(target=daemon.serve)
        thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(shop.requests("/orders")) < 4:
            time.sleep(0.05)  # the first sync reads 3 pages of orders, the next one 1
        daemon.stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
        orders = shop.requests("/orders")
        assert len(orders) >= 4 and "modified_after" in orders[3].query
        assert rows(workspace.store_target, "SELECT count(*) AS n FROM events")[0]["n"] == 231


def test_shopify_full_sync_through_bulk_operations(workspace: Workspace) -> None:
    fake = shopify_shop()
    many = gql_order(1600, fake.customers[5], "75.00", "2026-03-21T09:00:00Z")
    many["lineItems"]["nodes"] = [
        {"sku": f"TULPE-{n}", "title": f"Tulpen {n}", "quantity": n,
         "originalUnitPriceSet": {"shopMoney": {"amount": "12.50"}}}
        for n in (1, 2, 3)
    ]  # fmt: skip
    fake.orders.append(many)
    with fake_shop(fake) as shop:
        configure(workspace, shopify_table(shop.url))
        sleeps: list[float] = []
        result = sync(workspace, full=True, sleeps=sleeps)
        posts = shop.requests("graphql.json")
        assert all(s.headers["x-shopify-access-token"] == SHOPIFY_TOKEN for s in posts)
        runs = [s for s in posts if "bulkOperationRunQuery" in s.body["query"]]
        assert len(runs) == 2 and "customers" in runs[0].body["variables"]["query"]
        assert not any("customers(first" in s.body["query"] for s in posts)  # no pages
        downloads = shop.requests("/bulk/")
        assert len(downloads) == 2
        assert all("x-shopify-access-token" not in d.headers for d in downloads)
        assert sleeps  # it polled a running operation
        assert result.contacts >= 150 and result.events == 123
        db = workspace.store_target
        c = contact(db, "703")
        assert json.loads(c["tags"]) == ["b2b", "großkunde"] and c["consent_email"] == 1
        stored = rows(db, "SELECT amount, properties FROM events WHERE id = '1600'")[0]
        items = json.loads(stored["properties"])["items"]
        assert [i["sku"] for i in items] == ["TULPE-1", "TULPE-2", "TULPE-3"]
        chf = rows(db, "SELECT amount, currency FROM events WHERE id = '1500'")[0]
        assert (chf["amount"], chf["currency"]) == (100.0, "CHF")
        # the next sync starts where the bulk operation started
        before = snapshot(db)
        shop.seen.clear()
        again = sync(workspace)
        queries = [s.body["variables"]["query"] for s in shop.requests("graphql.json")]
        assert queries == [
            "updated_at:>='2026-03-20T08:00:59Z'",  # customers: the last one seen
            "updated_at:>='2026-03-24T00:00:00Z'",  # orders: when the operation started
        ]
        assert snapshot(db) == before and again.events == 2  # the two changed since


@pytest.mark.parametrize(
    ("outcome", "code", "said"),
    [
        ("FAILED", "ACCESS_DENIED", "ended FAILED (ACCESS_DENIED)"),
        ("CANCELED", None, "ended CANCELED"),
    ],
)
def test_a_failed_or_canceled_bulk_operation_stops_the_sync_clearly(
    workspace: Workspace, outcome: str, code: str | None, said: str
) -> None:
    fake = shopify_shop()
    fake.bulk_outcome, fake.bulk_error = outcome, code
    with fake_shop(fake) as shop:
        configure(workspace, shopify_table(shop.url))
        with pytest.raises(SyncError, match=re.escape(f"bulk export of customers {said};")):
            sync(workspace, full=True)
        assert not shop.requests("/bulk/")
        answer = workspace.cli("sync", "shop", "--full")
        assert answer.exit_code == 1 and "sync --full again" in answer.stderr
    config = load_config(str(workspace.config))
    with open_store(config.store_target) as store:
        assert store.syncs.cursor("shop", "customers") is None
