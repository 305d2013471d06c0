"""Tick records (one row per run, daemon tick and simulation), the daemon's record, and the
transactions of a tick: one tick at a time per store (:meth:`Ticks.exclusive`) and the
read snapshots it decides in (:meth:`Ticks.snapshot`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict

from regard.store.area import Area
from regard.times import Instant, now_instant

DAEMON_KEY = "daemon"  # the row of ``meta`` a daemon keeps about itself


class TickRow(TypedDict):
    """One tick as stored: instants in epoch seconds, ``result`` its JSON summary."""

    kind: str
    at: int
    started_at: int
    finished_at: int | None
    pid: int | None
    result: dict[str, Any] | None


def tick_lock_path(store_path: Path) -> Path:
    """The file whose ``flock`` makes ticks on the store at ``store_path`` take turns."""
    return store_path.with_name(store_path.name + ".tick.lock")


# SQLite's default: a connection checkpoints the write-ahead log after a commit leaves it
# this many pages long
AUTOCHECKPOINT = 1000
# during a tick the log is copied into the database by a thread of its own after every
# this many of the tick's commits (a big day's commits write a few MB of log each: a copy
# every 10–30 MB, none of them in its way; a small tick's few commits wait for no copy and
# its sync, its log is copied at its end)
TICK_COPY_COMMITS = 4
# a tick's page cache, in KiB (negative, as SQLite takes it): a batch's write of 4 MB of
# messages and the index pages it touches fits, where SQLite's 2 MB spilled them to the
# log before the commit (and wrote them again at it)
TICK_CACHE = -8192

# stores without a file (":memory:") take turns within the process
_MEMORY_LOCK = threading.Lock()


class Ticks(Area):
    """The ``ticks`` table, the daemon's row of ``meta``, and a tick's transactions."""

    _held = 0  # how deep this store object is inside exclusive() (it is re-entrant)
    alone = False  # nobody else writes the store (a replay's scratch copy)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One tick at a time on this store, across processes and threads: the block runs
        while no other tick runs, waiting for one that does to finish.

        A tick is several transactions (it decides in read snapshots, records in short
        write transactions), so two ticks must not interleave: the caps of one count the
        decisions of the other only once they are rows. On SQLite this is an exclusive
        ``flock`` on ``<store>.tick.lock`` beside the store file (the kernel releases it
        when its process dies, however it dies; the file stays and holds the pid that last
        took it); a store in memory takes a lock of the process; on PostgreSQL it is the
        advisory lock ``tick`` (:meth:`regard.store.Store.advisory_lock`), shared by every
        daemon on the database. Re-entrant for the same
        store object. Other writers (imports, webhooks, dispatch) never take it.
        """
        if self._held:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            return
        if self.store.dialect == "postgresql":
            # many daemons on one database: a session-level advisory lock, released with
            # the block or with the connection when the process dies
            with self.store.advisory_lock("tick"):
                self._held = 1
                try:
                    yield
                finally:
                    self._held = 0
            return
        path = self.store.path
        if str(path) == ":memory:":
            with _MEMORY_LOCK:
                self._held = 1
                try:
                    yield
                finally:
                    self._held = 0
            return
        lock = tick_lock_path(path)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the tick that holds it
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            self._held = 1
            try:
                with self._checkpoint_after():
                    yield
            finally:
                self._held = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextmanager
    def _checkpoint_after(self) -> Iterator[None]:
        """While a tick runs on a store others write too, its connection keeps a page cache
        of :data:`TICK_CACHE` and its commits copy nothing of the write-ahead log into the
        database themselves: a thread with a connection of its own does, passively, after
        every :data:`TICK_COPY_COMMITS`-th commit of the tick
        (:class:`_Copier`), and once more at the end. A big day writes hundreds of
        megabytes of messages; copied after the tick's own commits (SQLite's automatic
        checkpoint), each copy and sync of the database file came after a commit while the
        tick waited. Each copy stays bounded (a copy of the whole day at once made the
        system's write-back stall other writers for seconds). Other connections keep their
        own checkpoints; a passive one never waits for a lock nor makes a writer wait, and
        a commit is as safe without it (the log is the database until it is copied). A
        store nobody else writes (:attr:`alone`: a replay's scratch copy) keeps no log to
        copy (:meth:`~regard.store.backtest.Backtests.for_replay`)."""
        conn = self.conn
        if self.alone:  # a replay's scratch copy: its journal is in memory, nobody waits
            yield
            return
        cache = conn.execute("PRAGMA cache_size").fetchone()[0]
        conn.execute(f"PRAGMA cache_size = {TICK_CACHE}")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
        copier = _Copier(self.store.path, synchronous)
        self.store.after_commit, self.store.before_write = copier.nudge, copier.settle
        try:
            yield
        finally:
            self.store.after_commit = self.store.before_write = None
            copier.stop()
            conn.execute(f"PRAGMA cache_size = {cache}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT}")
            if not conn.in_transaction:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read snapshot: every query inside sees the store as it was at the first one,
        whatever other connections commit meanwhile, and no write lock is taken (WAL:
        writers go on beside it). Inside an open transaction (``plan``'s rolled-back one)
        it is that transaction. Keep it short: nothing is written inside."""
        conn = self.conn
        if conn.in_transaction:
            yield
            return
        # SQLite: deferred, a read transaction from its first SELECT; PostgreSQL: its
        # default (read committed) takes a new snapshot per statement, repeatable read one
        # for the whole transaction
        postgres = self.store.dialect == "postgresql"
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if postgres else "BEGIN")
        try:
            yield
        finally:
            if conn.in_transaction:
                with contextlib.suppress(Exception):
                    conn.execute("COMMIT")

    def start(self, kind: str, at: Instant) -> int:
        """Record that a tick of ``kind`` (run, daemon) at ``at`` starts now, in this
        process; returns its id. A tick that never finishes (killed) keeps no
        ``finished_at``, which is how ``status`` tells it."""
        with self.store.write() as conn:
            row = conn.execute(
                "INSERT INTO ticks (kind, at, started_at, pid) VALUES (?, ?, ?, ?) RETURNING id",
                (kind, at, now_instant(), os.getpid()),
            ).fetchone()
            return int(row[0])

    def finish(self, tick_id: int, result: dict[str, Any]) -> None:
        """Record that tick ``tick_id`` finished now, with its JSON summary."""
        with self.store.write() as conn:
            conn.execute(
                "UPDATE ticks SET finished_at = ?, result = ? WHERE id = ?",
                (now_instant(), json.dumps(result, ensure_ascii=False), tick_id),
            )

    def last(self, kinds: Sequence[str]) -> TickRow | None:
        """The latest started tick of one of ``kinds``, or None."""
        marks = ", ".join("?" * len(kinds))
        row = self.conn.execute(
            f"SELECT kind, at, started_at, finished_at, pid, result FROM ticks "
            f"WHERE kind IN ({marks}) ORDER BY started_at DESC, id DESC LIMIT 1",
            list(kinds),
        ).fetchone()
        if row is None:
            return None
        return TickRow(
            kind=row["kind"],
            at=row["at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            pid=row["pid"],
            result=json.loads(row["result"]) if row["result"] else None,
        )

    def write_daemon(self, record: dict[str, Any]) -> None:
        """Replace the store's daemon record (a JSON object)."""
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (DAEMON_KEY, json.dumps(record)),
            )

    def read_daemon(self) -> dict[str, Any] | None:
        """The store's daemon record, or None when no daemon ever ran on it."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (DAEMON_KEY,)).fetchone()
        if row is None:
            return None
        data: dict[str, Any] = json.loads(row[0])
        return data


class _Copier:
    """A thread that copies the write-ahead log of the store at ``path`` into the database
    (a passive checkpoint, on a connection of its own, as synchronous as the tick's) after
    every :data:`TICK_COPY_COMMITS`-th commit of the tick (:meth:`nudge`),
    until stopped. The copy runs in SQLite, without the interpreter's lock, while
    the tick decides its next batch; the tick's next write waits for a copy still running
    (:meth:`settle`, usually over by then), so that the log, copied whole, starts again
    from its beginning at that write instead of growing for the whole tick (copies begun
    at any moment rarely finish between two commits)."""

    def __init__(self, path: Path, synchronous: int) -> None:
        self._path, self._synchronous = path, synchronous
        self._commits = 0
        self._changed = threading.Condition()
        self._wanted = False  # a commit since the last copy began
        self._copying = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="regard-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """A commit was made: copy the log now, at every :data:`TICK_COPY_COMMITS`-th
        commit of the tick (a small tick's few commits wait for no copy and its sync)."""
        self._commits += 1
        if self._commits % TICK_COPY_COMMITS:
            return
        with self._changed:
            self._wanted = True
            self._changed.notify_all()

    def settle(self) -> None:
        """Wait for the copy the last commit asked for."""
        with self._changed:
            while (self._wanted or self._copying) and self._thread.is_alive():
                self._changed.wait(0.1)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self._path), isolation_level=None)
            conn.execute(f"PRAGMA synchronous = {int(self._synchronous)}")
        except sqlite3.Error:
            return  # the tick's own checkpoint at its end still copies the log
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._wanted or self._stopped)
                    if self._stopped:
                        return
                    self._wanted, self._copying = False, True
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                finally:
                    with self._changed:
                        self._copying = False
                        self._changed.notify_all()
        except sqlite3.Error:
            return  # as above: nothing is lost, the log is the database until it is copied
        finally:
            conn.close()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._thread.join()
