"""The SQLite contact store: contacts, events, deliveries, suppressions.

Open it with :func:`open_store`; migrations run on open. Writes go through
:meth:`Store.write`, one ``BEGIN IMMEDIATE`` transaction, so a failed import or tick
leaves the store exactly as it was.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from regard.store.schema import MIGRATIONS

BUSY_TIMEOUT_MS = 30_000


def address_hash(address: str) -> str:
    """``sha256:<hex>`` of an address, trimmed and lower-cased (how forgotten addresses are kept).

    Also registered as the SQL function ``address_hash(text)`` on every store connection, so
    queries recognise a hashed suppression the same way Python code does.
    """
    return "sha256:" + hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


class Store:
    """An open store. ``db`` is the sqlite-utils Database, ``conn`` its connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit at the driver level: transactions are explicit (write()), never implicit
        conn = sqlite3.connect(
            str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.create_function("address_hash", 1, _sql_address_hash, deterministic=True)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # erased personal data must not linger
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self._migrate()

    def _migrate(self) -> None:
        with self.write():
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(self.conn)
                    self.conn.execute(
                        "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                        (name, int(time.time())),
                    )

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); nested calls become savepoints."""
        conn = self.conn
        if conn.in_transaction:
            name = f"sp_{id(conn)}_{time.monotonic_ns()}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield conn
            except BaseException:
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            else:
                conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextmanager
    def rolled_back(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that is always rolled back: ``plan`` and ``--dry-run`` run the
        real tick inside one, so they share its code path and write nothing."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sql_address_hash(address: object) -> str | None:
    return address_hash(address) if isinstance(address, str) else None


def open_store(path: str | Path) -> Store:
    """Open (creating if needed) the store at ``path`` and bring its schema up to date."""
    return Store(path)
