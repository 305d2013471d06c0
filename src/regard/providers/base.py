"""The contract every provider adapter keeps, and the registry that finds them by ``type``.

An adapter turns one delivery record into one attempt and says how it went: ``Sent``,
``Retry`` (try again later, the request surely did not get through), ``Dead`` (permanent),
``Unknown`` (the request may have reached the service, no answer came), ``Unconfirmed``
(unknown, and the service can neither de-duplicate nor be asked: never sent again by
itself) or ``Paused`` (the service says the *account* cannot send). It never raises for a
failed delivery and never lets an httpx error escape: the dispatcher only ever sees an
``Outcome``.

What a service offers when an outcome is unknown is declared on the adapter class as
``on_unknown`` (:class:`OnUnknown`), and :meth:`Provider.attempt` acts on it before it
sends again: a service that de-duplicates by ``Idempotency-Key`` gets the request again;
one that can be asked is asked (:meth:`Provider.lookup`) and the delivery is ``sent``
without a new request when the service has it; for one that can do neither the delivery
becomes ``unconfirmed``.
"""

from __future__ import annotations

import asyncio
import builtins
import email.utils
import ipaddress
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, SecretStr

from regard.errors import ProviderError
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

if TYPE_CHECKING:
    from regard.config import Config, ProviderTable


@dataclass(frozen=True)
class Sent:
    """The provider accepted the message; ``message_id`` is its own id for it, if any."""

    message_id: str | None = None


@dataclass(frozen=True)
class Retry:
    """A transient failure: try again, not before ``retry_after`` seconds after the run's
    instant, or not before the instant ``retry_at`` (UTC epoch seconds, a Retry-After HTTP
    date), if the provider said. Dispatch caps either by ``delivery.max_backoff``."""

    reason: str
    retry_after: float | None = None
    retry_at: float | None = None


@dataclass(frozen=True)
class Dead:
    """A permanent failure. ``unsubscribe``: the provider says this address must not be used
    again (bounced, inactive, replied STOP); regard records a suppression for it. ``pause``:
    the answer also says the endpoint itself is unusable (a webhook's 410 Gone, 401, 403):
    the delivery is dead as the contract wants, and the provider is paused for the rest of
    the run, with this as what to fix."""

    reason: str
    unsubscribe: str | None = None
    pause: str | None = None


@dataclass(frozen=True)
class Unknown:
    """The request may have reached the service, but no answer came (a timeout after it
    was sent, the connection lost mid-answer). The next attempt asks the service first
    where it can be asked (``OnUnknown.LOOKUP``)."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Unconfirmed:
    """The outcome is unknown and the service can neither de-duplicate nor be asked: the
    delivery becomes ``unconfirmed`` and is never sent again by itself."""

    reason: str


@dataclass(frozen=True)
class Paused:
    """The service says the *account* cannot send (bad credentials, no credit, sender not
    confirmed, the endpoint gone): not this delivery's fault. The provider is paused for
    the run; its deliveries stay ``pending``, the attempt not counted. ``reason`` says what
    the service said and what to fix."""

    reason: str


Outcome = Sent | Retry | Dead | Unknown | Unconfirmed | Paused


class OnUnknown(StrEnum):
    """What a service offers when an attempt's outcome is unknown (docs/delivery.md)."""

    DEDUPLICATES = "deduplicates"  # by Idempotency-Key (webhook receivers, the file outbox)
    LOOKUP = "lookup"  # can be asked whether it has the message (postmark, twilio)
    NEITHER = "neither"  # neither (handwrytten): the delivery becomes unconfirmed


class Undeliverable(Exception):
    """Raised by ``build_request`` when a record cannot be turned into a request for this
    service (no card design it knows, no sender number); ``send`` records it as Dead."""


_REGISTRY: dict[str, type[Provider]] = {}


