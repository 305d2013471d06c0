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
- ``store.reports``      the aggregates of the report and of ``status``
- ``store.backtests``    the scratch copy ``simulate`` replays on, and its summary
- ``store.inbound``      what each shop source received, per day
- ``store.settings``     what the server keeps (the generated link secret)

Writes go through :meth:`Store.write`, one ``BEGIN IMMEDIATE`` transaction (nested calls
are savepoints), so a failed import or tick leaves the store exactly as it was. Every
change of a delivery's state goes through :mod:`regard.store.lifecycle`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from regard.errors import StoreError
from regard.store.area import Area, address_hash
from regard.store.backtest import Backtests
from regard.store.contacts import Contacts
from regard.store.decisions import Decisions
from regard.store.deliveries import Deliveries
from regard.store.events import Events
from regard.store.inbound import Inbound
from regard.store.occasions import Occasions
from regard.store.reports import Reports
from regard.store.schema import MIGRATIONS
from regard.store.settings import Settings
from regard.store.suppressions import Suppressions
from regard.store.syncs import Syncs
from regard.store.ticks import Ticks

__all__ = ["Area", "Store", "address_hash", "open_store"]

BUSY_TIMEOUT_MS = 30_000


class Store:
    """An open store.

    ``conn`` is the SQLite connection (driver autocommit: transactions are explicit); only
    the store's own modules and tests that look at raw rows use it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
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
        self.backtests = Backtests(self)
        self.inbound = Inbound(self)
        self.settings = Settings(self)
        self.syncs = Syncs(self)

    def _open(self, path: str | Path) -> None:
        # autocommit at the driver level: transactions are explicit (write()), never implicit
        conn = sqlite3.connect(
            str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.create_function("address_hash", 1, _sql_address_hash, deterministic=True)
        # SQLite's lower() folds ASCII only; addresses are compared folded as Python folds them
        conn.create_function("lower_address", 1, _sql_lower_address, deterministic=True)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # erased personal data must not linger
        self.conn = conn
        self._migrate()

    def _migrate(self) -> None:
        with self.write():
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
            unknown = sorted(done - {name for name, _ in MIGRATIONS})
            if unknown:
                # a newer regard changed the schema: reading or writing it could corrupt it
                raise StoreError(
                    f"{self.path}: the store was written by a newer version of regard "
                    f"(unknown migration {', '.join(unknown)}); upgrade regard to use it"
                )
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(self.conn)
                    self.conn.execute(
                        "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                        (name, int(time.time())),
                    )

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); nested calls become savepoints.

        Whatever fails inside is rolled back and raised as it was: when SQLite has already
        ended the whole transaction (a full disk, an interrupt), the savepoint is gone too,
        and the original error, not "no such savepoint", is what the caller sees.
        """
        conn = self.conn
        if conn.in_transaction:
            name = f"sp_{id(conn)}_{time.monotonic_ns()}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    # the transaction may be gone already; the original error tells why
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                        conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            else:
                conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        self._begin()
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            self._rollback()
            if _is_read_only(exc):
                raise StoreError(f"{self.path}: cannot write the store: {_reason(exc)}") from None
            raise
        except BaseException:
            self._rollback()
            raise
        else:
            conn.execute("COMMIT")

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

    def _begin(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _is_read_only(exc):
                raise  # busy past the timeout, or a real fault: not the person's to fix here
            raise StoreError(f"{self.path}: cannot write the store: {_reason(exc)}") from None

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            # SQLite may have ended it already; the error being raised says why
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def checkpoint(self, attempts: int = 20) -> bool:
        """Checkpoint the WAL into the database and truncate it to zero bytes. Returns False
        when a reader kept it busy for every attempt (the next checkpoint will finish it)."""
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


def _is_read_only(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None) or 0
    return code & 0xFF == sqlite3.SQLITE_READONLY or "readonly" in str(exc)


def _reason(exc: sqlite3.Error) -> str:
    """What went wrong and what to do, for the errors a person can cause."""
    if _is_read_only(exc):
        return "it is read-only (check the permissions of the file and its folder)"
    if "not a database" in str(exc):
        return "the file is not a regard store (SQLite database); check `store` in the config"
    if "unable to open" in str(exc):
        return "cannot open the file (check that its folder exists and is writable)"
    return str(exc)


def _sql_address_hash(address: object) -> str | None:
    return address_hash(address) if isinstance(address, str) else None


def _sql_lower_address(address: object) -> str | None:
    return address.lower() if isinstance(address, str) else None


def open_store(path: str | Path) -> Store:
    """Open (creating if needed) the store at ``path`` and bring its schema up to date."""
    return Store(path)
