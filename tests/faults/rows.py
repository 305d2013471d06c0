"""Pending deliveries written straight into a store, as a tick would leave them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from regard.engine import delivery_id
from regard.store import Store


def add_pending(
    store: Store,
    contacts: list[str],
    *,
    campaign: str = "thanks",
    provider: str = "sink",
    due_at: int = 1_780_000_000,
    priority: int = 0,
    root: Path | None = None,
    **columns: Any,
) -> list[str]:
    """One pending e-mail delivery per contact; returns their ids in order. In the workspace
    ``root`` (default: beside a store file), the campaign gets a file too when it has none
    (:func:`campaign_file`): dispatch cancels the deliveries of a campaign whose file was
    removed."""
    if root is None and str(store.path) != ":memory:":
        root = store.path.parent
    if root is not None and not (root / "campaigns" / f"{campaign}.toml").exists():
        campaign_file(root, campaign, provider, str(columns.get("channel", "email")))
    ids = []
    with store.write() as conn:
        for contact in contacts:
            did = delivery_id(campaign, contact, "o1", due_at)
            message = {
                "to": f"{contact}@example.org",
                "subject": "Danke!",
                "text": f"Hallo {contact}",
                "html": None,
                "card": None,
            }
            row = {
                "id": did,
                "campaign": campaign,
                "contact_id": contact,
                "occasion": "o1",
                "channel": "email",
                "provider": provider,
                "state": "pending",
                "priority": priority,
                "due_at": due_at,
                "created_at": due_at,
                "not_before": due_at,
                "message": json.dumps(message),
                "updated_at": due_at,
                **columns,
            }
            names = ", ".join(row)
            marks = ", ".join(f":{k}" for k in row)
            conn.execute(f"INSERT INTO deliveries ({names}) VALUES ({marks})", row)
            ids.append(did)
    return ids


# an attempt whose answer never came whole (providers/base.py, Unknown): the service may
# have acted on it (a 200 sent later than the client's timeout, as on a loaded machine), so
# the next attempt sends again under the same key
UNKNOWN_OUTCOME = (
    "attempt %: timeout: no whole answer%",
    "attempt %: timeout after sending%",
    "attempt %: connection lost after sending%",
)


def unknown_outcomes(store: Store) -> Counter[str]:
    """Delivery id → how many of its attempts ended without a whole answer."""
    where = " OR ".join("detail LIKE ?" for _ in UNKNOWN_OUTCOME)
    rows = store.conn.execute(
        f"SELECT delivery_id FROM delivery_log WHERE {where}", UNKNOWN_OUTCOME
    )
    return Counter(str(r[0]) for r in rows)


def states(store: Store) -> dict[str, str]:
    """Delivery id → state."""
    return {r[0]: r[1] for r in store.conn.execute("SELECT id, state FROM deliveries")}


def campaign_file(
    root: Path, name: str = "thanks", provider: str = "sink", channel: str = "email"
) -> None:
    """A campaign file (and its template) for deliveries written straight into a store: a
    pending delivery whose campaign has no file is cancelled at send time, as its
    campaign was removed. Its trigger never fires (no event has its type)."""
    (root / "campaigns").mkdir(exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)
    (root / "campaigns" / f"{name}.toml").write_text(
        f'channel = "{channel}"\nprovider = "{provider}"\ntemplate = "{name}"\n'
        '[trigger]\ntype = "event"\nevent = "no-event-has-this-type"\n',
        encoding="utf-8",
    )
    (root / "templates" / f"{name}.j2").write_text(
        "{% block subject %}Danke{% endblock %}{% block text %}Danke!{% endblock %}",
        encoding="utf-8",
    )


def thanks_campaign(
    root: Path,
    *,
    channel: str = "webhook",
    provider: str = "sink",
    template: str = "{% block text %}Danke, {{ contact.id }}!{% endblock %}\n",
    lateness: str | None = "30d",
) -> None:
    """The fault suite's thank-you: a post_purchase campaign ``thanks`` on ``provider``
    (its ``max_lateness`` unless None) and its template text, in ROOT's campaigns/ and
    templates/ (made here)."""
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    late = f'max_lateness = "{lateness}"\n' if lateness is not None else ""
    (root / "campaigns" / "thanks.toml").write_text(
        f'channel = "{channel}"\nprovider = "{provider}"\ntemplate = "thanks"\n{late}'
        '[trigger]\ntype = "post_purchase"\n',
        encoding="utf-8",
    )
    (root / "templates" / "thanks.j2").write_text(template, encoding="utf-8")
