"""The delivery record: what providers receive, the outbox holds and webhooks post."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from regard.times import iso

RECORD_FIELDS = (
    "delivery_id", "campaign", "contact_id", "occasion", "channel",
    "to", "subject", "text", "html", "card", "created_at",
)  # fmt: skip
MESSAGE_FIELDS = ("to", "subject", "text", "html", "card")


def delivery_record(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """A ``deliveries`` row → the delivery record of the contract.

    ``message`` holds the part rendered at enqueue (``{to, subject, text, html, card}``);
    the record is that plus the row's ids. A missing part is ``null``, never invented.
    """
    message = json.loads(row["message"] or "{}")
    if not isinstance(message, dict):
        raise ValueError(f"delivery {row['id']}: message is not a JSON object")
    record: dict[str, Any] = {
        "delivery_id": row["id"],
        "campaign": row["campaign"],
        "contact_id": row["contact_id"],
        "occasion": row["occasion"],
        "channel": row["channel"],
    }
    for key in MESSAGE_FIELDS:
        record[key] = message.get(key)
    record["created_at"] = iso(int(row["created_at"]))
    return record
