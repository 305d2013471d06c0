"""Reading a store without changing it, for the commands that only look (``check``).

:func:`read_only` never creates, migrates or locks a store: a SQLite file is opened with
``mode=ro`` (and the SQL functions regard registers on its own connections), a PostgreSQL
database through a connection of the store's pool (the schema's functions are there).
What goes wrong while reading is one of :data:`READ_ERRORS`, whichever engine it is.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from regard.errors import StoreError
from regard.store.area import PSEUDONYM_KEY, Pseudonyms, normal_address
from regard.store.backends import is_url


def _driver_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:  # the PostgreSQL extra is not installed
        return ()
    return (psycopg.Error,)


READ_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, StoreError, *_driver_errors())


def read_only(target: Path | str) -> Any | None:
    """A connection reading the store at ``target`` (a SQLite path or a PostgreSQL URL), to
    be closed by the caller; None when there is no such store file. Rows are read by
    index and by name on both engines."""
    if isinstance(target, str) and is_url(target):
        from regard.store.backends.postgres import Connection

        return Connection(target)
    path = Path(target)
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    conn.create_function("lower_address", 1, _normal, deterministic=True)
    conn.create_function("normal_address", 1, _normal, deterministic=True)
    try:
        key = conn.execute("SELECT value FROM meta WHERE key = ?", (PSEUDONYM_KEY,)).fetchone()
    except sqlite3.Error:
        conn.close()
        raise
    pseudonyms = Pseudonyms(bytes.fromhex(key[0])) if key is not None else None

    def hashed(address: object) -> str | None:
        if pseudonyms is None or not isinstance(address, str):
            return None
        return pseudonyms.address(address)

    conn.create_function("address_hash", 1, hashed, deterministic=True)
    return conn


def _normal(address: object) -> str | None:
    return normal_address(address) if isinstance(address, str) else None


def contact_count(target: Path | str) -> int | None:
    """How many contacts the store at ``target`` holds, read without changing it; None
    when there is no such store or it cannot be read."""
    try:
        conn = read_only(target)
        if conn is None:
            return None
        try:
            return int(conn.execute("SELECT count(*) FROM contacts").fetchone()[0])
        finally:
            conn.close()
    except READ_ERRORS:
        return None
