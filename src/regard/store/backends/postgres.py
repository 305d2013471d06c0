"""The PostgreSQL engine of the store: psycopg 3 connections from a pool, presented as the
part of ``sqlite3.Connection`` the store's areas use.

psycopg 3 (https://www.psycopg.org/psycopg3/docs/) speaks the server's protocol;
a small pool (:class:`Pool`) keeps connections open across the many short-lived stores a
daemon, a server or a test opens (one per tick, per request batch), so each costs no new
connection and no new server process. Connections are in autocommit mode, like SQLite's with
``isolation_level=None``: transactions are explicit (``Store.write()`` sends ``BEGIN``).

Each statement text is translated once (:func:`translate`, cached): ``?``, ``?NNN`` and
``:name`` placeholders become psycopg's ``%s`` / ``%(name)s`` (never inside string
literals or quoted names), ``%`` is doubled, ``IS [NOT]`` between values becomes ``IS
[NOT] DISTINCT FROM``, ``temp.`` / ``main.`` name PostgreSQL's schemas, and the DDL types
are PostgreSQL's of the same range (``INTEGER`` → ``BIGINT``: SQLite's integers are 64
bits; ``REAL`` → ``DOUBLE PRECISION``: SQLite's reals are doubles; ``INTEGER PRIMARY KEY``
→ an identity column).
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq

from regard.errors import StoreError
from regard.store.backends import redact

POOL_SIZE = 8  # connections one process keeps per database (a daemon's lanes, a server)
CONNECT_TIMEOUT_S = 30


class Row:
    """One result row, by index and by column name (like ``sqlite3.Row``)."""

    __slots__ = ("_index", "_names", "_values")

    def __init__(
        self, names: tuple[str, ...], index: dict[str, int], values: Sequence[Any]
    ) -> None:
        self._names = names
        self._index = index
        self._values = values

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                raise IndexError(f"no such column: {key}") from None
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._names)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return self._names == other._names and tuple(self._values) == tuple(other._values)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._names, tuple(self._values)))

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values, strict=True))!r})"


class Cursor:
    """The result of one statement: rows (``fetchone``, ``fetchall``, iteration),
    ``rowcount`` and ``description``."""

    def __init__(self, cursor: psycopg.Cursor[Any], hidden: frozenset[str]) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid = None  # PostgreSQL has no rowid: statements say RETURNING
        self._names: tuple[str, ...] = ()
        self._keep: list[int] | None = None
        description = cursor.description
        self.description = description
        if description is not None:
            names = [d.name for d in description]
            if hidden and any(n in hidden for n in names):
                self._keep = [i for i, n in enumerate(names) if n not in hidden]
                names = [names[i] for i in self._keep]
                self.description = [description[i] for i in self._keep]
            self._names = tuple(names)
            self._index = {n: i for i, n in reversed(list(enumerate(names)))}

    def _row(self, values: Sequence[Any]) -> Row:
        if self._keep is not None:
            values = [values[i] for i in self._keep]
        return Row(self._names, self._index, values)

    def fetchone(self) -> Row | None:
        if self.description is None:
            return None
        values = self._cursor.fetchone()
        return None if values is None else self._row(values)

    def fetchall(self) -> list[Row]:
        if self.description is None:
            return []
        return [self._row(v) for v in self._cursor.fetchall()]

    def fetchmany(self, size: int = 1) -> list[Row]:
        if self.description is None:
            return []
        return [self._row(v) for v in self._cursor.fetchmany(size)]

    def __iter__(self) -> Iterator[Row]:
        if self.description is None:
            return iter(())
        return (self._row(v) for v in self._cursor)

    def close(self) -> None:
        self._cursor.close()


class Connection:
    """A pooled psycopg connection with the surface of ``sqlite3.Connection`` the store
    uses: ``execute``, ``executemany``, ``in_transaction``, ``close``."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool = pool_for(url)
        try:
            self._conn: psycopg.Connection[Any] | None = self._pool.getconn()
        except Exception as exc:
            raise StoreError(
                f"{redact(url)}: cannot connect to the store: {_first_line(exc)}"
            ) from None

    @property
    def raw(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise StoreError(f"{redact(self.url)}: the store is closed")
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor:
        text, numbered, hidden = translate(sql)
        cursor = self.raw.cursor()
        cursor.execute(text, _params(params, numbered))
        return Cursor(cursor, hidden)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Cursor:
        text, numbered, hidden = translate(sql)
        cursor = self.raw.cursor()
        cursor.executemany(text, [_params(p, numbered) for p in seq])
        return Cursor(cursor, hidden)

    def script(self, sql: str) -> None:
        """Run a script of PostgreSQL statements as it is (no translation)."""
        self.raw.execute(sql.encode("utf-8"))

    @property
    def in_transaction(self) -> bool:
        if self._conn is None:
            return False
        return self._conn.info.transaction_status != pq.TransactionStatus.IDLE

    def commit(self) -> None:
        if self.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.putconn(conn)

    def __del__(self) -> None:
        # a store dropped without close(), as a SQLite one may be: its connection ends
        conn, self._conn = getattr(self, "_conn", None), None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _value(v: Any) -> Any:
    return int(v) if isinstance(v, bool) else v  # SQLite keeps booleans as 0/1


def _params(params: Sequence[Any] | Mapping[str, Any], numbered: bool) -> Any:
    if isinstance(params, Mapping):
        return {k: _value(v) for k, v in params.items()}
    if numbered:
        return {f"p{i}": _value(v) for i, v in enumerate(params, start=1)}
    return [_value(v) for v in params]


# -- translation ----------------------------------------------------------------------------

_TOKENS = re.compile(
    r"""('(?:[^']|'')*')"""  # a string literal
    r"""|("(?:[^"]|"")*")"""  # a quoted name
    r"|(--[^\n]*)"  # a comment
    r"|(\$\$.*?\$\$)",  # a dollar-quoted body (the store's own PostgreSQL functions)
    re.DOTALL,
)
_PLACEHOLDER = re.compile(r"(?<![:\w])(\?(\d+)?|:([A-Za-z_]\w*))")
_REWRITES: list[tuple[re.Pattern[str], str]] = [
    # membership in a JSON array parameter (SQLite's one way to bind a list): a native
    # array, so the planner uses the column's index and, the parameter known, sees the
    # list itself (json_each's rows, or an ARRAY(SELECT …), are opaque to it)
    (re.compile(r"\bNOT\s+IN\s*\(\s*SELECT\s+value\s+FROM\s+json_each\(\s*(\?|:\w+)\s*\)\s*\)",
                re.I), r"<> ALL (regard_text_array(\1))"),
    (re.compile(r"\bIN\s*\(\s*SELECT\s+value\s+FROM\s+json_each\(\s*(\?|:\w+)\s*\)\s*\)", re.I),
     r"= ANY (regard_text_array(\1))"),
    (re.compile(r"\bIS\s+NOT\s+(?!NULL\b|DISTINCT\b|TRUE\b|FALSE\b)", re.I), "IS DISTINCT FROM "),
    (re.compile(r"\bIS\s+(?!NOT\b|NULL\b|DISTINCT\b|TRUE\b|FALSE\b)", re.I), "IS NOT DISTINCT FROM "),
    (re.compile(r"\btemp\.", re.I), "pg_temp."),
    (re.compile(r"\bmain\.", re.I), ""),
    (re.compile(r"\bBEGIN\s+IMMEDIATE\b", re.I), "BEGIN"),
    (re.compile(r"\s+(NOT\s+INDEXED|INDEXED\s+BY\s+\w+)\b", re.I), ""),  # SQLite's planner hints
    (re.compile(r"\s+COLLATE\s+NOCASE\b", re.I), ""),
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.I),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
]  # fmt: skip
_ROWID = re.compile(r"\browid\b", re.I)


