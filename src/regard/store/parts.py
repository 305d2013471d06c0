"""A store split by contact into part files, for a replay that runs its parts side by side.

Each contact is in exactly one part (:func:`part_of`: the CRC-32 of its id, modulo the
number of parts), and a part holds its contacts with everything that is theirs: their
events, their deliveries and those deliveries' history. What is not any one contact's is
in every part whole: suppressions (they may name an address only), settings, the ticks'
marks, provider pauses, currency rates and the rest of the small tables.

All parts are written from one read transaction of the source, so together they are one
consistent copy of it, as :func:`regard.store.backtest.copy_store` makes one (a daemon may
be writing the source meanwhile). The parts are written without their indexes, which
each part's own process then builds (:func:`build_indexes`) beside the others.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# the tables split by contact, and the column naming it
BY_CONTACT = {"contacts": "id", "events": "contact_id", "deliveries": "contact_id"}
# split by the delivery they belong to
BY_DELIVERY = {"delivery_log": "delivery_id"}
# in every part whole
WHOLE = frozenset(
    {
        "suppressions", "meta", "migrations", "settings", "ticks", "daemons",
        "provider_pauses", "sync_cursors", "currency_rates", "inbound", "forgotten",
    }
)  # fmt: skip


def part_of(contact_id: str, parts: int) -> int:
    """The part (0 … ``parts`` − 1) that holds contact ``contact_id``."""
    return zlib.crc32(contact_id.encode()) % parts


@dataclass(frozen=True)
class Split:
    """The part files of a store, and what each still needs built."""

    paths: list[Path]
    indexes: list[str]  # the source's CREATE INDEX statements, for build_indexes


def split_store(source: Path, folder: Path, parts: int) -> Split:
    """The store file ``source`` split into ``parts`` files ``part-<k>.db`` in ``folder``,
    only reading ``source``. Raises ValueError for a table this module does not know how
    to split (a new table must be placed in BY_CONTACT, BY_DELIVERY or WHOLE)."""
    uri = f"{source.resolve().as_uri()}?mode=ro"
    try:
        schema = _schema(uri)
    except sqlite3.OperationalError:  # a WAL store whose -shm cannot be created read-only
        uri = source.resolve().as_uri()
        schema = _schema(uri)
    tables = [(name, sql) for kind, name, sql in schema if kind == "table"]
    unknown = sorted(name for name, _ in tables if name not in {*BY_CONTACT, *BY_DELIVERY, *WHOLE})
    if unknown:
        raise ValueError(f"{source}: no rule to split the tables {', '.join(unknown)}")
    paths = [folder / f"part-{k}.db" for k in range(parts)]
    for path in paths:
        target = sqlite3.connect(str(path))
        try:
            for _, sql in tables:
                target.execute(sql)
            target.commit()
        finally:
            target.close()
    conn = sqlite3.connect("file::memory:", uri=True, isolation_level=None)
    try:
        conn.create_function(
            "regard_part", 1, lambda cid: part_of(str(cid), parts), deterministic=True
        )
        conn.execute("ATTACH ? AS src", (uri,))
        for k, path in enumerate(paths):
            conn.execute(f"ATTACH ? AS p{k}", (str(path),))
            conn.execute(f"PRAGMA p{k}.journal_mode = OFF")  # thrown away after the replay
            conn.execute(f"PRAGMA p{k}.synchronous = OFF")
        conn.execute("BEGIN")  # one read transaction of the source for every part
        conn.execute("CREATE TEMP TABLE part (id TEXT PRIMARY KEY, k INTEGER) WITHOUT ROWID")
        conn.execute("INSERT INTO temp.part SELECT id, regard_part(id) FROM src.contacts")
        for name, _ in tables:
            for k in range(parts):
                conn.execute(
                    f'INSERT INTO p{k}."{name}" SELECT * FROM src."{name}"{_rows(name, k)}'
                )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return Split(paths, [sql for kind, _, sql in schema if kind == "index"])


def _rows(table: str, k: int) -> str:
    """The WHERE clause that picks part ``k``'s rows of ``table`` (none: all of them)."""
    if table == "contacts":
        return f" WHERE id IN (SELECT id FROM temp.part WHERE k = {k})"
    if table in BY_CONTACT:
        # a row of a contact the store does not hold (none should be) goes to part 0
        return (
            f" WHERE coalesce((SELECT k FROM temp.part WHERE id = {BY_CONTACT[table]}),"
            f" regard_part({BY_CONTACT[table]})) = {k}"
        )
    if table in BY_DELIVERY:
        return (
            f" WHERE {BY_DELIVERY[table]} IN (SELECT d.id FROM src.deliveries d"
            f" WHERE coalesce((SELECT k FROM temp.part WHERE id = d.contact_id),"
            f" regard_part(d.contact_id)) = {k})"
        )
    return ""


def _schema(uri: str) -> list[tuple[str, str, str]]:
    """(type, name, sql) of the source's tables and indexes, in the order made."""
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
            " AND type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        ).fetchall()
    finally:
        conn.close()
    return [(str(kind), str(name), str(sql)) for kind, name, sql in rows]


def build_indexes(path: Path, indexes: Sequence[str]) -> None:
    """Build a part's indexes (:attr:`Split.indexes`) in its own file."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        for sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()
