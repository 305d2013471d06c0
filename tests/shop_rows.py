"""Small shops built by hand for the engine's and the report's tests: contacts, events and
deliveries inserted as rows into a real store, so each decision and each figure can be
checked against what was worked out on paper.

Every builder takes the store (and writes in a transaction of its own) or an open
connection (and writes in the caller's transaction)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from regard.campaigns.model import Campaign
from regard.store import Store
from regard.times import Instant, parse_instant, to_epoch, zone

UTC = zone("UTC")
Target = Store | sqlite3.Connection


def epoch(text: str) -> Instant:
    """``"2026-03-01T10:00:00Z"``, ``"2026-04-10"`` (naive = UTC) → epoch seconds."""
    return to_epoch(parse_instant(text, UTC))


instant = epoch  # the Instant a tick takes


def moment(text: str) -> datetime:
    """``"2026-04-10"`` (naive = UTC) → an aware datetime (a report's period)."""
    return parse_instant(text, UTC)


@contextmanager
def writing(target: Target) -> Iterator[sqlite3.Connection]:
    if isinstance(target, Store):
        with target.write() as conn:
            yield conn
    else:
        yield target


def add_contact(target: Target, contact_id: str, **fields: Any) -> None:
    """A contact with an e-mail address and e-mail consent unless told otherwise."""
    row: dict[str, Any] = {
        "id": contact_id,
        "email": f"{contact_id}@example.com",
        "consent_email": 1,
        "created_at": 0,
        "updated_at": 0,
    }
    attributes = fields.pop("attributes", None)
    if isinstance(fields.get("signup_at"), str):
        fields["signup_at"] = epoch(fields["signup_at"])
    if "tags" in fields:
        fields["tags"] = json.dumps(fields["tags"])
    row.update(fields)
    if attributes is not None:
        row["attributes"] = json.dumps(attributes)
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    with writing(target) as conn:
        conn.execute(f"INSERT INTO contacts ({columns}) VALUES ({marks})", list(row.values()))


def add_event(
    target: Target,
    event_id: str,
    contact_id: str,
    occurred_at: str | int,
    type: str = "order",
    amount: float | None = None,
    **properties: Any,
) -> None:
    """An event (an order unless told otherwise); the same id again replaces it."""
    when = epoch(occurred_at) if isinstance(occurred_at, str) else occurred_at
    with writing(target) as conn:
        conn.execute(
            "INSERT INTO events (id, contact_id, type, occurred_at, amount, properties, imported_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 0)"
            " ON CONFLICT (id) DO UPDATE SET occurred_at = excluded.occurred_at,"
            " amount = excluded.amount, type = excluded.type, properties = excluded.properties",
            (event_id, contact_id, type, when, amount, json.dumps(properties)),
        )


def add_delivery(
    target: Target,
    campaign: str,
    contact_id: str,
    state: str,
    created: str,
    *,
    sent: str | None = None,
    reason: str | None = None,
    provider: str = "outbox",
    occasion: str | None = None,
) -> None:
    """A delivery decided at ``created`` (and sent at ``sent``), as a tick would record it."""
    occasion = occasion or f"o:{contact_id}:{created}"
    with writing(target) as conn:
        conn.execute(
            """INSERT INTO deliveries (id, campaign, contact_id, occasion, channel, provider,
                 state, reason, due_at, created_at, sent_at, updated_at)
               VALUES (?, ?, ?, ?, 'email', ?, ?, ?, ?, ?, ?, ?)""",
            (
                f"d_{campaign}_{contact_id}_{occasion}",
                campaign,
                contact_id,
                occasion,
                provider,
                state,
                reason,
                epoch(created),
                epoch(created),
                epoch(sent) if sent else None,
                epoch(created),
            ),
        )


def refresh_facts(target: Target) -> None:
    """The stored "now" facts from all events, as an import maintains them."""
    with writing(target) as conn:
        conn.execute(
            """
            UPDATE contacts SET
              first_order_at = (SELECT min(occurred_at) FROM events e WHERE e.contact_id = contacts.id AND e.type = 'order'),
              last_order_at = (SELECT max(occurred_at) FROM events e WHERE e.contact_id = contacts.id AND e.type = 'order'),
              order_count = (SELECT count(*) FROM events e WHERE e.contact_id = contacts.id AND e.type = 'order'),
              total_spent = (SELECT coalesce(sum(amount), 0) FROM events e WHERE e.contact_id = contacts.id AND e.type = 'order'),
              last_event_at = (SELECT max(occurred_at) FROM events e WHERE e.contact_id = contacts.id)
            """
        )


def campaign(campaign_id: str, trigger: dict[str, Any] | None = None, **fields: Any) -> Campaign:
    """A validated campaign with its id: e-mail through the outbox, a 60-day inactivity
    trigger, unless told otherwise."""
    data: dict[str, Any] = {
        "channel": "email",
        "provider": "outbox",
        "template": "thank-you",
        "trigger": trigger or {"type": "inactivity", "after": "60d"},
    }
    data.update(fields)
    model = Campaign.model_validate(data)
    model._id = campaign_id
    return model


def deliveries(target: Target) -> list[dict[str, Any]]:
    """Every delivery's decision, in a stable order."""
    conn = target.conn if isinstance(target, Store) else target
    return [
        dict(r)
        for r in conn.execute(
            "SELECT campaign, contact_id, occasion, state, reason, due_at, not_before"
            " FROM deliveries ORDER BY campaign, contact_id, occasion"
        )
    ]
