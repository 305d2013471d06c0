"""``regard sync`` for ``type = "shopify"``: the Admin GraphQL API.

As Shopify documents it:
- Endpoint and auth (https://shopify.dev/docs/api/admin-graphql): ``POST
  https://<shop>/admin/api/<version>/graphql.json`` with the header
  ``X-Shopify-Access-Token`` (a custom app's Admin API access token, scopes
  ``read_customers`` and ``read_orders``).
- ``customers`` and ``orders`` queries
  (https://shopify.dev/docs/api/admin-graphql/latest/queries/customers,
  …/queries/orders): ``first``, ``after`` (cursor pagination, ``pageInfo { hasNextPage
  endCursor }``), ``sortKey: UPDATED_AT``, ``query: "updated_at:>='<time>'"`` (search
  syntax, https://shopify.dev/docs/api/usage/search-syntax).
- The cost-based throttle (https://shopify.dev/docs/api/usage/rate-limits): every answer
  carries ``extensions.cost`` with ``requestedQueryCost`` and ``throttleStatus
  {maximumAvailable, currentlyAvailable, restoreRate}``; a query over the bucket is
  answered 200 with an error whose ``extensions.code`` is ``THROTTLED``. regard waits
  until the bucket holds the query's cost again, then asks again.

- Bulk operations for ``--full`` (https://shopify.dev/docs/api/usage/bulk-operations/queries,
  …/mutations/bulkOperationRunQuery, …/queries/currentBulkOperation, …/objects/BulkOperation):
  the mutation ``bulkOperationRunQuery(query:)`` answers ``bulkOperation {id status}`` or
  ``userErrors``; ``currentBulkOperation`` is polled until ``status`` is ``COMPLETED``
  (``FAILED`` with its ``errorCode``, ``CANCELED`` and ``EXPIRED`` end the sync); its
  ``url`` is a JSONL file, one object per line, downloaded without the access token (a
  signed storage address) and read line by line. A nested connection's nodes (an order's
  line items) are lines of their own with ``__parentId``, the ``id`` of their parent,
  after the parent's line. The cursor stored afterwards is the operation's ``createdAt``
  (or the last ``updatedAt`` seen, if earlier): what changed while it ran is what the
  next sync asks for.

GraphQL nodes are turned into the Admin REST shape and mapped by
:mod:`regard.sources.shopify.webhook`, the webhooks' mapping. The cursor of each resource
is the last ``updatedAt`` seen; the next sync asks for ``updated_at:>=`` it (the last
record again, which changes nothing when stored again).
"""

from __future__ import annotations

import json
from typing import Any

from regard.sources.base import MalformedBody, Row
from regard.sources.shopify.webhook import customer_row, order_rows
from regard.sources.sync import SyncError, SyncRun, check_url, require

API_VERSION = "2025-01"
PAGE_SIZE = 100
THROTTLE_WAITS = 20  # a query still throttled after this many waits stops the sync

_ADDRESS = "company address1 address2 city zip countryCodeV2 phone"
_CUSTOMER = f"""
    legacyResourceId email phone firstName lastName locale tags updatedAt
    defaultAddress {{ {_ADDRESS} }}
    emailMarketingConsent {{ marketingState }}
    smsMarketingConsent {{ marketingState }}
"""
CUSTOMERS_QUERY = f"""
query Customers($first: Int!, $after: String, $query: String) {{
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {_CUSTOMER} }}
  }}
}}
"""
ORDERS_QUERY = f"""
query Orders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      legacyResourceId name email processedAt createdAt updatedAt cancelledAt
      displayFinancialStatus displayFulfillmentStatus customerLocale
      currentTotalPriceSet {{ shopMoney {{ amount currencyCode }} }}
      totalPriceSet {{ shopMoney {{ amount currencyCode }} }}
      customer {{ {_CUSTOMER} }}
      lineItems(first: 50) {{ nodes {{ sku title quantity originalUnitPriceSet {{ shopMoney {{ amount }} }} }} }}
    }}
  }}
}}
"""


