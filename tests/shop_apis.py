"""Loopback fakes of the shops' APIs, real HTTP on 127.0.0.1, each a small shop of its own:
WooCommerce's REST v3 (HTTP Basic, per_page/page, X-WP-TotalPages, modified_after with
dates_are_gmt) and Shopify's Admin GraphQL (X-Shopify-Access-Token, cursor pagination,
updated_at search, the cost-based throttle, bulk operations with their JSONL result). Both check what the documentation requires
and record every request; ``faults`` scripts answers (429, 503, THROTTLED) before the
real one."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeShop:
    """What the fake holds and saw. ``faults``: (status, headers, body) answered first."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    faults: deque[tuple[int, dict[str, str], Any]] = field(default_factory=deque)
    url: str = ""
    # bulk operations: how the next one ends, after how many polls, and when it started
    bulk_outcome: str = "COMPLETED"
    bulk_error: str | None = None
    bulk_polls: int = 2
    bulk_started: str = "2026-03-24T00:00:00Z"
    bulk: dict[str, Any] = field(default_factory=dict)  # the current operation
    bulk_files: dict[str, bytes] = field(default_factory=dict)

    def requests(self, path_part: str) -> list[Seen]:
        return [s for s in self.seen if path_part in s.path]


class _Handler(BaseHTTPRequestHandler):
    shop: FakeShop
    kind: str

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> Seen:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        seen = Seen(
            self.command,
            parts.path,
            {k: v[0] for k, v in parse_qs(parts.query).items()},
            {k.lower(): v for k, v in self.headers.items()},
            json.loads(raw) if raw else None,
        )
        self.shop.seen.append(seen)
        return seen

    def _fault(self) -> bool:
        if self.shop.faults:
            status, headers, body = self.shop.faults.popleft()
            self._answer(status, body, headers)
            return True
        return False

    def do_GET(self) -> None:
        seen = self._record()
        if seen.path.startswith("/bulk/"):  # a bulk operation's signed download: no auth
            data = self.shop.bulk_files.get(seen.path)
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Type", "application/jsonl")
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")
            return
        if self._fault():
            return
        woo_get(self, seen)

    def do_POST(self) -> None:
        seen = self._record()
        if self._fault():
            return
        shopify_post(self, seen)


WOO_KEY, WOO_SECRET = "ck_0123456789abcdef", "cs_fedcba9876543210"


def woo_get(handler: _Handler, seen: Seen) -> None:
    expected = "Basic " + base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
    if seen.headers.get("authorization") != expected:
        handler._answer(401, {"code": "woocommerce_rest_cannot_view", "message": "Sorry"})
        return
    if seen.path == "/wp-json/wc/v3/orders":
        items = handler.shop.orders
        after = seen.query.get("modified_after")
        if after is not None:
            assert seen.query.get("dates_are_gmt") == "true"
            items = [o for o in items if o["date_modified_gmt"] > after.removesuffix("Z")]
    elif seen.path == "/wp-json/wc/v3/customers":
        items = handler.shop.customers
    else:
        handler._answer(404, {"code": "rest_no_route"})
        return
    per_page, page = int(seen.query["per_page"]), int(seen.query.get("page", "1"))
    assert per_page <= 100
    pages = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    handler._answer(200, chunk, {"X-WP-Total": str(len(items)), "X-WP-TotalPages": str(pages)})


SHOPIFY_TOKEN = "shpat_0123456789"


def shopify_post(handler: _Handler, seen: Seen) -> None:
    if seen.path != "/admin/api/2025-01/graphql.json":
        handler._answer(404, {"errors": "Not Found"})
        return
    if seen.headers.get("x-shopify-access-token") != SHOPIFY_TOKEN:
        handler._answer(401, {"errors": "[API] Invalid API key or access token"})
        return
    query, variables = seen.body["query"], seen.body.get("variables") or {}
    if "bulkOperationRunQuery" in query or "currentBulkOperation" in query:
        shopify_bulk(handler, query, variables)
        return
    resource = "customers" if "customers(" in query else "orders"
    items = getattr(handler.shop, resource)
    search = variables.get("query")
    if search:
        m = re.fullmatch(r"updated_at:>='([^']+)'", search)
        assert m, search
        items = [i for i in items if i["updatedAt"] >= m.group(1)]
    items = sorted(items, key=lambda i: (i["updatedAt"], i["legacyResourceId"]))
    start = int(variables["after"]) if variables.get("after") else 0
    first = variables["first"]
    chunk = items[start : start + first]
    more = start + first < len(items)
    handler._answer(
        200,
        {
            "data": {
                resource: {
                    "pageInfo": {"hasNextPage": more, "endCursor": str(start + first)},
                    "nodes": chunk,
                }
            },
            "extensions": {
                "cost": {
                    "requestedQueryCost": 52,
                    "actualQueryCost": 12,
                    "throttleStatus": {
                        "maximumAvailable": 2000.0,
                        "currentlyAvailable": 1988,
                        "restoreRate": 100.0,
                    },
                }
            },
        },
    )


