"""The store's own contacts and their latest matching events: what ``regard check``
renders each campaign against, beside its made-up sample contacts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regard.store.contacts import contact_from_row
from regard.store.filters import audience_condition, event_condition
from regard.store.readonly import READ_ERRORS, read_only
from regard.times import Instant


@dataclass(frozen=True)
class RealSample:
    """One of the store's own contacts and its latest matching event, for ``check``."""

    contact: dict[str, Any]
    event: dict[str, Any] | None  # the stored row (epoch instants, properties as JSON text)


def read_real_sample(
    path: Path | str,
    *,
    limit: int = 20,
    event_type: str | None = None,
    where: Mapping[str, Any] | None = None,
    audience: Mapping[str, Any] | None = None,
    at: Instant,
    tz: str,
) -> list[RealSample]:
    """Up to ``limit`` contacts of the store at ``path`` with their latest event of
    ``event_type`` that matches ``where`` (a trigger's filter), most recent first: the
    messages a campaign would really render. Without ``event_type``, the contacts most
    recently active, each with no event. Only contacts in ``audience`` (derived facts as of
    ``at``) are taken.

    Opens the file read-only, like :func:`read_contact_sample`; an empty list when there is
    no store file or it cannot be read.
    """
    try:
        conn = read_only(path)
    except READ_ERRORS:
        return []
    if conn is None:
        return []
    try:
        who, who_params = audience_condition(audience or {}, at, tz)
        if event_type is None:
            contacts = conn.execute(
                f"SELECT c.* FROM contacts c WHERE {who} "
                "ORDER BY c.last_event_at IS NULL, c.last_event_at DESC, c.id LIMIT ?",
                [*who_params, limit],
            ).fetchall()
            return [RealSample(contact_from_row(row), None) for row in contacts]
        what, what_params = event_condition(where or {}, "e", tz)
        # newest first through the (type, occurred_at) index, read only as far as needed:
        # the first event met of each contact is its latest matching one
        rows = conn.execute(
            f"""
            SELECT e.*, c.id AS c_id FROM events e JOIN contacts c ON c.id = e.contact_id
            WHERE e.type = ? AND e.occurred_at <= ? AND ({what}) AND ({who})
            ORDER BY e.occurred_at DESC, e.id DESC
            """,
            [event_type, int(at), *what_params, *who_params],
        )
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["contact_id"] not in latest:
                event = dict(row)
                event.pop("c_id", None)
                latest[row["contact_id"]] = event
                if len(latest) >= limit:
                    break
        rows.close()
        out = []
        for contact_id, event in latest.items():
            found = conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
            if found is not None:
                out.append(RealSample(contact_from_row(found), event))
        return out
    except READ_ERRORS:
        return []
    finally:
        conn.close()