# the bulk queries: the same fields, the connections as edges (as the guide writes them)
BULK_QUERIES = {
    "customers": f"{{ customers {{ edges {{ node {{ id {_CUSTOMER} }} }} }} }}",
    "orders": f"""{{ orders {{ edges {{ node {{
      id legacyResourceId name email processedAt createdAt updatedAt cancelledAt
      displayFinancialStatus displayFulfillmentStatus customerLocale
      currentTotalPriceSet {{ shopMoney {{ amount currencyCode }} }}
      totalPriceSet {{ shopMoney {{ amount currencyCode }} }}
      customer {{ {_CUSTOMER} }}
      lineItems {{ edges {{ node {{ id sku title quantity
        originalUnitPriceSet {{ shopMoney {{ amount }} }} }} }} }}
    }} }} }} }}""",
}
RUN_BULK = """
mutation RunBulk($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status createdAt }
    userErrors { field message }
  }
}
"""
POLL_BULK = """
query { currentBulkOperation { id status errorCode createdAt objectCount url } }
"""
POLL_SECONDS = 2.0  # between two looks at a running bulk operation
POLL_LIMIT = 1800  # one hour of looks: a first sync of a very large shop


def sync_shopify(run: SyncRun) -> None:
    """Customers, then orders, each from its cursor on (everything with ``--full``,
    through a bulk operation each)."""
    shop, token = require(run.table, run.name, "shop", "token")
    base = shop if "://" in shop else f"https://{shop}"
    url = str(check_url(base, f"[sources.{run.name}] shop")).rstrip("/")
    endpoint = f"{url}/admin/api/{API_VERSION}/graphql.json"
    for resource, query in (("customers", CUSTOMERS_QUERY), ("orders", ORDERS_QUERY)):
        if run.full:
            run.done(resource, _bulk(run, endpoint, token, resource))
            continue
        cursor = run.cursor(resource)
        latest = cursor
        search = f"updated_at:>='{cursor}'" if cursor else None
        after: str | None = None
        while True:
            data = _query(
                run, endpoint, token, query, {"first": PAGE_SIZE, "after": after, "query": search}
            )
            connection = (data.get("data") or {}).get(resource) or {}
            latest = _write_page(run, resource, connection.get("nodes") or [], latest)
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
        run.done(resource, latest)


def _write_page(
    run: SyncRun, resource: str, nodes: list[dict[str, Any]], latest: str | None
) -> str | None:
    """Map and store one page of nodes; the latest ``updatedAt`` seen so far."""
    convert = rest_customer if resource == "customers" else rest_order
    contacts: list[Row] = []
    events: list[Row] = []
    for node in nodes:
        updated = node.get("updatedAt")
        if isinstance(updated, str) and (latest is None or updated > latest):
            latest = updated
        try:
            if resource == "customers":
                contacts.append(customer_row(convert(node)))
                continue
            contact, event = order_rows(convert(node))
        except MalformedBody as exc:
            run.result.problems.append(f"{resource} {node.get('legacyResourceId')}: {exc}")
            continue
        if contact is not None and event is not None:
            contacts.append(contact)
            events.append(event)
    run.write(resource, contacts, events)
    return latest


