"""A private PostgreSQL cluster for the tests: the distribution's server binaries, a data
folder in a temporary directory, a free port on 127.0.0.1 and the unix socket beside the
data. One cluster per test session (:func:`cluster`), a fresh database per test
(:meth:`Cluster.database`, copied from a migrated template with ``CREATE DATABASE …
TEMPLATE``, which takes milliseconds).

``initdb`` refuses to run as root: as root, the cluster belongs to the unprivileged user
``REGARD_TEST_PG_USER`` (default ``nobody``) and its programs run through ``runuser``.
Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): a test's
database is thrown away with the cluster.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
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
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        self._template_ready = False

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
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


_CLUSTER: Cluster | None = None


def cluster() -> Cluster:
    """The session's cluster, started on first use and stopped when the process exits."""
    global _CLUSTER
    if _CLUSTER is None:
        _CLUSTER = Cluster()
        atexit.register(_CLUSTER.stop)
    return _CLUSTER


def wanted() -> bool:
    """Whether the tests run on PostgreSQL (``REGARD_TEST_STORE=postgresql``)."""
    return os.environ.get("REGARD_TEST_STORE", "sqlite").lower() in {"postgresql", "postgres", "pg"}