@lru_cache(maxsize=4096)
def translate(sql: str) -> tuple[str, bool, frozenset[str]]:
    """A statement of the store (SQLite's spelling) in PostgreSQL's, whether its
    placeholders are numbered (``?NNN``: the parameters become a mapping), and the columns
    to leave out of its rows (``rowid``, which PostgreSQL tables carry as a real column
    where the store orders by insertion, unless the statement names it)."""
    out: list[str] = []
    numbered = False
    position = 0
    for match in _TOKENS.finditer(sql):
        code = sql[position : match.start()]
        piece, n = _code(code)
        numbered = numbered or n
        out.append(piece)
        out.append(match.group(0).replace("%", "%%"))
        position = match.end()
    piece, n = _code(sql[position:])
    out.append(piece)
    numbered = numbered or n
    hidden = frozenset() if _ROWID.search(sql) else frozenset({"rowid"})
    return "".join(out), numbered or False, hidden


def _code(code: str) -> tuple[str, bool]:
    code = code.replace("%", "%%")
    for pattern, replacement in _REWRITES:
        code = pattern.sub(replacement, code)
    numbered = False

    def placeholder(m: re.Match[str]) -> str:
        nonlocal numbered
        if m.group(3):
            return f"%({m.group(3)})s"
        if m.group(2):
            numbered = True
            return f"%(p{m.group(2)})s"
        return "%s"

    return _PLACEHOLDER.sub(placeholder, code), numbered


# -- pools ----------------------------------------------------------------------------------


class _NumericLoader(psycopg.adapt.Loader):
    """``numeric`` (``sum`` of integers, ``avg``, literals) as SQLite gives it: an int when
    whole, else a float."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode("ascii")
        if "." in text or "e" in text or "E" in text or text in ("NaN", "Infinity", "-Infinity"):
            return float(text)
        return int(text)


class Pool:
    """The open connections of one process to one database, kept for the next store.

    A store takes one (made then, in the caller's thread, when none is idle) and gives it
    back on close; up to ``POOL_SIZE`` idle ones are kept. No background threads: a bad
    URL or password is the caller's error at once (``cannot connect …``), not a timeout
    after retries, and nothing runs behind the process's back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def getconn(self) -> psycopg.Connection[Any]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE:
                return conn
            with contextlib.suppress(Exception):
                conn.close()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        conn.adapters.register_loader("numeric", _NumericLoader)
        # a store dropped without close() (as a SQLite one may be) ends its connection
        # quietly, even when the store and the connection are collected together
        weakref.finalize(conn, conn.pgconn.finish)
        return conn

    def putconn(self, conn: psycopg.Connection[Any]) -> None:
        try:
            _reset(conn)
        except Exception:
            with contextlib.suppress(Exception):
                conn.close()
            return
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()


_POOLS: dict[str, Pool] = {}
_POOLS_LOCK = threading.Lock()


def _reset(conn: psycopg.Connection[Any]) -> None:
    """A connection back in the pool forgets what one store did with it."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
    conn.execute("SELECT pg_advisory_unlock_all()")
    conn.execute("DISCARD TEMP")


def pool_for(url: str) -> Pool:
    """The process's pool of connections to ``url`` (made on first use)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(url)
        if pool is None:
            pool = _POOLS[url] = Pool(url)
        return pool


def close_pools(url: str | None = None) -> None:
    """Close the idle connections to ``url`` (to every database when None)."""
    with _POOLS_LOCK:
        urls = list(_POOLS) if url is None else [u for u in _POOLS if u == url]
        pools = [_POOLS.pop(u) for u in urls]
    for pool in pools:
        pool.close()
