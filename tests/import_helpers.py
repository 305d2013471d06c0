"""Helpers shared by the import, contacts and forget tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from regard.store import open_store

TABLES = ("contacts", "events", "deliveries", "suppressions", "forgotten")


def snapshot(db: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table, in a stable order: the store's content (none when
    there is no store). ``db``: the SQLite file, or a PostgreSQL store's URL."""
    if isinstance(db, str):
        with open_store(db) as store:
            return {
                t: sorted((tuple(r) for r in store.conn.execute(f"SELECT * FROM {t}")), key=repr)
                for t in TABLES
            }
    if not db.exists():
        return {t: [] for t in TABLES}
    conn = sqlite3.connect(db)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
    finally:
        conn.close()


def rows(db: Path | str, sql: str, *params: Any) -> list[Any]:
    """The rows ``sql`` selects; none when there is no store (a failed first import
    leaves none behind). ``db``: the SQLite file, or a PostgreSQL store's URL."""
    if isinstance(db, str):
        with open_store(db) as store:
            return store.conn.execute(sql, params).fetchall()
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def contact(db: Path | str, contact_id: str) -> dict[str, Any]:
    found = rows(db, "SELECT * FROM contacts WHERE id = ?", contact_id)
    assert found, f"no contact {contact_id}"
    return dict(found[0])
