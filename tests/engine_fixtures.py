"""Building small shops for engine tests: rows straight into a real SQLite store."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from regard.campaigns.model import Campaign
from regard.times import Instant, parse_instant, to_epoch, zone

UTC = zone("UTC")


def epoch(text: str) -> int:
    """``"2026-03-01T10:00:00Z"`` (naive = UTC) → epoch seconds."""
    return to_epoch(parse_instant(text, UTC))


def instant(text: str) -> Instant:
    """``"2026-03-01T10:00:00Z"`` (naive = UTC) → the Instant a tick takes."""
    return to_epoch(parse_instant(text, UTC))


def add_contact(conn: sqlite3.Connection, contact_id: str, **fields: Any) -> None:
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
    conn.execute(f"INSERT INTO contacts ({columns}) VALUES ({marks})", list(row.values()))


def add_event(
    conn: sqlite3.Connection,
    event_id: str,
    contact_id: str,
    occurred_at: str | int,
    type: str = "order",
    amount: float | None = None,
    **properties: Any,
) -> None:
    when = epoch(occurred_at) if isinstance(occurred_at, str) else occurred_at
    conn.execute(
        "INSERT INTO events (id, contact_id, type, occurred_at, amount, properties, imported_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 0)"
        " ON CONFLICT (id) DO UPDATE SET occurred_at = excluded.occurred_at,"
        " amount = excluded.amount, type = excluded.type, properties = excluded.properties",
        (event_id, contact_id, type, when, amount, json.dumps(properties)),
    )


def refresh_facts(conn: sqlite3.Connection) -> None:
    """The stored "now" facts from all events, as an import maintains them."""
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


def campaign(campaign_id: str, trigger: dict[str, Any], **fields: Any) -> Campaign:
    """A validated campaign with its id, e-mail through the outbox unless told otherwise."""
    data: dict[str, Any] = {
        "channel": "email",
        "provider": "outbox",
        "template": "thank-you",
        "trigger": trigger,
    }
    data.update(fields)
    model = Campaign.model_validate(data)
    model._id = campaign_id
    return model


def deliveries(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in conn.execute(
            "SELECT campaign, contact_id, occasion, state, reason, due_at, not_before"
            " FROM deliveries ORDER BY campaign, contact_id, occasion"
        )
    ]
