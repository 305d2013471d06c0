"""Copying a store into another, table by table, checked row for row: what
``regard migrate-store`` does (SQLite → PostgreSQL and back) and how ``simulate`` makes its
SQLite scratch copy of a PostgreSQL store.

Both stores are opened (so migrated) by this version of regard first: they have the same
tables and columns. Every table but ``migrations`` (each store records its own) is copied;
``meta`` and ``settings`` too, so the copy keeps the store's pseudonym key (it still
recognises what was forgotten) and its link secret (links already sent keep working). The target must be empty (:func:`is_empty`): nothing is ever merged or
overwritten. All of it is written in one transaction of the target, so a failed copy leaves
the target as it was.

The check: for each table, its row count and a digest of its rows, computed from what was
read from the source and again from what the target holds afterwards, must be equal. The
digest is order-independent (the sum, modulo 2**256, of the SHA-256 of each row's values in
a canonical form: type and value, columns by name), because the engines order text
differently; two stores with the same digest hold the same multiset of rows.
"""

from __future__ import annotations

import hashlib
import json
import operator
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from regard.config import is_store_url, redact_url
from regard.errors import StoreError
from regard.store import Store, open_store, remove_blank
from regard.store.area import PSEUDONYM_KEY
from regard.store.backends.pg_schema import FUNCTIONS_KEY
from regard.store.settings import SERVER_SECRET
from regard.times import Instant

SKIPPED = frozenset({"migrations"})  # each store records its own
# what every new store makes for itself (its pseudonym key, its link secret): in the
# target it gives way to the source's, so forgotten ids and signed links keep working
MADE_WITH_STORE = {"meta": PSEUDONYM_KEY, "settings": SERVER_SECRET}
# what an engine keeps for itself (PostgreSQL: the version of its SQL functions): neither
# copied nor replaced, nor counted in the check
ENGINE_OWN = {"settings": FUNCTIONS_KEY}
# tables others reference, copied first (foreign keys are checked as rows arrive)
PARENTS = ("contacts", "deliveries")
BATCH = 5000
_MODULUS = 2**256


@dataclass(frozen=True)
class TableCheck:
    """One table of a store: how many rows it holds and the digest of those rows."""

    table: str
    rows: int
    digest: str  # 64 hex digits


def dialect(store: Store) -> str:
    """``sqlite`` or ``postgresql``."""
    return store.dialect


def tables(store: Store) -> list[str]:
    """The store's tables that a copy carries, parents first, then by name."""
    if dialect(store) == "postgresql":
        rows = store.conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        ).fetchall()
    else:
        rows = store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    names = sorted(str(r[0]) for r in rows if str(r[0]) not in SKIPPED)
    return [t for t in PARENTS if t in names] + [t for t in names if t not in PARENTS]


def columns(store: Store, table: str) -> list[str]:
    """The columns of ``table`` in the order they were made, as SQLite has them: the
    ``rowid`` PostgreSQL keeps for the order of insertion is SQLite's implicit one, not a
    column of the copy (rows are read in that order, and take it on in the target)."""
    if dialect(store) == "postgresql":
        rows = store.conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    else:
        rows = store.conn.execute(
            "SELECT name FROM pragma_table_info(?) ORDER BY cid", (table,)
        ).fetchall()
    return [str(r[0]) for r in rows if str(r[0]) != "rowid"]


def _in_insertion_order(store: Store, table: str) -> str:
    """``ORDER BY rowid`` where the table keeps an order of insertion, else nothing."""
    if dialect(store) == "sqlite":
        return " ORDER BY rowid"
    found = store.conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? AND column_name = 'rowid'",
        (table,),
    ).fetchone()
    return " ORDER BY rowid" if found else ""


def is_empty(store: Store) -> list[str]:
    """The tables of ``store`` that hold anything but what a new store makes for itself
    (:data:`MADE_WITH_STORE`); empty when the store may be the target of a copy."""
    held = []
    for table in tables(store):
        if table in MADE_WITH_STORE:
            row = store.conn.execute(
                f"SELECT 1 FROM {table} WHERE key <> ? AND key <> ? LIMIT 1",
                (MADE_WITH_STORE[table], ENGINE_OWN.get(table, "")),
            ).fetchone()
        else:
            row = store.conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
        if row is not None:
            held.append(table)
    return held


