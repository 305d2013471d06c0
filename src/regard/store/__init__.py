"""The store: the one room of regard that speaks SQL.

Open it with :func:`open_store`; migrations run on open. Everything above the store talks
to it through its areas, each a small typed API whose docstrings are its contract:

- ``store.contacts``     contacts by id or address, as one flat mapping each
- ``store.events``       events by id
- ``store.occasions``    what the triggers find due, and the contacts as of an instant
- ``store.decisions``    what a tick needs to decide (caps, cooldowns) and its records
- ``store.deliveries``   claims, outcomes, pacing, listings
- ``store.suppressions`` unsubscribes and unreachable addresses
- ``store.ticks``        tick records and the daemon's record
- ``store.daemons``      the daemons running on the store, by their heartbeats
- ``store.reports``      the aggregates of the report and of ``status``
- ``store.backtests``    the scratch copy ``simulate`` replays on, and its summary
- ``store.inbound``      what each shop source received, per day
- ``store.settings``     what the server keeps (the generated link secret)

Writes go through :meth:`Store.write`, one ``BEGIN IMMEDIATE`` transaction (nested calls
are savepoints), so a failed import or tick leaves the store exactly as it was. Every
change of a delivery's state goes through :mod:`regard.store.lifecycle`.

The store is a SQLite file, or a PostgreSQL database (``open_store("postgresql://…")``;
:mod:`regard.store.backends`): the same areas, the same SQL, the same guarantees.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from regard.errors import StoreError
from regard.store.area import PSEUDONYM_KEY, Area, Pseudonyms
from regard.store.backends import Dialect, is_url, redact
from regard.store.backtest import Backtests
from regard.store.contacts import Contacts
from regard.store.daemons import Daemons
from regard.store.decisions import Decisions
from regard.store.deliveries import Deliveries
from regard.store.events import Events
from regard.store.inbound import Inbound
from regard.store.occasions import Occasions
from regard.store.pauses import Pauses
from regard.store.reports import Reports
from regard.store.rows import merge_patch
from regard.store.schema import MIGRATIONS
from regard.store.settings import Settings
from regard.store.suppressions import Suppressions, normal_address
from regard.store.syncs import Syncs
from regard.store.ticks import Ticks

__all__ = ["Area", "Pseudonyms", "Store", "fault_reason", "open_store", "remove_blank"]

BUSY_TIMEOUT_MS = 30_000
# the PostgreSQL advisory lock every write transaction holds: writers one at a time, as
# SQLite's BEGIN IMMEDIATE makes them (claims, which lock rows instead, do not take it)
WRITE_LOCK = "regard.write"


class Store:
    """An open store.

    ``conn`` is the SQLite connection (driver autocommit: transactions are explicit); only
    the store's own modules and tests that look at raw rows use it. On PostgreSQL it is a
    :class:`regard.store.backends.postgres.Connection`, with the same surface.

    ``dialect`` is ``"sqlite"`` or ``"postgresql"``; ``label`` names the store in messages
    (the file, or the URL without its password); ``path`` is the SQLite file (on
    PostgreSQL ``:memory:``, which the code that handles files treats as no file).
    """

    def __init__(self, path: str | Path) -> None:
        self.dialect: Dialect = "postgresql" if is_url(path) else "sqlite"
        self.label = redact(str(path)) if self.dialect == "postgresql" else str(path)
        self.path = Path(":memory:") if self.dialect == "postgresql" else Path(path)
        self._flat = False  # inside a write(flat=True): nested writes make no savepoints
        # called before each write transaction begins and after each commits (a tick's log
        # copier: regard.store.ticks)
        self.before_write: Callable[[], None] | None = None
        self.after_commit: Callable[[], None] | None = None
        if self.dialect == "postgresql":
            self._open_postgresql(str(path))
        elif str(path) != ":memory:":
            if self.path.is_dir():
                raise StoreError(
                    f"{path}: is a folder, not a store file (check `store` in the config)"
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"{path}: cannot create the store's folder {self.path.parent}: "
                    f"{exc.strerror or exc} (check `store` in the config)"
                ) from None
        if self.dialect == "sqlite":
            try:
                self._open(path)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{path}: cannot open the store: {_reason(exc)}") from None
        self.contacts = Contacts(self)
        self.events = Events(self)
        self.occasions = Occasions(self)
        self.decisions = Decisions(self)
        self.deliveries = Deliveries(self)
        self.suppressions = Suppressions(self)
        self.ticks = Ticks(self)
        self.reports = Reports(self)
        self.pauses = Pauses(self)
        self.backtests = Backtests(self)
        self.inbound = Inbound(self)
        self.settings = Settings(self)
        self.syncs = Syncs(self)
        self.daemons = Daemons(self)

    def _open(self, path: str | Path) -> None:
        # autocommit at the driver level: transactions are explicit (write()), never implicit
        conn = sqlite3.connect(
            str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        # addresses are compared in one normal form (SQLite's lower() folds ASCII only)
        conn.create_function("normal_address", 1, _sql_normal_address, deterministic=True)
        conn.create_function("lower_address", 1, _sql_normal_address, deterministic=True)
        conn.create_function("merge_patch", 2, merge_patch, deterministic=True)  # linear
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")  # once; it is kept in the file
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # erased personal data must not linger
        self.conn = conn
        self._migrate()
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (PSEUDONYM_KEY,)).fetchone()
        self.pseudonyms = Pseudonyms(bytes.fromhex(row[0]))
        conn.create_function("address_hash", 1, self._sql_address_hash, deterministic=True)

    def _open_postgresql(self, url: str) -> None:
        try:
            from regard.store.backends.postgres import Connection
        except ModuleNotFoundError as exc:  # psycopg comes with the extra only
            raise StoreError(
                "a PostgreSQL store needs its driver, which is not installed: "
                "pip install 'regard[postgresql]'"
            ) from exc

        conn = Connection(url)
        # the areas type their connection as sqlite3's: this one has the surface they use
        self.conn = cast(sqlite3.Connection, conn)
        try:
            self._migrate()
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (PSEUDONYM_KEY,)).fetchone()
        except BaseException:
            conn.close()
            raise
        assert row is not None
        self.pseudonyms = Pseudonyms(bytes.fromhex(row[0]))

    def _migrations_due(self) -> bool:
        """Whether any migration is still to apply, read without the write lock: a store
        that is up to date is never locked just by being opened (``status`` during a long
        import, a read-only copy being inspected)."""
        if self.dialect == "postgresql":
            from regard.store.backends import pg_schema

            found = self.conn.execute("SELECT to_regclass('migrations')").fetchone()
            if found is None or found[0] is None:
                return True
            version = self.conn.execute(
                "SELECT value FROM settings WHERE key = ?", (pg_schema.FUNCTIONS_KEY,)
            ).fetchone()
            if version is None or version[0] != pg_schema.FUNCTIONS_VERSION:
                return True
        try:
            done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
        except sqlite3.OperationalError:
            return True  # no migrations table yet: a new store
        return any(name not in done for name, _ in MIGRATIONS) or bool(
            done - {name for name, _ in MIGRATIONS}
        )

    def _migrate(self) -> None:
        if not self._migrations_due():
            return
        with self.write():
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
            unknown = sorted(done - {name for name, _ in MIGRATIONS})
            if unknown:
                # a newer regard changed the schema: reading or writing it could corrupt it
                raise StoreError(
                    f"{self.label}: the store was written by a newer version of regard "
                    f"(unknown migration {', '.join(unknown)}); upgrade regard to use it"
                )
            if self.dialect == "postgresql":
                done |= self._postgresql_baseline(done)
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(self.conn)
                    self.conn.execute(
                        "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                        (name, int(time.time())),
                    )

    def _postgresql_baseline(self, done: set[str]) -> set[str]:
        """PostgreSQL starts at the schema SQLite's migrations reach by
        ``BASELINE_THROUGH`` (:mod:`regard.store.backends.pg_schema`), made in one step;
        its SQL functions are (re)made on every migration. Returns the migrations the
        baseline stands for."""
        from regard.store.backends import pg_schema

        names = [name for name, _ in MIGRATIONS]
        covered = set(names[: names.index(pg_schema.BASELINE_THROUGH) + 1])
        conn: Any = self.conn
        # the functions may name tables the baseline is about to make
        conn.script("SET LOCAL check_function_bodies = off;\n" + pg_schema.FUNCTIONS)
        now = int(time.time())
        if not covered <= done:
            self._postgresql_tables(names, covered, now)
        conn.execute(
            "INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (pg_schema.FUNCTIONS_KEY, pg_schema.FUNCTIONS_VERSION, now),
        )
        return covered

    def _postgresql_tables(self, names: list[str], covered: set[str], now: int) -> None:
        from regard.store.backends import pg_schema

        conn: Any = self.conn
        conn.script(pg_schema.BASELINE)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            (PSEUDONYM_KEY, secrets.token_bytes(32).hex()),
        )
        conn.execute(
            "INSERT INTO settings (key, value, created_at) VALUES ('server_secret', ?, ?)",
            (secrets.token_urlsafe(32), now),
        )
        conn.executemany(
            "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
            [(name, now) for name in names if name in covered],
        )

    def aborted(self, exc: BaseException) -> bool:
        """True when ``exc`` is PostgreSQL ending a transaction that may simply be run again:
        a deadlock it broke (SQLSTATE 40P01) or a serialisation failure (40001). SQLite
        never aborts a transaction this way (one writer at a time)."""
        return self.dialect == "postgresql" and getattr(exc, "sqlstate", None) in {
            "40P01",
            "40001",
        }

    @contextmanager
    def advisory_lock(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the store-wide lock ``name`` while the block runs (one tick at a time on a
        store that many daemons share). On PostgreSQL a session-level advisory lock
        (``pg_advisory_lock``): it ends with the block, or with the connection when the
        process dies. ``wait=False``: yields False at once when another holds it. On SQLite
        there is nothing to share with (one daemon per store file): always True."""
        if self.dialect == "sqlite":
            yield True
            return
        key = _lock_key(name)
        if wait:
            self.conn.execute("SELECT pg_advisory_lock(?)", (key,))
            got = True
        else:
            row = self.conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()
            got = bool(row and row[0])
        try:
            yield got
        finally:
            if got:
                self.conn.execute("SELECT pg_advisory_unlock(?)", (key,))

    @contextmanager
    def write(self, *, shared: bool = False, flat: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); nested calls become savepoints.

        On PostgreSQL, ``BEGIN`` and the store-wide write lock (an advisory lock held to
        the end of the transaction, sent with the ``BEGIN`` in one message), so writers
        take turns as on SQLite. ``shared=True`` leaves that lock out: the transaction
        locks the rows it changes instead (claims, ``SELECT … FOR UPDATE SKIP LOCKED``;
        a dispatch's outcomes, guarded by the claim's owner), so several daemons claim
        and record side by side. SQLite has one writer at a time whatever ``shared`` says.

        ``flat=True`` (on the outermost call): the writes nested in the block join its
        transaction without savepoints of their own; whatever fails in it rolls the whole
        transaction back (a batch of outcomes recorded together, where nothing catches a
        failure half-way). A round trip less per nested write on PostgreSQL.

        Whatever fails inside is rolled back and raised as it was: when SQLite has already
        ended the whole transaction (a full disk, an interrupt), the savepoint is gone too,
        and the original error, not "no such savepoint", is what the caller sees.
        """
        conn = self.conn
        if conn.in_transaction and self._flat:
            yield conn  # part of the enclosing flat transaction: it fails as one
            return
        if conn.in_transaction:
            name = f"sp_{id(conn)}_{time.monotonic_ns()}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    # the transaction may be gone already; the original error tells why
                    with contextlib.suppress(Exception):  # sqlite3's or psycopg's
                        conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                        conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            else:
                conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        if self.before_write is not None:
            self.before_write()
        self._begin(serialised=not shared)
        self._flat = flat
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            self._rollback()
            if _is_read_only(exc) or _is_fault(exc):
                raise StoreError(
                    f"{self.label}: cannot write the store: {_reason(exc)}"
                    + ("; nothing of this change was written" if _is_fault(exc) else "")
                ) from None
            raise
        except BaseException:
            self._rollback()
            raise
        else:
            conn.execute("COMMIT")
            if self.after_commit is not None:
                self.after_commit()
        finally:
            self._flat = False

    @contextmanager
    def rolled_back(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that is always rolled back: ``plan`` and ``--dry-run`` run the
        real tick inside one, so they share its code path and write nothing."""
        conn = self.conn
        self._begin()
        try:
            yield conn
        finally:
            self._rollback()

    def _begin(self, *, serialised: bool = True) -> None:
        if self.dialect == "postgresql":
            if serialised:  # one message, one round trip
                conn: Any = self.conn
                conn.script(f"BEGIN; SELECT pg_advisory_xact_lock({_lock_key(WRITE_LOCK)})")
            else:
                self.conn.execute("BEGIN")
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _is_read_only(exc):
                raise  # busy past the timeout, or a real fault: not the person's to fix here
            raise StoreError(f"{self.label}: cannot write the store: {_reason(exc)}") from None

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            # SQLite may have ended it already; the error being raised says why
            with contextlib.suppress(Exception):  # sqlite3's or psycopg's
                self.conn.execute("ROLLBACK")

    def _sql_address_hash(self, address: object) -> str | None:
        return self.pseudonyms.address(address) if isinstance(address, str) else None

    def is_blank(self) -> bool:
        """Whether nothing was ever written to the store but its schema: no contact, event,
        delivery, suppression, erasure, tick or kept value."""
        tables = ("contacts", "events", "deliveries", "suppressions", "forgotten", "ticks")
        written = any(
            self.conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in tables
        )
        kept = self.conn.execute("SELECT 1 FROM meta WHERE key != ?", (PSEUDONYM_KEY,))
        return not written and kept.fetchone() is None

    def checkpoint(self, attempts: int = 20) -> bool:
        """Checkpoint the WAL into the database and truncate it to zero bytes. Returns False
        when a reader kept it busy for every attempt (the next checkpoint will finish it).
        PostgreSQL has no such file: True."""
        if self.dialect == "postgresql":
            return True
        for _ in range(attempts):
            busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if busy == 0:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_key(name: str) -> int:
    """The 64-bit advisory-lock key of a lock name (stable across processes)."""
    return zlib.crc32(name.encode("utf-8")) | (0x5245 << 32)  # "RE": regard's own keys


