"""A tiny store built by hand for the report's tests: contacts, events and deliveries
inserted with plain SQL, so each figure can be checked against a number worked out on paper."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from regard.campaigns.model import Campaign
from regard.store import Store, open_store


def at(text: str) -> int:
    """``"2026-04-10"`` or ``"2026-04-10T12:00"`` (UTC) → epoch seconds."""
    value = datetime.fromisoformat(text)
    return int(value.replace(tzinfo=UTC).timestamp())


def instant(text: str) -> datetime:
    """``"2026-04-10"`` (UTC) → an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def new_store(path: Path) -> Store:
    return open_store(path)


def add_contact(store: Store, contact_id: str, **fields: Any) -> None:
    row = {"id": contact_id, "created_at": at("2025-01-01"), "updated_at": at("2025-01-01")}
    row.update(fields)
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    with store.write() as conn:
        conn.execute(f"INSERT INTO contacts ({cols}) VALUES ({marks})", tuple(row.values()))


def add_event(
    store: Store,
    event_id: str,
    contact_id: str,
    when: str,
    *,
    type: str = "order",
    amount: float | None = None,
) -> None:
    with store.write() as conn:
        conn.execute(
            "INSERT INTO events (id, contact_id, type, occurred_at, amount, imported_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, contact_id, type, at(when), amount, at("2025-01-01")),
        )


def add_delivery(
    store: Store,
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
    occasion = occasion or f"o:{contact_id}:{created}"
    with store.write() as conn:
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
                at(created),
                at(created),
                at(sent) if sent else None,
                at(created),
            ),
        )


def campaign(campaign_id: str, **data: Any) -> Campaign:
    base: dict[str, Any] = {
        "channel": "email",
        "provider": "outbox",
        "template": "t",
        "trigger": {"type": "inactivity", "after": "60d"},
    }
    base.update(data)
    model = Campaign.model_validate(base)
    model._id = campaign_id
    return model