class Provider(ABC):
    """One configured ``[providers.NAME]`` table, ready to send.

    Subclasses set ``type`` (what users write in config), ``channels`` (what they can
    deliver) and ``Options`` (a StrictModel of their own keys), and implement ``send``.
    """

    type: ClassVar[str]
    channels: ClassVar[frozenset[str]]
    Options: ClassVar[builtins.type[StrictModel]] = StrictModel
    card_max_chars: ClassVar[int | None] = None  # longest card text the service accepts
    # what the service offers when an outcome is unknown; the safe default is neither
    on_unknown: ClassVar[OnUnknown] = OnUnknown.NEITHER
    # an SMS service that texts phones: a fixed-line number is no address for it (file and
    # webhook pass any number on, to whatever texts or calls it)
    sms_mobile_only: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("type")
        if kind is None:
            return  # an abstract intermediate class
        if kind in _REGISTRY and _REGISTRY[kind] is not cls:
            raise ProviderError(
                f"two provider adapters claim type {kind!r}: "
                f"{_REGISTRY[kind].__qualname__} and {cls.__qualname__}"
            )
        _REGISTRY[kind] = cls

    def __init__(self, name: str, table: ProviderTable, config: Config) -> None:
        self.name = name
        self.table = table
        self.config = config
        self.options: Any = self.Options.model_validate(table.options)

    @abstractmethod
    async def send(self, record: DeliveryRecord, client: httpx.AsyncClient) -> Outcome:
        """Make one attempt to deliver ``record`` (the delivery record of the contract).

        ``record["delivery_id"]`` is the idempotency key. Must not raise for delivery
        failures: classify them as Retry or Dead.
        """

    async def attempt(
        self,
        record: DeliveryRecord,
        client: httpx.AsyncClient,
        *,
        uncertain: bool = False,
        since: int | None = None,
    ) -> Outcome:
        """One attempt as the contract wants it when services do not all de-duplicate.

        ``uncertain``: an earlier attempt may have reached the service (it timed out after
        sending, or its run was killed mid-send); ``since``: the real time of the first
        attempt. A service that de-duplicates gets the request again; one that can be asked
        is asked first (found: ``Sent`` without a new request; lookup failed: ``Unknown``
        again, nothing sent); for one that can do neither the outcome is ``Unconfirmed``
        without a request. An ``Unknown`` answer of this attempt becomes ``Retry`` (the
        service de-duplicates), stays ``Unknown`` (it can be asked next time) or becomes
        ``Unconfirmed``.
        """
        if uncertain and self.on_unknown is OnUnknown.NEITHER:
            return Unconfirmed(
                "outcome unknown: an earlier attempt may have reached the service, which "
                "can neither de-duplicate nor be asked; check with the service, then "
                "`regard deliveries confirm` or `regard deliveries retry`"
            )
        if uncertain and self.on_unknown is OnUnknown.LOOKUP:
            found = await self.lookup(record, client, since)
            if isinstance(found, Sent):
                return found
            if found is not None:
                return self.scrub(found)
        outcome = await self.send(record, client)
        if not isinstance(outcome, Unknown):
            return outcome
        if self.on_unknown is OnUnknown.DEDUPLICATES:
            return Retry(outcome.reason, outcome.retry_after)
        if self.on_unknown is OnUnknown.NEITHER:
            return Unconfirmed(
                f"outcome unknown ({outcome.reason}); the service can neither de-duplicate "
                "nor be asked: check with it, then `regard deliveries confirm` or "
                "`regard deliveries retry`"
            )
        return outcome

    async def lookup(
        self, record: DeliveryRecord, client: httpx.AsyncClient, since: int | None
    ) -> Sent | Unknown | Paused | None:
        """Ask the service whether it has ``record``'s message (``OnUnknown.LOOKUP``
        adapters implement it): ``Sent`` with its id when it has, None when it has not
        (send it again), ``Unknown`` when the question got no answer (nothing is sent)."""
        return None

    def retry_schedule(self) -> tuple[int, ...] | None:
        """The wait in seconds after each failed attempt, when the service has a schedule of
        its own (the webhook provider's); None: ``[delivery]`` backoff and attempts."""
        return None

    async def aclose(self) -> None:  # noqa: B027  (optional hook)
        """Release what the adapter holds (files, sockets). Called once after dispatch."""

    def secrets(self) -> list[str]:
        """Values that must never appear in a reason, a log or the store, in every form in
        which a service may echo them: every SecretStr option of the adapter (tokens, keys,
        webhook secrets, also as values of a table), every value the provider's table took
        from the environment, each word of those (the token in ``"Bearer <token>"``), and
        what the adapter derives from them (:meth:`derived_secrets`)."""
        found: list[str] = []
        for field in type(self.options).model_fields:
            value = getattr(self.options, field)
            values = value.values() if isinstance(value, dict) else [value]
            found += [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
        # (a value this short is no secret, and scrubbing it would garble reasons)
        found += [v for v in self.config.environment_values(self.name) if len(v) >= 4]
        words = [w for s in found for w in s.split() if len(w) >= _SECRET_WORD and w != s]
        return [*found, *words, *self.derived_secrets()]

    def derived_secrets(self) -> list[str]:
        """Forms of the secrets the adapter builds itself (a base64 Basic credential)."""
        return []

    def scrub(self, outcome: Outcome) -> Outcome:
        """The outcome with every secret replaced by ``***`` (providers may echo tokens)."""
        if isinstance(outcome, Sent):
            return outcome
        reason = scrub_text(outcome.reason, self.secrets())
        if reason == outcome.reason:
            return outcome
        return replace(outcome, reason=reason)


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


# a word of a secret value shorter than this is not scrubbed on its own ("Bearer", "Basic")
_SECRET_WORD = 8


def scrub_text(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (longest first, empty ones ignored) replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


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


def adapter_class(kind: str) -> type[Provider]:
    """The adapter class registered for ``type = kind`` (the built-in adapters register
    when :mod:`regard.providers` is imported, which is where callers get this from)."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ProviderError(f"unknown provider type {kind!r} (known: {known})") from None


def registered_types() -> dict[str, type[Provider]]:
    """Every registered adapter class by its ``type``."""
    return dict(_REGISTRY)