def shopify_bulk(handler: _Handler, query: str, variables: dict[str, Any]) -> None:
    """``bulkOperationRunQuery`` starts an operation (one at a time); each
    ``currentBulkOperation`` poll moves it on (CREATED, RUNNING …) to ``bulk_outcome``; a
    completed one has the JSONL of every node at ``url``, nested connections (an order's
    line items) flattened into lines of their own with ``__parentId``."""
    shop = handler.shop
    cost = {"requestedQueryCost": 10, "throttleStatus": {
        "maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0}}  # fmt: skip
    if "bulkOperationRunQuery" in query:
        inner = variables["query"]
        assert "edges" in inner and "node" in inner, inner  # a bulk query's connections
        if shop.bulk and shop.bulk["status"] in ("CREATED", "RUNNING"):
            errors = [{"field": ["query"], "message": "A bulk query operation is in progress."}]
            handler._answer(200, {"data": {"bulkOperationRunQuery": {
                "bulkOperation": None, "userErrors": errors}}, "extensions": {"cost": cost}})  # fmt: skip
            return
        number = len(shop.bulk_files) + 1
        resource = "customers" if "customers" in inner.split("{")[1] else "orders"
        shop.bulk = {
            "id": f"gid://shopify/BulkOperation/{number}", "status": "CREATED",
            "createdAt": shop.bulk_started, "resource": resource, "polls": 0,
        }  # fmt: skip
        shop.bulk_files[f"/bulk/{number}.jsonl"] = _bulk_lines(shop, resource)
        answer = {"id": shop.bulk["id"], "status": "CREATED", "createdAt": shop.bulk_started}
        handler._answer(200, {"data": {"bulkOperationRunQuery": {
            "bulkOperation": answer, "userErrors": []}}, "extensions": {"cost": cost}})  # fmt: skip
        return
    op = shop.bulk
    if not op:
        handler._answer(200, {"data": {"currentBulkOperation": None}})
        return
    op["polls"] += 1
    if op["status"] in ("CREATED", "RUNNING"):
        op["status"] = "RUNNING" if op["polls"] < shop.bulk_polls else shop.bulk_outcome
    current = {
        "id": op["id"], "status": op["status"], "createdAt": op["createdAt"],
        "errorCode": shop.bulk_error if op["status"] == "FAILED" else None,
        "objectCount": "0", "url": None,
    }  # fmt: skip
    if op["status"] == "COMPLETED":
        current["url"] = f"{shop.url}/bulk/{op['id'].rsplit('/', 1)[1]}.jsonl"
    handler._answer(200, {"data": {"currentBulkOperation": current}, "extensions": {"cost": cost}})


def _bulk_lines(shop: FakeShop, resource: str) -> bytes:
    lines = []
    for node in getattr(shop, resource):
        kind = "Customer" if resource == "customers" else "Order"
        flat = {"id": f"gid://shopify/{kind}/{node['legacyResourceId']}", **node}
        items = flat.pop("lineItems", None)
        lines.append(json.dumps(flat))
        for n, item in enumerate((items or {}).get("nodes") or []):
            gid = f"gid://shopify/LineItem/{node['legacyResourceId']}{n}"
            lines.append(json.dumps({"id": gid, **item, "__parentId": flat["id"]}))
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def fake_shop(shop: FakeShop) -> Iterator[FakeShop]:
    """Serve ``shop`` on 127.0.0.1 (``shop.url``) for the block."""
    handler = type("Handler", (_Handler,), {"shop": shop})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    shop.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()


THROTTLED = {
    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
    "extensions": {
        "cost": {
            "requestedQueryCost": 52,
            "throttleStatus": {
                "maximumAvailable": 2000.0,
                "currentlyAvailable": 2,
                "restoreRate": 100.0,
            },
        }
    },
}


def gql_customer(
    cid: int, first: str, last: str, email: str, updated: str, **extra: Any
) -> dict[str, Any]:
    """A GraphQL Customer node as the Admin API answers the query regard sends."""
    return {
        "legacyResourceId": str(cid), "email": email, "phone": extra.get("phone"),
        "firstName": first, "lastName": last, "locale": extra.get("locale", "de-DE"),
        "tags": extra.get("tags", []), "updatedAt": updated,
        "defaultAddress": {"company": None, "address1": "Lindenstraße 5", "address2": None,
                           "city": extra.get("city", "Berlin"), "zip": "10969",
                           "countryCodeV2": extra.get("country", "DE"), "phone": None},
        "emailMarketingConsent": {"marketingState": "SUBSCRIBED"},
        "smsMarketingConsent": None,
    }  # fmt: skip


def gql_order(
    oid: int, customer: dict[str, Any], total: str, updated: str, **extra: Any
) -> dict[str, Any]:
    """A GraphQL Order node as the Admin API answers the query regard sends."""
    currency = extra.get("currency", "EUR")
    return {
        "legacyResourceId": str(oid), "name": f"#{oid}", "email": customer["email"],
        "processedAt": extra.get("processed", "2026-03-10T14:03:07Z"),
        "createdAt": "2026-03-10T14:00:00Z", "updatedAt": updated,
        "cancelledAt": extra.get("cancelled"),
        "displayFinancialStatus": extra.get("status", "PAID"),
        "displayFulfillmentStatus": "FULFILLED", "customerLocale": "de-CH",
        "currentTotalPriceSet": {"shopMoney": {"amount": extra.get("current", total), "currencyCode": currency}},
        "totalPriceSet": {"shopMoney": {"amount": total, "currencyCode": currency}},
        "customer": customer,
        "lineItems": {"nodes": [{"sku": "ROSE-1", "title": "Rosenstrauß", "quantity": 2,
                                 "originalUnitPriceSet": {"shopMoney": {"amount": "20.00"}}}]},
    }  # fmt: skip
