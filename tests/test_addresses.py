"""Addresses are compared in one normal form everywhere: an e-mail address lower-cased
whole, a phone number in E.164. A bounce reported for ``Spam.Complainer@example.com``
stops mail to another contact whose address is ``spam.complainer@example.com``, at the
tick and at send time, and suppressions stored before are brought to that form."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from acceptance.conftest import Shop
from conftest import Workspace
from faults.rows import add_pending, states
from regard.delivery import dispatch
from regard.store import Pseudonyms, open_store
from regard.store.schema import MIGRATIONS
from regard.store.suppressions import normal_address
from regard.workspace import load_config


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("Spam.Complainer@Example.com", "spam.complainer@example.com"),
        ("  JÖRG@Example.org ", "jörg@example.org"),
        ("+49 30 1234-567", "+49301234567"),
        ("0049 (30) 1234567", "+49301234567"),
        ("+15005550006", "+15005550006"),
        ("hmac-sha256:ABC", "hmac-sha256:ABC"),
    ],
)
def test_the_normal_form(written: str, normal: str) -> None:
    assert normal_address(written) == normal
    keys = Pseudonyms(b"k" * 32)
    if not written.startswith("hmac-sha256:"):
        assert keys.address(written) == keys.address(normal)


def test_a_bounce_in_another_case_stops_the_tick_and_the_dispatch(workspace: Workspace) -> None:
    shop = Shop(workspace)
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts(
        {"id": "a", "email": "Spam.Complainer@example.com"},
        {"id": "b", "email": "spam.complainer@example.com"},
        {"id": "c", "email": "spam.complainer@example.com"},
    )
    with open_store(shop.ws.store_target) as store:
        # what a provider's 406 for contact a's address records
        store.suppressions.add_unreachable(
            "a", "email", "Spam.Complainer@example.com", reason="inactive", at=0
        )
        # c's delivery was decided before the bounce; it waits for dispatch
        [waiting] = add_pending(store, ["c"], provider="outbox", due_at=1_772_355_600)
        with store.write() as conn:
            conn.execute(
                "UPDATE deliveries SET message = json_set(message, '$.to', ?)",
                ("spam.complainer@example.com",),
            )
    shop.order("o1", "b", "2026-03-01T09:00:00Z")
    shop.tick("2026-03-01T10:00:00Z")
    by_contact = {d["contact_id"]: (d["state"], d["reason"]) for d in shop.deliveries()}
    # a provider's refusal is a bounce: it stops every purpose, at the tick and at dispatch
    assert by_contact["b"] == ("skipped", "bounced")
    assert by_contact["c"] == ("skipped", "bounced")
    assert shop.outbox() == []
    with open_store(shop.ws.store_target) as store:
        assert states(store)[waiting] == "skipped"


def test_stored_suppressions_are_brought_to_the_normal_form(tmp_path: Path) -> None:
    """A store from before m008_delivery_pacing with a suppression as a provider wrote it."""
    path = tmp_path / "regard.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for name, fn in MIGRATIONS:
        if name == "m008_delivery_pacing":
            break
        fn(conn)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    conn.executemany(
        "INSERT INTO suppressions (contact_id, channel, address, reason, created_at)"
        " VALUES ('a', ?, ?, 'bounced', 0)",
        [("email", "Spam.Complainer@Example.com"), ("sms", "+49 171 1234567")],
    )
    conn.close()
    config_path = tmp_path / "regard.toml"
    config_path.write_text(
        'store = "regard.db"\n[providers.outbox]\ntype = "file"\npath = "out.jsonl"\n',
        encoding="utf-8",
    )
    with open_store(path) as store:
        rows = sorted(r[0] for r in store.conn.execute("SELECT address FROM suppressions"))
        assert rows == ["+491711234567", "spam.complainer@example.com"]
        [did] = add_pending(store, ["z"], provider="outbox")
        with store.write() as conn2:
            conn2.execute(
                "UPDATE deliveries SET message = json_set(message, '$.to', ?)",
                ("SPAM.complainer@example.com",),
            )
        dispatch(store, load_config(config_path), 1_780_000_000)
        assert states(store)[did] == "skipped"
