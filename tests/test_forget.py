from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from conftest import Workspace
from faults.rows import campaign_file
from import_helpers import rows
from regard.store import open_store

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


@pytest.mark.sqlite_only
def test_forget_leaves_no_byte_of_the_contact_behind(workspace: Workspace) -> None:
    db = workspace.store_target
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
    # the pseudonyms are keyed: not the plain sha256 a guess of the id could be tested with
    with open_store(db) as opened:
        alias = "forgotten:" + opened.pseudonyms.contact("1042")
        hashed = opened.pseudonyms.address(EMAIL)
    assert hashlib.sha256(b"1042").hexdigest() not in alias
    (event,) = rows(db, "SELECT * FROM events WHERE id = 'o1'")
    assert (event["contact_id"], event["amount"], event["properties"]) == (alias, 49.9, "{}")
    states = sorted(
        (r["state"], r["message"])
        for r in rows(db, "SELECT * FROM deliveries WHERE contact_id = ?", alias)
    )
    assert states == [("cancelled", None), ("sent", None)]
    (suppression,) = rows(db, "SELECT * FROM suppressions")
    assert suppression["address"] == hashed
    assert hashlib.sha256(EMAIL.encode()).hexdigest() not in hashed
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
    assert [r["id"] for r in rows(workspace.store_target, "SELECT id FROM contacts")] == ["7"]
    assert (
        workspace.cli("contacts", "forget", "1042").stdout.strip() == "1042 was already forgotten"
    )


def test_forgetting_an_unknown_contact_is_an_error(workspace: Workspace) -> None:
    result = workspace.cli("contacts", "forget", "nobody")
    assert result.exit_code == 1
    assert "unknown contact 'nobody'" in result.stderr


def test_pseudonyms_are_keyed_per_store(tmp_path: Path) -> None:
    """The same id forgotten in two stores has two unrelated pseudonyms, neither of them
    the plain sha256 that a list of guessed ids could be hashed against."""
    with open_store(tmp_path / "a.db") as a, open_store(tmp_path / "b.db") as b:
        assert a.pseudonyms.contact("1042") != b.pseudonyms.contact("1042")
        assert a.pseudonyms.contact("1042") == a.pseudonyms.contact("1042")
        assert hashlib.sha256(b"1042").hexdigest() not in a.pseudonyms.contact("1042")
        assert a.pseudonyms.address(" Anna@Example.de ") == a.pseudonyms.address("anna@example.de")


def test_an_older_stores_plain_digests_are_rekeyed(tmp_path: Path) -> None:
    """A store forgotten under the plain-sha256 scheme: after the upgrade its forgotten id
    is still refused on import and its hashed unsubscribe still matches the address,
    and no plain digest is left."""
    from regard.store import schema

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for name, fn in schema.MIGRATIONS:  # a store of the first release: m001 to m003
        if name == "m004_server_and_bounces":
            break
        fn(conn)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    plain_id = hashlib.sha256(b"1042").hexdigest()
    plain_address = hashlib.sha256(b"gone@example.de").hexdigest()
    conn.execute("INSERT INTO forgotten (id_hash, forgotten_at) VALUES (?, 0)", (plain_id,))
    conn.execute(
        "INSERT INTO suppressions (contact_id, channel, address, reason, created_at) "
        "VALUES (?, '*', ?, 'unsubscribed', 0)",
        (f"forgotten:{plain_id}", f"sha256:{plain_address}"),
    )
    conn.close()
    with open_store(db) as store:
        assert store.contacts.forgotten_at("1042") == 0
        (row,) = store.conn.execute("SELECT contact_id, address FROM suppressions")
        assert tuple(row) == (
            "forgotten:" + store.pseudonyms.contact("1042"),
            store.pseudonyms.address("gone@example.de"),
        )
        dump = "\n".join(store.conn.iterdump())
    assert plain_id not in dump and plain_address not in dump


def test_forget_erases_an_address_however_a_service_cased_it(workspace: Workspace) -> None:
    contacts = workspace.write("c.csv", "id,email\n1042,Spam.Complainer@Example.com\n")
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    db = workspace.store_target
    with open_store(db) as store:
        store.suppressions.add_unreachable(
            "1042", "email", "Spam.Complainer@Example.com",
            reason="provider mail: 406 inactive recipient spam.complainer@example.com", at=0,
        )  # fmt: skip
    assert workspace.cli("contacts", "forget", "1042").exit_code == 0
    data = raw_bytes(workspace).lower()
    assert b"spam.complainer" not in data


def _on_a_terminal(workspace: Workspace, answer: str, *args: str) -> tuple[int, str]:
    """Run ``regard ARGS`` with a real terminal (a pty) as its stdin, typing ``answer``."""
    import os
    import pty
    import subprocess

    from conftest import regard_command, subprocess_env

    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [*regard_command("--config", str(workspace.config)), *args],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=subprocess_env(), cwd=workspace.root,
        )  # fmt: skip
        os.write(leader, answer.encode() + b"\n")
        output, _ = process.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    return process.returncode, output


def test_forget_asks_on_a_terminal(workspace: Workspace) -> None:
    contacts = workspace.write("c.csv", "id,email\n1042,a@b.de\n")
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    code, output = _on_a_terminal(workspace, "n", "contacts", "forget", "1042")
    assert code == 1 and "cannot be undone" in output and "Aborted" in output
    assert workspace.cli("contacts", "show", "1042").exit_code == 0
    code, output = _on_a_terminal(workspace, "y", "contacts", "forget", "1042")
    assert code == 0 and "forgot 1042" in output, output
    assert workspace.cli("contacts", "show", "1042").exit_code == 1
