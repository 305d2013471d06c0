from __future__ import annotations

from pathlib import Path

import pytest

from regard.store import open_store
from regard.store.schema import MIGRATIONS


def test_migrations_apply_once_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = open_store(path)
    names = [r[0] for r in store.conn.execute("SELECT name FROM migrations ORDER BY rowid")]
    assert names == [name for name, _ in MIGRATIONS]
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    store.close()
    again = open_store(path)
    assert again.conn.execute("SELECT count(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
    again.close()


def test_write_is_all_or_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    with pytest.raises(RuntimeError), store.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
        raise RuntimeError("boom")
    assert store.conn.execute("SELECT count(*) FROM meta WHERE key = 'a'").fetchone()[0] == 0


def test_rolled_back_writes_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    with store.rolled_back() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
        assert conn.execute("SELECT count(*) FROM meta WHERE key = 'a'").fetchone()[0] == 1
    assert store.conn.execute("SELECT count(*) FROM meta WHERE key = 'a'").fetchone()[0] == 0
