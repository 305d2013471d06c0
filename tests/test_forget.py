from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from conftest import Workspace
from faults.rows import campaign_file
from import_helpers import rows

EMAIL = "juergen.mueller@example-shop.de"
NAME = "Müllerschön"
PHONE = "+491711234567"


def delivery_id(campaign: str, contact_id: str, occasion: str) -> str:
    parts = (campaign, contact_id, occasion)
    key = "".join(f"{len(p.encode())}:{p}," for p in parts).encode()
    return "d_" + hashlib.sha256(key).hexdigest()[:32]


def enqueue(
    db: Path,
    contact_id: str,
    occasion: str,
    *,
    to: str = EMAIL,
    name: str = NAME,
    not_before: int | None = None,
) -> None:
    """A pending delivery as the engine records it, with its rendered message."""
    message = {
        "to": to,
        "subject": f"Danke, {name}!",
        "text": f"Hallo {name}, danke für Ihre Bestellung.",
        "html": None,
        "card": None,
    }
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO deliveries (id, campaign, contact_id, occasion, channel, provider, state,"
            " due_at, created_at, not_before, message, updated_at)"
            " VALUES (?, 'thank-you', ?, ?, 'email', 'outbox', 'pending', 1767225600,"
            " 1767225600, ?, ?, 1767225600)",
            (
                delivery_id("thank-you", contact_id, occasion),
                contact_id,
                occasion,
                not_before,
                json.dumps(message, ensure_ascii=False),
            ),
        )
    conn.close()


def raw_bytes(workspace: Workspace) -> bytes:
    data = b""
    for path in [
        workspace.root / "regard.db",
        workspace.root / "regard.db-wal",
        workspace.root / "outbox" / "messages.jsonl",
    ]:
        if path.exists():
            data += path.read_bytes()
    return data


def test_forget_leaves_no_byte_of_the_contact_behind(workspace: Workspace) -> None:
    db = workspace.root / "regard.db"
    contacts = workspace.write(
        "contacts.csv",
        "id,email,phone,first_name,last_name,street,consent_email,note\n"
        f"1042,{EMAIL},{PHONE},Jürgen,{NAME},Lindenstraße 5,yes,Lieblingsblume Rose\n"
        "7,anna@example.de,,Anna,Alt,,yes,\n",
    )
    events = workspace.write(
        "events.jsonl",
        json.dumps(
            {
                "id": "o1",
                "contact_id": "1042",
                "occurred_at": "2026-01-01T10:00:00Z",
                "amount": 49.9,
                "properties": {"gift_message": f"Für {NAME}"},
            },
            ensure_ascii=False,
        )
        + "\n"
        + '{"id": "o2", "contact_id": "7", "occurred_at": "2026-01-02T10:00:00Z", "amount": 10}\n',
    )
    campaign_file(workspace.root, "thank-you", provider="outbox")
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0
    enqueue(db, "1042", "o1")
    enqueue(db, "7", "o2", to="anna@example.de", name="Anna Alt")
    run = workspace.cli("run", "--at", "2026-01-05T10:00:00")
    assert run.exit_code == 0, run.output
    assert len(workspace.outbox()) == 2
    enqueue(db, "1042", "later", not_before=2_000_000_000)  # not sent yet
    assert workspace.cli("contacts", "unsubscribe", "1042", "--channel", "email").exit_code == 0
    assert EMAIL.encode() in raw_bytes(workspace)

    result = workspace.cli("contacts", "forget", "1042")
    assert result.exit_code == 0, result.output
    assert (
        "forgot 1042: 1 events and 2 deliveries anonymised (1 unsent ones cancelled)"
        in result.stdout
    )
    assert "1 outbox lines removed" in result.stdout

    data = raw_bytes(workspace)
    for secret in (EMAIL, NAME, PHONE, "Lindenstraße 5", "Lieblingsblume"):
        assert secret.encode() not in data, secret
    assert (
        not (workspace.root / "regard.db-wal").exists()
        or (workspace.root / "regard.db-wal").stat().st_size == 0
    )

    # the anonymous counts remain
    alias = "forgotten:" + hashlib.sha256(b"1042").hexdigest()
    (event,) = rows(db, "SELECT * FROM events WHERE id = 'o1'")
    assert (event["contact_id"], event["amount"], event["properties"]) == (alias, 49.9, "{}")
    states = sorted(
        (r["state"], r["message"])
        for r in rows(db, "SELECT * FROM deliveries WHERE contact_id = ?", alias)
    )
    assert states == [("cancelled", None), ("sent", None)]
    (suppression,) = rows(db, "SELECT * FROM suppressions")
    assert suppression["address"] == "sha256:" + hashlib.sha256(EMAIL.encode()).hexdigest()
    assert suppression["contact_id"] == alias
    # the other contact is untouched
    assert [r["contact_id"] for r in workspace.outbox()] == ["7"]
    assert rows(db, "SELECT email FROM contacts")[0]["email"] == "anna@example.de"

    show = workspace.cli("contacts", "show", "1042")
    assert show.exit_code == 1
    assert "contact '1042' was forgotten" in show.stderr


def test_a_forgotten_contact_is_not_imported_again(workspace: Workspace) -> None:
    contacts = workspace.write("c.csv", "id,email\n1042,a@b.de\n7,c@d.de\n")
    events = workspace.write(
        "e.csv", "id,contact_id,occurred_at\no1,1042,2026-01-01\no2,7,2026-01-01\n"
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("contacts", "forget", "1042").exit_code == 0
    again = workspace.cli("import", "contacts", str(contacts))
    assert again.exit_code == 0
    assert "skipped: 1 rows of forgotten contacts" in again.stdout
    assert workspace.cli_json("import", "events", str(events))["skipped_forgotten"] == 1
    assert [r["id"] for r in rows(workspace.root / "regard.db", "SELECT id FROM contacts")] == ["7"]
    assert (
        workspace.cli("contacts", "forget", "1042").stdout.strip() == "1042 was already forgotten"
    )


def test_forgetting_an_unknown_contact_is_an_error(workspace: Workspace) -> None:
    result = workspace.cli("contacts", "forget", "nobody")
    assert result.exit_code == 1
    assert "unknown contact 'nobody'" in result.stderr
