"""What every source type shares: the rows a shop object maps to, the batch one request
becomes, and the two ways a request is refused before anything is stored.

A mapping is a pure function from one shop object (a webhook body, one element of a REST
JSON array, one page entry of a sync) to rows in the import's field names (Part 1 of the
contract, plus ``voided_at``): a contact row and an event row, either of which may be None.
A row carries only the fields the shop object has: a field it leaves out keeps its stored
value (the import's rule), a field it sends as null clears it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from regard.errors import InputError, RegardError

Row = dict[str, Any]
Mapped = tuple[Row | None, Row | None]


class Unauthorized(RegardError):
    """The request's signature or token is wrong or missing (HTTP 401): nothing is read."""


class MalformedBody(InputError):
    """The body is not what the source type sends (HTTP 400): not JSON, not an object, a
    field of the wrong type."""


@dataclass
class Batch:
    """What one verified request asks for: contacts and events to upsert (contacts first),
    stored events to void (``(event id, instant)``), contact ids to forget. ``ignored``
    says why a request stores nothing on purpose (an unknown topic, a ping, a privacy
    request regard has nothing to do for); ``lenient``: an invalid optional field drops that
    field (a shop's webhook), instead of rejecting everything (the api)."""

    topic: str
    contacts: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    voids: list[tuple[str, int]] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)
    ignored: str | None = None
    lenient: bool = True

    def add(self, mapped: Mapped) -> None:
        """Add one mapped (contact, event) pair."""
        contact, event = mapped
        if contact is not None:
            self.contacts.append(contact)
        if event is not None:
            self.events.append(event)


@dataclass(frozen=True)
class Topics:
    """A shop's webhook topics: those whose body is a customer, those whose body is an
    order, and every topic regard reads (``known``), with the shop's mappings."""

    customers: frozenset[str]
    orders: frozenset[str]
    known: frozenset[str]
    customer_row: Callable[[dict[str, Any]], Row]
    order_rows: Callable[[dict[str, Any]], Mapped]
    no_rows: str  # why an order topic whose body maps to nothing stores nothing

    def receive(self, topic: str, body: bytes) -> tuple[Batch, dict[str, Any] | None]:
        """The batch of one verified webhook of ``topic``: ignored for an unknown topic, the
        customer's or order's rows for those topics. For another known topic the decoded
        body comes too (the shop's own topics: consent, erasure, deletion), else None.
        Raises MalformedBody."""
        batch = Batch(topic=topic or "(none)")
        if topic not in self.known:
            batch.ignored = "unknown topic"
            return batch, None
        data = json_object(body)
        if topic in self.customers:
            batch.contacts.append(self.customer_row(data))
        elif topic in self.orders:
            mapped = self.order_rows(data)
            if mapped == (None, None):
                batch.ignored = self.no_rows
            batch.add(mapped)
        else:
            return batch, data
        return batch, None


def hmac_base64(secret: str, body: bytes) -> str:
    """base64 of HMAC-SHA256 of ``body`` keyed with ``secret`` (Shopify's and WooCommerce's
    webhook signature)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(secret: str, body: bytes, given: str | None) -> bool:
    """Whether ``given`` is the base64 HMAC-SHA256 of the raw ``body``, compared in
    constant time."""
    if not given:
        return False
    return hmac.compare_digest(hmac_base64(secret, body).encode(), given.strip().encode())


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; anything else is MalformedBody."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"the body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedBody("the body must be a JSON object")
    return value


def obj(value: Any, where: str) -> dict[str, Any]:
    """``value`` as an object (None: empty); anything else is MalformedBody."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedBody(f"{where} must be an object")
    return value


def objects(value: Any, where: str) -> list[dict[str, Any]]:
    """``value`` as a list of objects (None: empty); anything else is MalformedBody."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedBody(f"{where} must be a list of objects")
    return value


def identifier(value: Any, where: str) -> str:
    """A shop id (a JSON number or string) as text; missing or of another type is
    MalformedBody."""
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value).strip() == "":
        raise MalformedBody(f"{where} must be an id (a number or a string)")
    return str(value).strip()


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A request header, by its name in any case."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def counter(value: Any, *, whole: bool) -> Any:
    """A shop's lifetime counter (``8``, ``"129.80"``) as a JSON number: an int when
    ``whole``, else a float of the decimal; None for an empty one, text that is no number
    as it is (the import keeps it as written)."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if whole and number == number.to_integral_value():
        return int(number)
    return float(number)
