"""Opening the store: reading commands neither create a store nor take its write lock.

A ``status`` run by monitoring during a long import must answer at once, not wait for the
import's write lock and fail; and a ``status`` or a failed import in a fresh workspace
must not leave an empty ``regard.db`` behind for the next command to mistake for a store.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Workspace, subprocess_env
from regard.store import open_store, remove_blank

CONTACTS = "id,email,first_name\n1,anna@example.de,Anna\n"


@pytest.mark.sqlite_only
def test_reading_commands_create_no_store(workspace: Workspace) -> None:
    db = workspace.store_target
    for args in (("status",), ("deliveries", "--json"), ("report", "--json")):
        workspace.cli(*args)
        assert not db.exists(), f"`regard {' '.join(args)}` created {db.name}"


@pytest.mark.sqlite_only
def test_a_failed_import_creates_no_store(workspace: Workspace) -> None:
    db = workspace.store_target
    bad = workspace.write("bad.csv", "id,email\n,anna@example.de\n")
    result = workspace.cli("import", "contacts", str(bad))
    assert result.exit_code == 1, result.output
    assert not db.exists()
    assert not Path(f"{db}-wal").exists()
    good = workspace.write("good.csv", CONTACTS)
    assert workspace.cli("import", "contacts", str(good)).exit_code == 0
    assert db.exists()
    workspace.cli("status")
    assert db.exists(), "a store with data is never removed"


def test_an_existing_blank_store_is_kept(tmp_path: Path) -> None:
    """Only the command that created the file removes it: a store someone made on
    purpose stays, blank or not."""
    with open_store(tmp_path / "regard.db") as store:
        assert store.is_blank()
    with open_store(tmp_path / "regard.db"):
        pass
    assert (tmp_path / "regard.db").exists()
    store = open_store(tmp_path / "regard.db")
    with store.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    assert not remove_blank(store)
    assert (tmp_path / "regard.db").exists()


@pytest.mark.sqlite_only
def test_reading_commands_answer_during_a_writers_transaction(workspace: Workspace) -> None:
    """Another process holds the write lock (a long import): reading commands answer
    well inside the store's 30 s busy timeout instead of waiting for it."""
    good = workspace.write("good.csv", CONTACTS)
    assert workspace.cli("import", "contacts", str(good)).exit_code == 0
    writer = sqlite3.connect(workspace.root / "regard.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE contacts SET first_name = 'Änne' WHERE id = '1'")
    try:
        for args in (("status", "--json"), ("deliveries", "--json"), ("contacts", "show", "1")):
            started = time.monotonic()
            result = workspace.run(*args, timeout=60)
            elapsed = time.monotonic() - started
            assert result.returncode in (0, 1), result.stderr
            assert "Traceback" not in result.stderr
            assert "locked" not in result.stderr, result.stderr
            assert elapsed < 10, f"`regard {' '.join(args)}` waited {elapsed:.1f} s for the lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_postgresql_store_without_its_driver_is_a_clear_error(tmp_path: Path) -> None:
    """Without the extra, a PostgreSQL URL names what to install (exit 1, no traceback)."""
    (tmp_path / "regard.toml").write_text(
        'timezone = "Europe/Berlin"\nstore = "postgresql://nobody@127.0.0.1:1/x"\n'
        '[sender]\nname = "Laden"\nemail = "a@example.com"\n'
    )
    program = (
        "import sys; sys.modules['psycopg'] = None\n"  # as if the extra were not installed
        "from regard.cli import main; sys.argv = ['regard', 'status']; main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path,
        env=subprocess_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "pip install 'regard[postgresql]'" in result.stderr
    assert "Traceback" not in result.stderr