_PLAIN = frozenset({str, int, bytes, type(None)})  # types whose repr() is canonical as is
_NUMBERS = _PLAIN | {float}  # … once an integral float is its integer


def _plain(value: Any) -> Any:
    """One value in the form the digest reads (:func:`repr` of it): an integral number is
    the integer (SQLite hands 1.0 back from a REAL column, PostgreSQL too, but a NUMERIC
    sum is a Decimal), bytes of every kind are bytes, a JSON value the driver decoded is
    its compact text; so 1 and 1.0 agree while 1, 1.5, '1', b'1' and NULL all differ."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):  # a NUMERIC column
        value = float(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):  # a JSON column the driver decoded
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


class _Plan:
    """How the rows of one column list are digested: the columns taken by name (sorted),
    so two stores whose tables list the same columns in another order agree."""

    def __init__(self, names: Sequence[str]) -> None:
        order = sorted(range(len(names)), key=lambda i: names[i])
        self.pick: Callable[[Sequence[Any]], Any] = (
            (lambda row: (row[order[0]],)) if len(order) == 1 else operator.itemgetter(*order)
        )
        self.prefix = repr([names[i] for i in order]).encode("utf-8")

    def hash(self, row: Sequence[Any]) -> int:
        values = self.pick(row)
        kinds = set(map(type, values))
        if kinds <= _PLAIN:
            pass
        elif kinds <= _NUMBERS:  # the common case made quick: no call per value
            values = tuple([int(v) if type(v) is float and v.is_integer() else v for v in values])
        else:
            values = tuple(_plain(v) for v in values)
        digest = hashlib.sha256(self.prefix + repr(values).encode("utf-8", "surrogatepass"))
        return int.from_bytes(digest.digest(), "big")


@lru_cache(maxsize=64)
def _plan(names: tuple[str, ...]) -> _Plan:
    return _Plan(names)


def row_hash(names: Sequence[str], row: Sequence[Any]) -> int:
    """The SHA-256 of one row (columns by name, each value's kind and value: the
    :func:`repr` of the values as :func:`_plain` makes them), as an integer."""
    return _plan(tuple(names)).hash(row)


class _Tally:
    def __init__(self, names: Sequence[str], digest: bool = True) -> None:
        self.rows = 0
        self.total = 0
        self._hash = _plan(tuple(names)).hash if digest else None

    def add(self, row: Sequence[Any]) -> None:
        self.rows += 1
        if self._hash is not None:
            self.total += self._hash(row)

    def check(self, table: str) -> TableCheck:
        if self._hash is None:
            return TableCheck(table, self.rows, "")
        return TableCheck(table, self.rows, f"{self.total % _MODULUS:064x}")


def _read(store: Store, table: str, names: Sequence[str]) -> Iterator[Sequence[Any]]:
    """Every row of ``table``, in insertion order, streamed as tuples: on PostgreSQL
    through a server-side cursor inside the caller's transaction (:data:`BATCH` rows a
    round trip), on SQLite from a cursor of its own; a table of millions of rows is never
    held in memory at once."""
    own = f" WHERE key <> '{ENGINE_OWN[table]}'" if table in ENGINE_OWN else ""
    order = _in_insertion_order(store, table)
    statement = f"SELECT {', '.join(names)} FROM {table}{own}{order}"
    if dialect(store) == "postgresql" and store.conn.in_transaction:
        raw: Any = cast(Any, store.conn).raw
        with raw.cursor(name=f"regard_copy_{table}") as cursor:
            cursor.itersize = BATCH
            cursor.execute(statement)
            yield from cursor
        return
    if dialect(store) == "postgresql":
        yield from (tuple(row) for row in store.conn.execute(statement))
        return
    cursor = store.conn.cursor()
    cursor.row_factory = None  # plain tuples
    try:
        yield from cursor.execute(statement)
    finally:
        cursor.close()


def checks(store: Store) -> list[TableCheck]:
    """Every copied table of ``store`` with its row count and digest."""
    out = []
    for table in tables(store):
        names = columns(store, table)
        tally = _Tally(names)
        for row in _read(store, table, names):
            tally.add(row)
        out.append(tally.check(table))
    return out


Progress = Callable[[str, int], None]


def _counted(
    rows: Iterable[Sequence[Any]], tally: _Tally, table: str, progress: Progress | None
) -> Iterator[Sequence[Any]]:
    """The rows as they pass, each added to ``tally``; progress every :data:`BATCH` rows."""
    for row in rows:
        tally.add(row)
        if progress is not None and tally.rows % BATCH == 0:
            progress(table, tally.rows)
        yield row


def copy_rows(
    source: Store, target: Store, progress: Progress | None = None, *, check: bool = True
) -> list[TableCheck]:
    """Copy every row of ``source`` into the empty ``target`` in one transaction of the
    target; then check the target row for row against what was read. Returns the checks
    (the same for both stores). StoreError when the target is not empty, a table or
    column of the source is missing in the target, or the check finds a difference (the
    target is then left as it was). ``check=False`` (a scratch copy, thrown away after
    use) copies without digesting: the counts alone are returned, digests empty."""
    held = is_empty(target)
    if held:
        raise StoreError(
            f"{label(target)}: the target store is not empty ({', '.join(held)} hold rows); "
            "migrate-store copies into an empty store only"
        )
    target_tables = set(tables(target))
    read: list[TableCheck] = []
    with _snapshot(source), target.write() as conn:
        for table in tables(source):
            if table not in target_tables:
                raise StoreError(f"{label(target)}: has no table {table}; upgrade regard there")
            names = columns(source, table)
            missing = set(names) - set(columns(target, table))
            if missing:
                raise StoreError(
                    f"{label(target)}: table {table} has no column {', '.join(sorted(missing))}"
                )
            if table in MADE_WITH_STORE:  # the target's own key gives way to the source's
                conn.execute(f"DELETE FROM {table} WHERE key <> ?", (ENGINE_OWN.get(table, ""),))
            tally = _Tally(names, check)
            _write(
                target, table, names, _counted(_read(source, table, names), tally, table, progress)
            )
            if progress is not None:
                progress(table, tally.rows)
            read.append(tally.check(table))
        _reset_sequences(target)
        if not check:
            return read
        found = {c.table: c for c in checks(target)}
        for want in read:
            got = found.get(want.table)
            if got != want:
                raise StoreError(
                    f"{label(target)}: table {want.table}: the copy does not match the source "
                    f"({want.rows} rows read, {got.rows if got else 0} found; digests "
                    f"{want.digest[:12]} and {got.digest[:12] if got else '-'}); "
                    "nothing was written"
                )
    return read


def _write(target: Store, table: str, names: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write ``rows`` into ``table`` of ``target`` (inside the caller's transaction), in
    bulk and streamed, so memory stays flat whatever the table's size.

    PostgreSQL: one ``COPY table (columns) FROM STDIN`` per table, each row handed to
    psycopg's ``Copy.write_row`` (text format: the values adapted as in a query; psycopg
    sends them in large chunks). See "Using COPY TO and COPY FROM",
    https://www.psycopg.org/psycopg3/docs/basic/copy.html, and PostgreSQL's COPY,
    https://www.postgresql.org/docs/current/sql-copy.html. SQLite: one ``executemany``
    over the stream of rows (sqlite3 steps one prepared INSERT through them).

    A row the target refuses (a value its column cannot hold, a key twice) is a
    StoreError naming the target, the table and, on PostgreSQL, the row and column."""
    columns_ = ", ".join(names)
    if dialect(target) == "postgresql":
        import psycopg

        raw: Any = cast(Any, target.conn).raw
        try:
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table} ({columns_}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise StoreError(f"{label(target)}: table {table}: {_pg_reason(exc)}") from None
        return
    statement = f"INSERT INTO {table} ({columns_}) VALUES ({', '.join('?' * len(names))})"
    try:
        target.conn.executemany(statement, rows)
    except sqlite3.Error as exc:
        raise StoreError(f"{label(target)}: table {table}: {exc}") from None


def _pg_reason(exc: BaseException) -> str:
    """PostgreSQL's message for a refused COPY, with where it stopped (``COPY events,
    line 12, column amount: "x"``)."""
    lines = (str(exc).strip().splitlines() or [type(exc).__name__])[:1]
    diag = getattr(exc, "diag", None)
    context = getattr(diag, "context", None) if diag is not None else None
    if context:
        lines.append(f"({context.strip().splitlines()[0]})")
    return " ".join(lines)


@contextmanager
def _snapshot(store: Store) -> Iterator[None]:
    """One read-only snapshot of ``store`` for the whole copy: every table as of one
    instant, taking no lock that would hold up a writer (SQLite: a read transaction of its
    WAL; PostgreSQL: ``REPEATABLE READ READ ONLY``)."""
    if dialect(store) == "postgresql":
        store.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        store.conn.execute("BEGIN")
    try:
        yield
    finally:
        if store.conn.in_transaction:
            store.conn.execute("ROLLBACK")


def _reset_sequences(store: Store) -> None:
    """PostgreSQL: every column numbered by a sequence continues after the copied rows."""
    if dialect(store) != "postgresql":
        return  # SQLite numbers rows from the largest rowid already
    rows = store.conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() "
        "AND (column_default LIKE 'nextval(%' OR is_identity = 'YES')"
    ).fetchall()
    for table, column in rows:
        store.conn.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?), "
            f"coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)",
            (table, column),
        )


