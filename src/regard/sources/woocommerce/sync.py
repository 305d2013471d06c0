"""``regard sync`` for ``type = "woocommerce"``: the shop's REST API v3.

As WooCommerce documents it (https://woocommerce.github.io/woocommerce-rest-api-docs/):
- Authentication: a REST API key's consumer key and secret as HTTP Basic auth, over HTTPS
  ("Authentication over HTTPS"); WooCommerce → Settings → Advanced → REST API → Add key,
  permission Read.
- ``GET /wp-json/wc/v3/orders`` ("List all orders"): ``per_page`` (at most 100), ``page``,
  ``modified_after`` (ISO 8601) with ``dates_are_gmt=true`` to read it as GMT.
- ``GET /wp-json/wc/v3/customers`` ("List all customers"): ``per_page``, ``page``.
- Pagination ("Pagination"): the headers ``X-WP-Total`` and ``X-WP-TotalPages``.

Customers are read on the first sync and with ``--full``; orders every time, after the
first sync only those modified after the last ``date_modified_gmt`` seen (the cursor).
Each order brings its contact (the customer, or the guest of its billing e-mail), mapped
by :mod:`regard.sources.woocommerce.mapping`, the webhooks' mapping.
"""

from __future__ import annotations

from typing import Any

import httpx

from regard.sources.base import MalformedBody, Row
from regard.sources.sync import SyncError, SyncRun, check_url, require
from regard.sources.woocommerce.mapping import customer_row, gmt, order_rows

PER_PAGE = 100


def sync_woocommerce(run: SyncRun) -> None:
    """Customers (first sync, ``--full``), then orders from the cursor on."""
    url, key, secret = require(run.table, run.name, "url", "consumer_key", "consumer_secret")
    base = str(check_url(url, f"[sources.{run.name}] url")).rstrip("/")
    auth = httpx.BasicAuth(key, secret)
    if run.first_time("customers"):
        for page in _pages(run, f"{base}/wp-json/wc/v3/customers", {}, auth):
            customers: list[Row] = []
            for item in page:
                try:
                    customers.append(customer_row(item))
                except MalformedBody as exc:
                    run.result.problems.append(f"customers {item.get('id')}: {exc}")
            run.write("customers", customers, [])
        run.done("customers", None)
    cursor = run.cursor("orders")
    params: dict[str, str] = {}
    if cursor is not None:
        params = {"modified_after": cursor, "dates_are_gmt": "true"}
    latest = cursor
    for page in _pages(run, f"{base}/wp-json/wc/v3/orders", params, auth):
        contacts: list[Row] = []
        events: list[Row] = []
        for order in page:
            modified = gmt(order.get("date_modified_gmt"))
            if isinstance(modified, str):
                seen = modified.removesuffix("Z")
                latest = seen if latest is None or seen > latest else latest
            try:
                contact, event = order_rows(order)
            except MalformedBody as exc:
                run.result.problems.append(f"orders {order.get('id')}: {exc}")
                continue
            if contact is not None and event is not None:
                contacts.append(contact)
                events.append(event)
        run.write("orders", contacts, events)
    run.done("orders", latest)


def _pages(run: SyncRun, url: str, params: dict[str, str], auth: httpx.BasicAuth) -> Any:
    """Each page's list of objects, pages 1 … X-WP-TotalPages."""
    page, total = 1, 1
    while page <= total:
        response = run.http.request(
            "GET", url, params={**params, "per_page": str(PER_PAGE), "page": str(page)}, auth=auth
        )
        if response.status_code in (401, 403):
            raise SyncError(
                f"[sources.{run.name}]: WooCommerce refused the REST API key (HTTP "
                f"{response.status_code}); check consumer_key and consumer_secret"
            )
        if response.status_code != 200:
            raise SyncError(
                f"[sources.{run.name}]: GET {httpx.URL(url).path} answered HTTP "
                f"{response.status_code}; check url"
            )
        try:
            items = response.json()
        except ValueError:
            raise SyncError(
                f"[sources.{run.name}]: {httpx.URL(url).path} did not answer JSON"
            ) from None
        if not isinstance(items, list):
            raise SyncError(f"[sources.{run.name}]: {httpx.URL(url).path} did not answer a list")
        try:
            total = int(response.headers.get("X-WP-TotalPages", "1"))
        except ValueError:
            total = page
        yield [item for item in items if isinstance(item, dict)]
        page += 1