def _bulk(run: SyncRun, endpoint: str, token: str, resource: str) -> str | None:
    """Every ``resource`` through one bulk operation, stored page by page as its JSONL
    result streams in; the cursor to store afterwards."""
    where = f"[sources.{run.name}]"
    data = _query(run, endpoint, token, RUN_BULK, {"query": BULK_QUERIES[resource]})
    payload = (data.get("data") or {}).get("bulkOperationRunQuery") or {}
    errors = payload.get("userErrors") or []
    operation = payload.get("bulkOperation") or {}
    if errors or not operation.get("id"):
        message = "; ".join(str((e or {}).get("message")) for e in errors) or "no operation"
        raise SyncError(f"{where}: Shopify did not start the bulk export of {resource}: {message}")
    started = operation.get("createdAt")
    for _ in range(POLL_LIMIT):
        data = _query(run, endpoint, token, POLL_BULK, {})
        current = (data.get("data") or {}).get("currentBulkOperation") or {}
        if current.get("id") != operation["id"]:
            raise SyncError(
                f"{where}: another bulk operation of this app runs on the shop; wait for it "
                "to end (or cancel it), then sync again"
            )
        status = current.get("status")
        if status == "COMPLETED":
            break
        if status in ("FAILED", "CANCELED", "EXPIRED"):
            code = current.get("errorCode")
            reason = f" ({code})" if code else ""
            raise SyncError(
                f"{where}: Shopify's bulk export of {resource} ended {status}{reason}; none "
                f"of its {resource} were stored: sync --full again"
                + (" once the app has the read scopes" if code == "ACCESS_DENIED" else "")
            )
        run.http.sleep(POLL_SECONDS)
    else:
        raise SyncError(f"{where}: Shopify's bulk export of {resource} did not end in time")
    latest: str | None = None
    result = current.get("url")
    if result:  # no url: nothing to export
        latest = _read_bulk(run, str(result), resource)
    if isinstance(started, str) and (latest is None or started < latest):
        return started
    return latest


def _read_bulk(run: SyncRun, url: str, resource: str) -> str | None:
    """Read a bulk operation's JSONL result line by line, an order's line items (their
    own lines, ``__parentId`` naming it) back under it; stored in pages."""
    address = check_url(url, f"[sources.{run.name}] bulk operation url")
    latest: str | None = None
    page: list[dict[str, Any]] = []
    parent: dict[str, Any] | None = None
    with run.http.client.stream("GET", address) as response:
        if response.status_code != 200:
            raise SyncError(
                f"[sources.{run.name}]: the bulk export's file answered HTTP "
                f"{response.status_code}; sync --full again"
            )
        for number, line in enumerate(response.iter_lines(), start=1):
            if not line.strip():
                continue
            try:
                node = json.loads(line)
            except ValueError:
                run.result.problems.append(f"{resource} bulk line {number}: not JSON")
                continue
            owner = node.pop("__parentId", None) if isinstance(node, dict) else None
            if owner is None:
                if len(page) >= PAGE_SIZE:
                    latest = _write_page(run, resource, page, latest)
                    page = []
                parent = node
                page.append(node)
            elif parent is not None and parent.get("id") == owner:
                items = parent.setdefault("lineItems", {"nodes": []})
                items.setdefault("nodes", []).append(node)
            else:
                run.result.problems.append(
                    f"{resource} bulk line {number}: its parent {owner} is not the line before"
                )
    if page:
        latest = _write_page(run, resource, page, latest)
    return latest


