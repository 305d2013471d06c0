"""Shared fixtures: real SQLite files in tmp_path, the real CLI through CliRunner or a
subprocess, and a workspace with a config that delivers to a file provider.

With ``REGARD_TEST_STORE=postgresql`` the ``workspace`` and ``store`` fixtures use a fresh
database of a private PostgreSQL cluster (tests/pg.py) instead of a SQLite file; tests
that read the SQLite file itself are marked ``sqlite_only`` and skipped there. ``pg_url``
is a fresh PostgreSQL database whatever the setting."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

import pg
from regard.cli import cli
from regard.store import Store, open_store

SRC = Path(__file__).resolve().parent.parent / "src"

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("thorough", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

BASIC_CONFIG = """\
timezone = "Europe/Berlin"
locale = "de"
currency = "EUR"
store = "regard.db"
campaigns = "campaigns"
templates = "templates"

[sender]
name = "Blumen Rosa GmbH"
email = "hallo@blumen-rosa.de"
street = "Lindenstraße 5"
postal_code = "10969"
city = "Berlin"
country = "DE"

[providers.outbox]
type = "file"
path = "outbox/messages.jsonl"
"""


class Workspace:
    """A folder with regard.toml, campaigns/ and templates/, and helpers to drive the CLI.

    ``store_url``, when set, is the PostgreSQL database the workspace's store lives in: a
    ``regard.toml`` written through :meth:`write` with ``store = "regard.db"`` gets it."""

    def __init__(self, root: Path, store_url: str | None = None) -> None:
        self.root = root
        self.config = root / "regard.toml"
        self.store_url = store_url
        (root / "campaigns").mkdir(exist_ok=True)
        (root / "templates").mkdir(exist_ok=True)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = textwrap.dedent(text)
        if self.store_url and relative == "regard.toml":
            text = text.replace('store = "regard.db"', f'store = "{self.store_url}"', 1)
        path.write_text(text, encoding="utf-8")
        return path

    @property
    def store_target(self) -> str | Path:
        """What ``open_store`` opens for this workspace: its database URL or file."""
        return self.store_url or self.root / "regard.db"

    def cli(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """Run the real CLI in-process against this workspace's config."""
        runner = CliRunner()
        return runner.invoke(
            cli, ["--config", str(self.config), *args], input=input, env=env, catch_exceptions=False
        )

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def run(
        self, *args: str, timeout: float = 120, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``regard`` as a real subprocess (for crash, signal and race tests)."""
        return subprocess.run(
            [*regard_command("--config", str(self.config)), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=subprocess_env(),
            cwd=self.root,
            **kwargs,
        )

    def outbox(self) -> list[dict[str, Any]]:
        path = self.root / "outbox" / "messages.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def regard_command(*args: str) -> list[str]:
    """argv that runs this checkout's regard in a subprocess."""
    return [sys.executable, "-m", "regard", *args]


def child_processes(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (zombies too), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_regard(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``regard --config ROOT/regard.toml ARGS`` in its own process, in ROOT; its output."""
    return subprocess.run(
        regard_command("--config", str(root / "regard.toml"), *args),
        capture_output=True, text=True, env=subprocess_env(), cwd=root, timeout=timeout,
        check=False,
    )  # fmt: skip


@contextlib.contextmanager
def tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` (``64k``, ``1m``) mounted in ``tmp_path`` while the block runs,
    or a skip where nothing can be mounted (not root)."""
    where = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if pg.wanted():
        skip = pytest.mark.skip(reason="reads or writes the SQLite store file itself")
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated, empty PostgreSQL database of the session's private cluster
    (tests/pg.py); dropped after the test."""
    if pg.server_bin() is None:
        pytest.skip("no PostgreSQL server installed (.ci/run installs the distribution's)")
    cluster = pg.cluster()
    url = cluster.database()
    try:
        yield url
    finally:
        cluster.drop(url)


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL database of this test's store under ``REGARD_TEST_STORE=postgresql``,
    else None (a SQLite file in tmp_path)."""
    if not pg.wanted():
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def workspace(tmp_path: Path, store_url: str | None) -> Workspace:
    ws = Workspace(tmp_path, store_url)
    ws.write("regard.toml", BASIC_CONFIG)
    return ws


@pytest.fixture
def store(tmp_path: Path, store_url: str | None) -> Iterator[Store]:
    """A real, empty store (a file in tmp_path, or a PostgreSQL database under
    ``REGARD_TEST_STORE=postgresql``), closed after the test."""
    with open_store(store_url or tmp_path / "regard.db") as opened:
        yield opened


@pytest.fixture
def sink() -> Any:
    """A real HTTP server on 127.0.0.1 that records requests and answers from a script
    (tests/httpsink.py: ``sink.script(Answer(...))``, ``sink.requests``, ``sink.url``)."""
    from httpsink import Sink

    server = Sink()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def served() -> Iterator[Any]:
    """``served(config_path, server_table="", env=None)``: ``regard serve`` as a real
    subprocess on a free 127.0.0.1 port (tests/serve.py); stopped at teardown."""
    from serve import Served, start_serve

    started: list[Served] = []

    def start(config: Path, server_table: str = "", **kwargs: Any) -> Served:
        server = start_serve(config, server_table, **kwargs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(autouse=True)
def _fresh_handwrytten_countries() -> Iterator[None]:
    """Handwrytten's countries list is kept per base URL for a day; a test's fake server may
    get the port of an earlier test's, so each test starts without it."""
    from regard.providers.handwrytten import _COUNTRIES

    _COUNTRIES.clear()
    yield
    _COUNTRIES.clear()
