"""The tests' private PostgreSQL cluster (tests/pg.py) never outlives its session: a real
pytest process holding a cluster is killed with SIGKILL (so no ``atexit`` runs), and the
cluster's server stops and its folder goes, by the watchdog; with the watchdog killed too,
by the next session's sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pg
from conftest import subprocess_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(pg.server_bin() is None, reason="no PostgreSQL server installed"),
]

TESTS = Path(__file__).resolve().parent
HOLDER = """\
import json, time
import pg

def test_hold_a_cluster():
    c = pg.cluster()
    c.database()
    postmaster = int((c.data / "postmaster.pid").read_text().split()[0])
    print("CLUSTER " + json.dumps(
        {"root": str(c.root), "postmaster": postmaster, "watchdog": c.watchdog.pid}
    ), flush=True)
    time.sleep(900)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "State:\tZ" not in Path(
        f"/proc/{pid}/status"
    ).read_text(encoding="ascii")


def wait_for(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"no {what} after {seconds:.0f} s"
        time.sleep(0.1)
    return found


def hold_a_cluster(tmp_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """A real pytest session whose one test holds the session's cluster; what it holds."""
    (tmp_path / "test_holder.py").write_text(HOLDER, encoding="utf-8")
    out = tmp_path / "holder.out"
    env = subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env["PYTHONPATH"]])
    with out.open("wb") as log:
        holder = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
             "--rootdir", str(tmp_path), str(tmp_path / "test_holder.py")],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )  # fmt: skip

    def started() -> str | None:
        assert holder.poll() is None, out.read_text(encoding="utf-8")
        lines = out.read_text(encoding="utf-8").splitlines()
        return next((line for line in lines if line.startswith("CLUSTER ")), None)

    # initdb and a first migrated database: long on a loaded machine
    line = wait_for(started, 600, "cluster from the holding session")
    held = json.loads(line.removeprefix("CLUSTER "))
    assert alive(held["postmaster"]) and Path(held["root"]).is_dir()
    return holder, held


def test_a_session_killed_with_sigkill_leaves_no_cluster_behind(tmp_path: Path) -> None:
    holder, held = hold_a_cluster(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    wait_for(lambda: not alive(held["postmaster"]), 300, "end of the server")
    wait_for(lambda: not Path(held["root"]).exists(), 300, "removal of the cluster's folder")
    wait_for(lambda: not alive(held["watchdog"]), 60, "end of the watchdog")


def test_a_cluster_whose_session_and_watchdog_were_killed_is_swept(tmp_path: Path) -> None:
    holder, held = hold_a_cluster(tmp_path)
    os.kill(held["watchdog"], signal.SIGKILL)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    assert alive(held["postmaster"]), "nothing left to sweep"
    assert Path(held["root"]) in pg.sweep()  # what the next session's first cluster does
    wait_for(lambda: not alive(held["postmaster"]), 300, "end of the server")
    assert not Path(held["root"]).exists()
