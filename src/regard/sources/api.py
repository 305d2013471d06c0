"""``type = "api"``: regard's own JSON, for shops and systems without a connector.

``POST /ingest/<name>`` with ``Authorization: Bearer <secret>`` and the body
``{"contacts": [...], "events": [...]}``: records with the fields of ``regard import``
(contract Part 1, plus ``voided_at``), contacts first, all or nothing. A record that fails
validation rejects the request (HTTP 422) with one line per problem, ``events[2].occurred_at:
…`` (indexes 0-based); nothing is stored. Either list may be left out.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from regard.sources.base import Batch, MalformedBody, header, json_object

__all__ = ["ApiSource"]


class ApiSource:
    """Bearer-token authenticated batches of contacts and events."""

    type = "api"

    def verify(self, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether ``Authorization`` is ``Bearer <secret>`` (compared in constant time)."""
        given = header(headers, "Authorization") or ""
        scheme, _, token = given.strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), secret.encode())

    def receive(self, headers: Mapping[str, str], body: bytes, now: int) -> Batch:
        """The body's records, unchecked (the store validates them). Raises MalformedBody."""
        data = json_object(body)
        unknown = sorted(set(data) - {"contacts", "events"})
        if unknown:
            raise MalformedBody(
                f'unknown key {unknown[0]!r}: the body is {{"contacts": [...], "events": [...]}}'
            )
        batch = Batch(topic="api", lenient=False)
        batch.contacts = _records(data, "contacts")
        batch.events = _records(data, "events")
        return batch


def _records(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedBody(f"{key} must be a list of objects")
    return value