def _is_read_only(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None) or 0
    return code & 0xFF == sqlite3.SQLITE_READONLY or "readonly" in str(exc)


# what a store's file system or file can do wrong: SQLite's primary result codes
_FAULTS = {
    sqlite3.SQLITE_FULL: "the disk holding it is full (free some space, then run the command "
    "again)",
    sqlite3.SQLITE_CORRUPT: "the store file is damaged (restore it from a backup, "
    "docs/operations.md)",
    sqlite3.SQLITE_NOTADB: "the file is not a regard store (SQLite database); check `store` "
    "in the config",
    sqlite3.SQLITE_IOERR: "the disk holding it failed to read or write (check the disk)",
}


def _is_fault(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and code is not None and code & 0xFF in _FAULTS


def fault_reason(exc: BaseException) -> str | None:
    """What a person is told of ``exc`` when it is a fault of the store's disk or file (a
    full disk, a damaged page, an I/O error) reached outside a write: None for anything
    else (a bug, raised as it is)."""
    return _reason(exc) if _is_fault(exc) else None  # type: ignore[arg-type]


def _reason(exc: sqlite3.Error) -> str:
    """What went wrong and what to do, for the errors a person can cause."""
    if _is_fault(exc):
        return f"{_FAULTS[exc.sqlite_errorcode & 0xFF]} ({exc})"
    if _is_read_only(exc):
        return "it is read-only (check the permissions of the file and its folder)"
    if "not a database" in str(exc):
        return "the file is not a regard store (SQLite database); check `store` in the config"
    if "unable to open" in str(exc):
        return "cannot open the file (check that its folder exists and is writable)"
    return str(exc)


def _sql_normal_address(address: object) -> str | None:
    return normal_address(address) if isinstance(address, str) else None


def open_store(path: str | Path) -> Store:
    """Open (creating if needed) the store at ``path`` and bring its schema up to date.

    ``path`` is a SQLite file, or a ``postgresql://`` (``postgres://``) URL of an existing
    database (its tables are made on first open)."""
    return Store(path)


def remove_blank(store: Store) -> bool:
    """Close ``store`` and, when nothing but its schema was ever written to it, delete its
    files (the database, its WAL and shared-memory files). A command that only reads, or
    an import that failed, must not leave an empty store behind. Returns True when it
    removed them."""
    blank = store.dialect == "sqlite" and str(store.path) != ":memory:" and store.is_blank()
    store.close()
    if blank:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{store.path}{suffix}").unlink()
    return blank
