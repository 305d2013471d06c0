"""One daemon per store: an exclusive ``flock`` on ``<store>.daemon.lock``.

The kernel releases the lock when the process dies, however it dies, so a crashed daemon
never leaves a stale lock behind; the file itself stays (unlinking lock files races) and
holds the pid of the daemon that last took it, for the message a second daemon prints.
``regard run`` does not take this lock: claims in the store keep it safe beside a daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from regard.errors import RegardError


class DaemonAlreadyRunning(RegardError):
    """Another daemon holds the store's lock (exit status 1)."""


def lock_path(store_path: Path) -> Path:
    """The lock file of the store at ``store_path``."""
    return store_path.with_name(store_path.name + ".daemon.lock")


class DaemonLock:
    """The store's daemon lock; ``acquire`` raises DaemonAlreadyRunning if it is held."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path
        self.path = lock_path(store_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise DaemonAlreadyRunning(
                f"{self.store_path}: a regard daemon ({who}) is already running on this store "
                f"(lock {self.path}); stop it first, or point this one at another store. "
                "`regard run` from cron is safe beside a running daemon."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
