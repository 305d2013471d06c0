"""What the adapters that speak HTTP share: one request and one bounded answer per attempt
(:class:`HTTPProvider`), the contract's classification of an answer (2xx sent; 408, 425,
429 and 5xx retried, honouring ``Retry-After``; anything else dead), the services' error
codes read into reasons, and the rule that plain ``http://`` goes to loopback hosts only."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import math
import time
from abc import abstractmethod
from collections.abc import Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator

from regard.providers.base import Provider
from regard.providers.outcomes import (
    Dead,
    Outcome,
    Paused,
    Retry,
    Sent,
    Undeliverable,
    Unknown,
)
from regard.store.records import DeliveryRecord

if TYPE_CHECKING:
    pass


class HTTPProvider(Provider):
    """An adapter that speaks HTTP: build one request, read one response."""

    @abstractmethod
    def build_request(self, record: DeliveryRecord, client: httpx.AsyncClient) -> httpx.Request:
        """The request for one attempt (``Idempotency-Key`` is added by ``send``)."""

    def read_response(self, response: httpx.Response) -> Outcome:
        """Classify an answer; adapters refine this with their service's error codes."""
        return classify_status(response)

    async def send(self, record: DeliveryRecord, client: httpx.AsyncClient) -> Outcome:
        try:
            request = self.build_request(record, client)
        except Undeliverable as exc:
            return self.scrub(Dead(str(exc)))
        request.headers["Idempotency-Key"] = str(record["delivery_id"])
        answer = await self.exchange(request, client)
        if isinstance(answer, (Retry, Unknown)):
            return self.scrub(answer)
        return self.scrub(self.read_response(answer))

    async def exchange(
        self, request: httpx.Request, client: httpx.AsyncClient
    ) -> httpx.Response | Retry | Unknown:
        """Send ``request`` and read the answer, at most :data:`RESPONSE_LIMIT` bytes of its
        body (httpx errors never leave the adapter).

        ``delivery.timeout`` bounds the whole exchange, connecting, sending and reading
        together (httpx's own timeout bounds each read, which a server sending a byte a
        second never exceeds). A failure before the request was wholly written (no
        connection, a refused or failed write, no free connection) is a Retry: the service
        cannot have acted on it. A failure after (a read timeout, the connection lost before
        or during the answer, the whole deadline passed) is Unknown: it may have.
        """
        deadline = self.config.delivery.timeout.total_seconds()
        try:
            async with asyncio.timeout(deadline):
                response = await client.send(request, stream=True)
                try:
                    body = await read_bounded(response, RESPONSE_LIMIT)
                finally:
                    await response.aclose()
        except TimeoutError:
            return Unknown(f"timeout: no whole answer within {deadline:g}s")
        except NOT_SENT as exc:
            if isinstance(exc, httpx.TimeoutException):
                return Retry(f"timeout: {type(exc).__name__} (not sent)")
            return Retry(f"connection error: {type(exc).__name__}: {exc}")
        except httpx.TimeoutException as exc:
            return Unknown(f"timeout after sending: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return Unknown(f"connection lost after sending: {type(exc).__name__}: {exc}")
        return bounded_response(response, body)


RESPONSE_LIMIT = 64 * 1024
"""How much of a provider's answer is read: more than any service's answer to one send
(and than the 500 characters a reason keeps); the rest is never read into memory."""


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """The first ``limit`` bytes of a streamed response's (decoded) body; the rest is left
    unread."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk[: limit - size])
        size += len(chunks[-1])
        if size >= limit:
            break
    return b"".join(chunks)


_UNBOUND_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def bounded_response(response: httpx.Response, body: bytes) -> httpx.Response:
    """``response`` with ``body`` (already decoded, maybe cut) as its whole content."""
    headers = [
        (k, v) for k, v in response.headers.multi_items() if k.lower() not in _UNBOUND_HEADERS
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request
    )


# httpx errors raised before the request was wholly written: the service never had it
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)
RETRYABLE_STATUS = frozenset({408, 425, 429})


def classify_status(response: httpx.Response, message_id: str | None = None) -> Outcome:
    """The contract's rule: 2xx sent; 408, 425, 429 and 5xx retry; anything else dead."""
    status = response.status_code
    if 200 <= status < 300:
        return Sent(message_id)
    return classify_failure(response, f"HTTP {status}: {response_excerpt(response)}")


def classify_failure(
    response: httpx.Response, reason: str, *, retry: bool = False, unsubscribe: str | None = None
) -> Outcome:
    """A refused request: Dead with ``unsubscribe`` when the service named an address that
    must not be used again; Retry when ``retry`` (the service's own code says transient) or the
    status does (408, 425, 429, 5xx, honouring Retry-After); else Dead."""
    if unsubscribe:
        return Dead(reason, unsubscribe=unsubscribe)
    status = response.status_code
    if retry or status in RETRYABLE_STATUS or status >= 500:
        return retry_with(reason, response.headers.get("Retry-After"))
    return Dead(reason)


def retry_with(reason: str, retry_after: str | None) -> Retry:
    """A Retry carrying a ``Retry-After`` header's wish: seconds (``retry_after``), or an
    HTTP date as an instant (``retry_at``), which dispatch measures from its own T."""
    value = (retry_after or "").strip()
    if value.isdigit():
        return Retry(reason, retry_after=parse_retry_after(value))
    return Retry(reason, retry_at=retry_after_instant(value))


def coded_account_failure(
    response: httpx.Response,
    service: str,
    code: object,
    message: object,
    account_codes: Mapping[int, str],
    names: dict[int, str],
    refused: str,
) -> Paused | None:
    """Paused when a service's answer says the *account* cannot send: its error ``code`` is
    one of ``account_codes`` (code → what to fix), or an HTTP 401/403 came without a code
    (``refused``: which credentials to check). None when the answer is about the message."""
    if isinstance(code, int) and code in account_codes:
        reason = coded_reason(response, service, code, names, message)
        return Paused(f"{reason}; {account_codes[code]}")
    if response.status_code in (401, 403) and not code:
        return Paused(f"HTTP {response.status_code} from {service}: {refused}")
    return None


def coded_reason(
    response: httpx.Response, service: str, code: object, names: dict[int, str], message: object
) -> str:
    """``HTTP 422: Postmark 406 (inactive recipient): <message>``, or the raw answer when the
    service gave no numeric error code."""
    if isinstance(code, int):
        name = names.get(code, "error")
        return f"HTTP {response.status_code}: {service} {code} ({name}): {message or ''}"
    return f"HTTP {response.status_code}: {response_excerpt(response)}"


def response_json(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or ``{}`` when it is not one (proxies answer with HTML)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def response_excerpt(response: httpx.Response, limit: int = 500) -> str:
    """The provider's answer, short enough to store and show."""
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


RETRY_AFTER_LIMIT = 10 * 365 * 86400.0
"""The longest wait a Retry-After is read as (dispatch caps it by ``max_backoff`` anyway);
a longer one, e.g. ``99999999999999999999``, is read as this, never as an overflow."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from ``now`` (default: the real clock): delta-seconds or an
    HTTP date (RFC 9110 §10.2.3), at most :data:`RETRY_AFTER_LIMIT`; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        # digits only: int() reads any length exactly, float() of it never overflows here
        return float(min(int(value), int(RETRY_AFTER_LIMIT)))
    when = retry_after_instant(value)
    if when is None:
        return None
    current = now if now is not None else time.time()
    return min(max(0.0, when - current), RETRY_AFTER_LIMIT)


def retry_after_instant(value: str | None) -> float | None:
    """A Retry-After HTTP date as UTC epoch seconds; None when it is not one."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    stamp = when.timestamp()
    return stamp if math.isfinite(stamp) else None


def check_url(url: str) -> str:
    """Refuse plain http:// except to loopback hosts (secrets and personal data in transit)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return url
    if parts.scheme == "http":
        raise ValueError(f"{url!r}: plain http:// is only allowed to loopback hosts; use https://")
    raise ValueError(f"{url!r} is not an http(s) URL")


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1) — not a name that merely
    starts with ``127.``, which any DNS zone can point anywhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


ServiceURL = Annotated[str, AfterValidator(check_url)]
"""An option holding a service URL: https, or plain http only to a loopback host."""