def label(store: Store) -> str:
    """The store for messages: its file, or its URL without the password."""
    return store.label


@dataclass(frozen=True)
class Migrated:
    """What ``migrate-store`` did: from where to where, and each table's check."""

    source: str  # the store's label (a URL without its password)
    target: str
    tables: list[TableCheck]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "rows": self.rows,
            "checked": True,
            "tables": [{"table": t.table, "rows": t.rows, "digest": t.digest} for t in self.tables],
        }


def migrate(
    source: Path | str, target: Path | str, now: Instant, progress: Progress | None = None
) -> Migrated:
    """Copy the store ``source`` into the new or empty store ``target`` (each a SQLite
    file or a PostgreSQL URL), checked row for row (:func:`copy_rows`).

    Refused (StoreError) when ``source`` has no store yet, when they are the same store,
    while a daemon runs on ``source`` (its writes would race the copy), or when ``target``
    holds anything. A SQLite target file made here is removed again when the copy fails.
    """
    if not is_store_url(source) and not Path(source).is_file():
        raise StoreError(f"{source}: no store here yet, nothing to copy")
    if _same(source, target):
        raise StoreError(f"{_shown(target)}: is the config's own store; name another with --to")
    made = not is_store_url(target) and not Path(target).exists()
    with open_store(source) as src:
        live = src.daemons.live(now)
        if live:
            who = ", ".join(f"pid {d['pid']} on {d['host']}" for d in live)
            raise StoreError(
                f"{label(src)}: {len(live)} daemon(s) running on this store ({who}); stop "
                "them first, so that nothing changes while the store is copied"
            )
        dst = open_store(target)
        try:
            checked = copy_rows(src, dst, progress)
        except BaseException:
            if made:
                remove_blank(dst)
            else:
                dst.close()
            raise
        dst.close()
        return Migrated(label(src), _shown(target), checked)


def _shown(target: Path | str) -> str:
    return redact_url(str(target)) if is_store_url(target) else str(Path(target).resolve())


def _same(a: Path | str, b: Path | str) -> bool:
    if is_store_url(a) or is_store_url(b):
        return is_store_url(a) and is_store_url(b) and _url_key(str(a)) == _url_key(str(b))
    return Path(a).resolve() == Path(b).resolve()


def _url_key(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    host = (parts.hostname or "") + f":{parts.port or 5432}"
    return host, parts.path, parts.query
