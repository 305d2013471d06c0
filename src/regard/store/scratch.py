"""The scratch copy ``regard simulate`` replays on, and what becomes of it.

The copy holds every contact of the store in the clear, so it must not outlive its run:

- it lives in a private folder (mode 0700) of the system's temporary folder (``$TMPDIR``,
  else ``/tmp``) named ``regard-simulate-<pid>-…``;
- it is removed when the run ends, fails, or is stopped with SIGTERM or Ctrl-C;
- a run killed outright (SIGKILL, a power cut) cannot clean up after itself, so every
  run first removes the folders of runs whose process is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from regard.config import is_store_url
from regard.processes import alive
from regard.store import Store, open_store
from regard.store.backtest import copy_store
from regard.store.copy import copy_rows
from regard.store.parts import Split, split_store

PREFIX = "regard-simulate-"


def remove_stale(folder: Path | None = None) -> list[Path]:
    """Remove the scratch folders of runs whose process is gone; returns them."""
    root = Path(folder or tempfile.gettempdir())
    removed = []
    for path in root.glob(f"{PREFIX}*"):
        pid = path.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class _Stopped(SystemExit):
    """SIGTERM during a replay: unwind, so the scratch copy is removed on the way out."""


@contextmanager
def _scratch_folder() -> Iterator[Path]:
    """A private folder for scratch copies (see the module docstring), removed afterwards
    whatever happens."""
    remove_stale()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def stop(signum: int, frame: FrameType | None) -> None:
            raise _Stopped(128 + signum)

        previous = signal.signal(signal.SIGTERM, stop)
    try:
        with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-") as folder:
            yield Path(folder)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _copy_from_url(source: str, path: Path) -> Store:
    """A PostgreSQL store copied into the SQLite file ``path`` (:mod:`regard.store.copy`),
    open."""
    store = open_store(path)
    try:
        with open_store(source) as live:
            copy_rows(live, store, check=False)  # thrown away after the replay
    except BaseException:
        store.close()
        raise
    return store


@contextmanager
def scratch_store(source: Path | str) -> Iterator[Store]:
    """A consistent copy of the store at ``source``, open, removed afterwards whatever
    happens (see the module docstring). A SQLite file is copied with SQLite's backup API;
    a PostgreSQL store (``source`` a URL) into a SQLite file by :mod:`regard.store.copy`,
    so the replay is as fast as on SQLite and never writes the live database."""
    with _scratch_folder() as folder:
        path = folder / "scratch.db"
        if is_store_url(source):
            store = _copy_from_url(str(source), path)
        else:
            copy_store(Path(source), path)
            store = open_store(path)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def scratch_parts(source: Path | str, parts: int) -> Iterator[Split]:
    """A consistent copy of the store at ``source`` split by contact into ``parts`` files
    (:mod:`regard.store.parts`), in a private folder removed afterwards whatever happens.
    A PostgreSQL store is copied into one SQLite file first, and that is split."""
    with _scratch_folder() as folder:
        if is_store_url(source):
            whole = folder / "scratch.db"
            _copy_from_url(str(source), whole).close()
            split = split_store(whole, folder, parts)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{whole}{suffix}").unlink(missing_ok=True)
        else:
            split = split_store(Path(source), folder, parts)
        yield split
