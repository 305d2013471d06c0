"""A private PostgreSQL cluster for the tests: the distribution's server binaries, a data
folder in a temporary directory, a free port on 127.0.0.1 and the unix socket beside the
data. One cluster per test session (:func:`cluster`), a fresh database per test
(:meth:`Cluster.database`, copied from a migrated template with ``CREATE DATABASE …
TEMPLATE``, which takes milliseconds).

``initdb`` refuses to run as root: as root, the cluster belongs to the unprivileged user
``REGARD_TEST_PG_USER`` (default ``nobody``) and its programs run through ``runuser``.
Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): a test's
database is thrown away with the cluster.

A cluster never outlives its session, even one killed with SIGKILL (no ``atexit``
then): a small watchdog process (``python pg.py watch PID ROOT …``, in a session of its
own so a signal to pytest's process group spares it) waits for the pytest process to end
and then stops the cluster and removes its folder. Should the watchdog die too, the next
session's first cluster stops and removes every cluster whose owner (``ROOT/owner``: pid
and start time) is gone (:func:`sweep`).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TEMPLATE = "regard_template"


def server_bin() -> Path | None:
    """The folder of the newest installed PostgreSQL server's programs (``pg_ctl``)."""
    found = os.environ.get("REGARD_TEST_PG_BIN")
    if found:
        return Path(found)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One running private cluster; ``url(db)`` is a ``postgresql://`` URL for a database."""

    def __init__(self) -> None:
        bindir = server_bin()
        if bindir is None:
            raise RuntimeError(
                "no PostgreSQL server found (install the distribution's `postgresql` package)"
            )
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="regard-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres"
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            owner = os.environ.get("REGARD_TEST_PG_USER", "nobody")
            shutil.chown(self.root, user=owner)
            self.root.chmod(0o755)
            self._prefix = ["runuser", "-u", owner, "--"]
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=400",
                "-c shared_buffers=64MB",
            ]
        )
        (self.root / "owner").write_text(_identity(os.getpid()), encoding="ascii")
        # watching before the server starts: a kill at any later moment is seen
        self.watchdog = subprocess.Popen(
            [sys.executable, __file__, "watch", str(os.getpid()), str(self.root), *self._stop_command()],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-o", options, "-w", "-t", "300", "start",
        )  # fmt: skip
        self._template_ready = False

    def _stop_command(self) -> list[str]:
        return [*self._prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]  # fmt: skip

    def _run(self, program: str, *args: str) -> None:
        command = [*self._prefix, str(self.bindir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({done.returncode}): {done.stderr or done.stdout}"
            )

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]

    def _ensure_template(self) -> None:
        """The template database, brought to the current schema by opening it as a store
        once; every test's database is a copy of it."""
        if self._template_ready:
            return
        self._admin(f"CREATE DATABASE {TEMPLATE}")
        from regard.store import open_store
        from regard.store.backends.postgres import close_pools

        with open_store(self.url(TEMPLATE)):
            pass
        close_pools()  # CREATE DATABASE … TEMPLATE needs the template without connections
        self._template_ready = True

    def database(self) -> str:
        """A fresh, migrated, empty database; returns its URL."""
        with self._lock:
            self._ensure_template()
            name = f"t{os.getpid()}_{next(self._counter)}"
            self._admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop a test's database (closing whatever connections are left to it)."""
        from regard.store.backends.postgres import close_pools

        close_pools(url)
        name = url.rsplit("/", 1)[1]
        with contextlib.suppress(Exception):
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        self.watchdog.kill()  # this process stops the cluster itself
        self.watchdog.wait()
        _stop(self.root, self._stop_command())


_CLUSTER: Cluster | None = None


def cluster() -> Cluster:
    """The session's cluster, started on first use and stopped when the process exits
    (or, killed, by its watchdog); the clusters of sessions that are gone are swept first."""
    global _CLUSTER
    if _CLUSTER is None:
        sweep()
        _CLUSTER = Cluster()
        atexit.register(_CLUSTER.stop)
    return _CLUSTER


def wanted() -> bool:
    """Whether the tests run on PostgreSQL (``REGARD_TEST_STORE=postgresql``)."""
    return os.environ.get("REGARD_TEST_STORE", "sqlite").lower() in {"postgresql", "postgres", "pg"}


# -- no cluster outlives its session ----------------------------------------------------


def _identity(pid: int) -> str:
    """``PID STARTTIME``: a process, told apart from a later one that reuses its pid (the
    start time in clock ticks since boot, field 22 of /proc/PID/stat); empty when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return ""
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def _stop(root: Path, command: list[str]) -> None:
    """Stop the cluster in ``root`` (``command``: its ``pg_ctl … stop``) and remove it."""
    if (root / "data" / "postmaster.pid").exists():
        with contextlib.suppress(Exception):
            subprocess.run(command, capture_output=True, timeout=120, check=False, cwd="/")
    shutil.rmtree(root, ignore_errors=True)


def sweep() -> list[Path]:
    """Stop and remove the clusters (folders ``regard-pg-*`` of the temporary directory)
    whose owning process has ended without stopping them; returns their folders. A folder
    without an ``owner`` file is left alone: it cannot be told whether its owner lives."""
    swept = []
    for root in Path(tempfile.gettempdir()).glob("regard-pg-*"):
        try:
            owner = (root / "owner").read_text(encoding="ascii").split()
        except OSError:
            continue
        if len(owner) != 2 or not owner[0].isdigit() or _identity(int(owner[0])) == " ".join(owner):
            continue
        prefix: list[str] = []
        if os.geteuid() == 0 and (root / "data").exists():
            prefix = ["runuser", "-u", str((root / "data").owner()), "--"]
        bindir = server_bin()
        pg_ctl = str(bindir / "pg_ctl") if bindir else "pg_ctl"
        _stop(root, [*prefix, pg_ctl, "-D", str(root / "data"), "-m", "immediate", "-w", "stop"])
        swept.append(root)
    return swept


def watch(parent: int, root: Path, command: list[str]) -> None:
    """The watchdog: wait until process ``parent`` has ended, then stop the cluster in
    ``root`` with ``command`` and remove the folder."""
    try:
        handle: int | None = os.pidfd_open(parent)
    except ProcessLookupError:
        handle = None  # already gone
    except OSError:  # no pidfd (an old kernel): watch for being handed to another parent
        while os.getppid() == parent:
            time.sleep(0.5)
        handle = None
    if handle is not None and os.getppid() == parent:  # else: gone before the handle
        select.select([handle], [], [])  # readable once the process has ended
    _stop(root, command)


if __name__ == "__main__" and sys.argv[1:2] == ["watch"]:
    watch(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
