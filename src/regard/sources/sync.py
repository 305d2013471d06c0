"""``regard sync SOURCE [--full]``: pull the shop's customers and orders through its API,
from where the last sync stopped.

What every shop's sync shares lives here: the HTTP client (``http://`` only to loopback
hosts; each 429, 5xx, timeout or lost connection retried with exponential backoff and
jitter, tenacity's formula, a ``Retry-After`` honoured), the cursor per source and
resource (``store.syncs``), and the loop that writes each page in its own transaction
through :func:`regard.store.record_import.import_records` (a shop's record with a bad
optional field keeps the record and drops the field, as the webhooks do). A resource's cursor is
saved only when its last page is in: a sync that stops half-way starts that resource
again from the old cursor, and re-writing what is already stored changes nothing.

The shops: :mod:`regard.sources.woocommerce.sync` (REST v3) and
:mod:`regard.sources.shopify.sync` (Admin GraphQL).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from regard.config import Config, SourceTable
from regard.errors import ConfigError, RegardError
from regard.store import Store
from regard.store.record_import import RejectedRecords, import_records
from regard.times import Instant, to_epoch, utcnow

ATTEMPTS = 6  # per request: the first and five retries
TIMEOUT = 30.0


class SyncError(RegardError):
    """A sync that cannot go on: the shop refused the credentials, the address is wrong, or
    the shop kept failing after every retry. What was stored before it stays stored."""


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


def check_url(url: str, where: str) -> httpx.URL:
    """``url`` parsed; ``http://`` is refused except to a loopback host (credentials and
    customer data never travel in clear)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError(f"{where}: {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{where}: {url!r} must start with https://")
    if parsed.scheme == "http" and not _loopback(parsed.host):
        raise ConfigError(f"{where}: {url!r}: plain http:// only to this machine; use https://")
    return parsed


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def retry_after(response: httpx.Response) -> float | None:
    """A ``Retry-After`` header in seconds (a number or an HTTP date); None without one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Http:
    """One shop API's HTTP: requests retried on 429, 5xx, timeouts and lost connections.

    ``backoff`` is the first wait in seconds (then doubling, with jitter, up to
    ``max_backoff``); ``sleep`` is how it waits (tests pass a recorder)."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        attempts: int = ATTEMPTS,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.attempts = attempts
        self.sleep = sleep
        self._wait = wait_exponential_jitter(multiplier=backoff, max=max_backoff, jitter=backoff)
        self.retries = 0

    def _wait_for(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retry) and error.after is not None:
            return error.after
        return float(self._wait(state))

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The answer to one request (2xx, or a 4xx other than 408/425/429 for the caller
        to judge); SyncError once the retries are spent."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait_for,
            retry=retry_if_exception_type(_Retry),
            sleep=self._slept,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, url, **kwargs)
        except _Retry as exc:
            raise SyncError(
                f"{_where(url)}: {exc} (gave up after {self.attempts} attempts)"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _slept(self, seconds: float) -> None:
        self.retries += 1
        self.sleep(seconds)

    def _once(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise _Retry("no answer in time") from None
        except httpx.TransportError as exc:
            raise _Retry(f"connection failed: {type(exc).__name__}") from None
        if response.status_code in (408, 425, 429) or response.status_code >= 500:
            raise _Retry(f"HTTP {response.status_code}", retry_after(response))
        return response


def _where(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.host}{parsed.path}"


@dataclass
class SyncResult:
    """What one ``regard sync`` brought, per resource, and what it had to leave out."""

    source: str
    full: bool
    resources: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    retries: int = 0

    @property
    def contacts(self) -> int:
        return sum(r["contacts"] for r in self.resources.values())

    @property
    def events(self) -> int:
        return sum(r["events"] for r in self.resources.values())

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``regard sync``."""
        return {
            "source": self.source,
            "full": self.full,
            "contacts": self.contacts,
            "events": self.events,
            "resources": self.resources,
            "retries": self.retries,
            "problems": self.problems,
        }


@dataclass
class SyncRun:
    """One sync in progress: what a shop's module needs to write pages and cursors."""

    store: Store
    config: Config
    name: str
    table: SourceTable
    full: bool
    http: Http
    now: Instant
    result: SyncResult

    def cursor(self, resource: str) -> str | None:
        """Where the last completed sync of ``resource`` stopped (None with ``--full``)."""
        return None if self.full else self.store.syncs.cursor(self.name, resource)

    def first_time(self, resource: str) -> bool:
        """Whether ``resource`` was never synced before (or ``--full``)."""
        return self.full or not self.store.syncs.has_synced(self.name, resource)

    def write(
        self,
        resource: str,
        contacts: Sequence[Mapping[str, Any]],
        events: Sequence[Mapping[str, Any]],
    ) -> None:
        """Store one page of mapped records (contacts first) in one transaction; a record
        that cannot be stored even without its bad optional fields is listed and left out."""
        counts = self.result.resources.setdefault(
            resource, {"contacts": 0, "events": 0, "pages": 0}
        )
        counts["pages"] += 1
        try:
            written = import_records(
                self.store, self.config, contacts, events, lenient=True, now=self.now
            )
        except RejectedRecords:
            written = None
        if written is None:  # one by one, so that one bad record keeps the others
            for kind, records in (("contacts", contacts), ("events", events)):
                for record in records:
                    one = ([record], []) if kind == "contacts" else ([], [record])
                    try:
                        done = import_records(
                            self.store, self.config, *one, lenient=True, now=self.now
                        )
                    except RejectedRecords as rejected:
                        ident = record.get("id") if isinstance(record, Mapping) else None
                        self.result.problems.extend(
                            f"{resource} {ident}: {p.split(': ', 1)[-1]}" for p in rejected.problems
                        )
                        continue
                    counts["contacts"] += done.contacts
                    counts["events"] += done.events
            return
        counts["contacts"] += written.contacts
        counts["events"] += written.events

    def done(self, resource: str, cursor: str | None) -> None:
        """``resource`` is complete: save its cursor (None keeps the stored one)."""
        counts = self.result.resources.setdefault(
            resource, {"contacts": 0, "events": 0, "pages": 0}
        )
        self.store.syncs.save(
            self.name,
            resource,
            cursor,
            self.now,
            contacts=counts["contacts"],
            events=counts["events"],
        )


Runner = Callable[[SyncRun], None]


def sync_source(
    store: Store,
    config: Config,
    name: str,
    runners: Mapping[str, Runner],
    *,
    full: bool = False,
    transport: httpx.BaseTransport | None = None,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Sync ``[sources.NAME]`` from where it stopped (``full``: everything) with the
    runner of its type (:data:`regard.sources.SYNC_RUNNERS`). Raises ConfigError for a
    source that cannot sync (unknown, ``type = "api"``, keys missing) and SyncError when
    the shop refuses or keeps failing."""
    table = config.sources.get(name)
    if table is None:
        known = ", ".join(sorted(config.sources)) or "none"
        raise ConfigError(f"no [sources.{name}] in the config (sources: {known})")
    runner = runners.get(table.type)
    if runner is None:
        raise ConfigError(
            f"[sources.{name}]: type {table.type!r} has no API to sync from "
            "(only shopify and woocommerce)"
        )
    result = SyncResult(source=name, full=full)
    with httpx.Client(timeout=TIMEOUT, transport=transport, follow_redirects=False) as client:
        http = Http(client, backoff=backoff, sleep=sleep)
        run = SyncRun(store, config, name, table, full, http, Instant(to_epoch(utcnow())), result)
        try:
            runner(run)
        finally:
            result.retries = http.retries
    return result


def require(table: SourceTable, name: str, *keys: str) -> list[str]:
    """The values of ``keys`` of ``[sources.NAME]``; ConfigError naming the missing ones."""
    values = [getattr(table, key) for key in keys]
    values = [v.get_secret_value() if isinstance(v, SecretStr) else v for v in values]
    missing = [k for k, v in zip(keys, values, strict=True) if not v]
    if missing:
        raise ConfigError(
            f"[sources.{name}]: `regard sync` needs {', '.join(missing)} "
            '(see docs/sources.md, "A nightly sync")'
        )
    return [str(v) for v in values]