def _query(run: SyncRun, endpoint: str, token: str, query: str, variables: dict[str, Any]) -> Any:
    """One GraphQL query, waiting out the cost-based throttle."""
    for _ in range(THROTTLE_WAITS):
        response = run.http.request(
            "POST",
            endpoint,
            json={"query": query, "variables": variables},
            headers={"X-Shopify-Access-Token": token, "Accept": "application/json"},
        )
        if response.status_code in (401, 403):
            raise SyncError(
                f"[sources.{run.name}]: Shopify refused the access token (HTTP "
                f"{response.status_code}); check token and the app's read_customers / "
                "read_orders scopes"
            )
        if response.status_code != 200:
            raise SyncError(
                f"[sources.{run.name}]: the Admin API answered HTTP {response.status_code}; "
                "check shop"
            )
        try:
            data = response.json()
        except ValueError:
            raise SyncError(f"[sources.{run.name}]: the Admin API did not answer JSON") from None
        cost = ((data.get("extensions") or {}).get("cost")) or {}
        errors = data.get("errors") or []
        if any(((e or {}).get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            run.http.sleep(_refill(cost, needed=cost.get("requestedQueryCost")))
            continue
        if errors:
            message = "; ".join(str((e or {}).get("message")) for e in errors)
            raise SyncError(f"[sources.{run.name}]: the Admin API answered: {message}")
        # pace the next query: wait when the bucket holds less than this one cost
        status = cost.get("throttleStatus") or {}
        available = status.get("currentlyAvailable")
        requested = cost.get("requestedQueryCost")
        if (
            isinstance(available, int | float)
            and isinstance(requested, int | float)
            and available < requested
        ):
            run.http.sleep(_refill(cost, needed=requested))
        return data
    raise SyncError(
        f"[sources.{run.name}]: still throttled by Shopify after {THROTTLE_WAITS} waits"
    )


def _refill(cost: dict[str, Any], needed: Any) -> float:
    """Seconds until the bucket holds ``needed`` points at its restore rate."""
    status = cost.get("throttleStatus") or {}
    available = status.get("currentlyAvailable") or 0
    rate = status.get("restoreRate") or 50
    wanted = needed if isinstance(needed, int | float) else 100
    return max(0.0, (float(wanted) - float(available)) / float(rate))


def _state(consent: Any) -> dict[str, Any] | None:
    if not isinstance(consent, dict) or not isinstance(consent.get("marketingState"), str):
        return None
    return {"state": consent["marketingState"].lower()}


def rest_customer(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL ``Customer`` node in the REST shape the mapping reads."""
    customer: dict[str, Any] = {
        "id": node.get("legacyResourceId"),
        "email": node.get("email"),
        "first_name": node.get("firstName"),
        "last_name": node.get("lastName"),
        "phone": node.get("phone"),
        "locale": node.get("locale"),
    }
    tags = node.get("tags")
    if isinstance(tags, list):
        customer["tags"] = ", ".join(str(t) for t in tags)
    address = node.get("defaultAddress")
    if isinstance(address, dict):
        customer["default_address"] = {
            "company": address.get("company"),
            "address1": address.get("address1"),
            "address2": address.get("address2"),
            "city": address.get("city"),
            "zip": address.get("zip"),
            "country_code": address.get("countryCodeV2"),
            "phone": address.get("phone"),
        }
    for channel in ("email", "sms"):
        state = _state(node.get(f"{channel}MarketingConsent"))
        if state is not None:
            customer[f"{channel}_marketing_consent"] = state
    return customer


def _money(node: dict[str, Any], name: str) -> tuple[Any, Any]:
    money = ((node.get(name) or {}).get("shopMoney")) or {}
    return money.get("amount"), money.get("currencyCode")


def rest_order(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL ``Order`` node in the REST shape the mapping reads."""
    current, currency = _money(node, "currentTotalPriceSet")
    total, total_currency = _money(node, "totalPriceSet")
    customer = node.get("customer")
    status = node.get("displayFinancialStatus")
    fulfillment = node.get("displayFulfillmentStatus")
    return {
        "id": node.get("legacyResourceId"),
        "name": node.get("name"),
        "email": node.get("email"),
        "processed_at": node.get("processedAt"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "financial_status": status.lower() if isinstance(status, str) else None,
        "fulfillment_status": fulfillment.lower() if isinstance(fulfillment, str) else None,
        "customer_locale": node.get("customerLocale"),
        "current_total_price": current,
        "total_price": total,
        "currency": currency or total_currency,
        "customer": rest_customer(customer) if isinstance(customer, dict) else None,
        "line_items": [
            {
                "sku": item.get("sku"),
                "title": item.get("title"),
                "quantity": item.get("quantity"),
                "price": _money(item, "originalUnitPriceSet")[0],
            }
            for item in ((node.get("lineItems") or {}).get("nodes") or [])
            if isinstance(item, dict)
        ],
    }
