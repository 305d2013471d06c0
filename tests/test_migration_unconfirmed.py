"""m007_unconfirmed_and_pauses on a store written before it: the deliveries table is rebuilt
for the new state without losing a row, a log line or an index; the new columns, the
pauses table and the contact field ``address2`` are there; the migration is applied once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from regard.store import open_store
from regard.store.schema import MIGRATIONS


def old_store(path: Path) -> None:
    """A store as the migrations before m007 left it, with deliveries and their log."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for name, fn in MIGRATIONS:
        if name.startswith("m007"):
            break
        fn(conn)
        conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, int(time.time())))
    for i, state in enumerate(("pending", "sent", "dead")):
        conn.execute(
            "INSERT INTO deliveries (id, campaign, contact_id, occasion, channel, provider, "
            "state, due_at, created_at, updated_at) VALUES (?, 'c', ?, 'o', 'card', 'cards', "
            "?, 1, 1, 1)",
            (f"d{i}", f"k{i}", state),
        )
        conn.execute(
            "INSERT INTO delivery_log (delivery_id, at, state, detail) VALUES (?, 1, ?, 'x')",
            (f"d{i}", state),
        )
    conn.execute("COMMIT")
    conn.close()


def test_the_rebuild_keeps_every_row_log_line_and_index(tmp_path: Path) -> None:
    path = tmp_path / "regard.db"
    old_store(path)
    before = sqlite3.connect(path)
    indexes = {
        r[0]
        for r in before.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' "
            "AND sql IS NOT NULL"
        )
    }
    before.close()

    store = open_store(path)
    conn = store.conn
    assert [tuple(r) for r in conn.execute("SELECT id, state FROM deliveries ORDER BY id")] == [
        ("d0", "pending"),
        ("d1", "sent"),
        ("d2", "dead"),
    ]
    assert conn.execute("SELECT count(*) FROM delivery_log").fetchone()[0] == 3
    after = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' "
            "AND sql IS NOT NULL"
        )
    }
    assert indexes and after - {"deliveries_claim_order"} == indexes  # m013 adds one
    with store.write():
        conn.execute("UPDATE deliveries SET state = 'unconfirmed' WHERE id = 'd0'")
    with pytest.raises(sqlite3.IntegrityError), store.write():
        conn.execute("UPDATE deliveries SET state = 'lost' WHERE id = 'd0'")
    row = conn.execute("SELECT first_attempt_at, outcome_unknown FROM deliveries").fetchone()
    assert tuple(row) == (None, 0)
    assert conn.execute("SELECT count(*) FROM provider_pauses").fetchone()[0] == 0
    conn.execute("SELECT address2 FROM contacts").fetchall()
    # the log still cascades with its delivery, as before
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    store.close()
    again = open_store(path)  # applied once: opening again changes nothing
    assert again.conn.execute("SELECT count(*) FROM delivery_log").fetchone()[0] == 3
    again.close()
