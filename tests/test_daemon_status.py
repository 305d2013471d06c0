"""``regard status`` over a store in every situation a monitoring check meets, and the
daemon lock that keeps one daemon per store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import subprocess_env
from regard.daemon.lock import DaemonAlreadyRunning, DaemonLock, lock_path
from regard.daemon.presence import DaemonRecord, write_record
from regard.store import Store, open_store
from regard.times import to_epoch, utcnow
from regard.workspace import load_config


def add_tick(
    store: Store, kind: str, started_at: int, result: dict[str, Any] | None, finished: bool = True
) -> None:
    finished_at = started_at + 2 if finished else None
    with store.write() as conn:
        conn.execute(
            "INSERT INTO ticks (kind, at, started_at, finished_at, pid, result) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (kind, started_at, started_at, finished_at, 4242, json.dumps(result)),
        )


def add_delivery(
    store: Store, n: int, state: str, provider: str, reason: str | None = None
) -> None:
    now = to_epoch(utcnow())
    with store.write() as conn:
        conn.execute(
            "INSERT INTO deliveries (id, campaign, contact_id, occasion, channel, provider, state, "
            "reason, due_at, created_at, updated_at, attempts) "
            "VALUES (?, 'thank-you', ?, 'o', 'email', ?, ?, ?, ?, ?, ?, 3)",
            (f"d_{n:04d}", f"c{n}", provider, state, reason, now, now, now + n),
        )


@pytest.fixture
def store(workspace: Any) -> Iterator[Store]:
    text = workspace.config.read_text(encoding="utf-8")
    workspace.write("regard.toml", text + '\n[scheduler]\ninterval = "5m"\n')
    config = load_config(workspace.config)
    with open_store(config.store_target) as s:
        yield s


def status(workspace: Any, *args: str) -> tuple[int, dict[str, Any]]:
    result = workspace.cli("status", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_nothing_ever_ticked_is_unhealthy(workspace: Any, store: Store) -> None:
    code, report = status(workspace)
    assert code == 1
    assert report["mode"] == "none" and report["healthy"] is False
    assert "nothing has ticked" in report["problem"]
    text = workspace.cli("status")
    assert text.exit_code == 1 and "UNHEALTHY: nothing has ticked" in text.output


def test_healthy_daemon_reports_last_and_next_tick_backlog_and_dead_letters(
    workspace: Any, store: Store
) -> None:
    now = to_epoch(utcnow())
    write_record(store, DaemonRecord(4242, "shop-1", 300, now - 3600, now - 60, ticks=12))
    result = {"evaluated": 40, "enqueued": {"pending": 3, "skipped": 1}, "sent": 3, "failed": 1}
    add_tick(store, "daemon", now - 60, result)
    for n in range(3):
        add_delivery(store, n, "pending", "outbox")
    add_delivery(store, 3, "sending", "hooks")
    for n in range(4, 11):
        add_delivery(store, n, "dead", "postmark", f"HTTP 422: inactive recipient {n}")
    code, report = status(workspace)
    assert code == 0 and report["healthy"] is True and report["mode"] == "daemon"
    assert report["last_tick"]["kind"] == "daemon" and report["last_tick"]["result"] == result
    assert report["last_tick"]["duration"] == 2
    assert report["next_tick"] is not None and report["next_tick"] > report["last_tick"]["at"]
    assert report["backlog"] == {
        "pending": {"outbox": 3},
        "sending": {"hooks": 1},
        "unconfirmed": {},
    }
    assert report["providers_failing"] == []
    dead = report["dead_letters"]
    assert dead["count"] == 7 and len(dead["latest"]) == 5
    assert dead["latest"][0]["delivery_id"] == "d_0010"  # the latest first
    assert dead["latest"][0]["reason"] == "HTTP 422: inactive recipient 10"
    assert report["daemon"]["pid"] == 4242 and report["daemon"]["interval"] == "5m"

    text = workspace.cli("status", "--dead", "2")
    assert text.exit_code == 0, text.output
    assert "running, pid 4242 on shop-1, every 5m" in text.output
    assert (
        "evaluated 40, enqueued 3 pending, 1 skipped; sent 3, to retry 0, failed 1" in text.output
    )
    assert "pending 3 (outbox 3); sending 1 (hooks 1)" in text.output
    assert "Dead letters: 7" in text.output and "inactive recipient 10" in text.output
    assert "inactive recipient 8" not in text.output
    assert "Health:       OK" in text.output


def test_stale_daemon_exits_1_and_says_since_when(workspace: Any, store: Store) -> None:
    now = to_epoch(utcnow())
    write_record(store, DaemonRecord(4242, "shop-1", 300, now - 7200, now - 16 * 60))
    add_tick(store, "daemon", now - 16 * 60, {"evaluated": 1})
    code, report = status(workspace)
    assert code == 1 and report["healthy"] is False and report["next_tick"] is None
    assert "more than 15m" in report["problem"] and "16m ago" in report["problem"]
    assert "pid 4242 on shop-1 is not ticking" in report["problem"]
    # a wider limit makes the same store healthy
    assert status(workspace, "--max-age", "1h")[0] == 0


def test_a_tick_that_never_finished_is_named(workspace: Any, store: Store) -> None:
    now = to_epoch(utcnow())
    write_record(store, DaemonRecord(4242, "shop-1", 60, now - 7200, now - 600))
    add_tick(store, "daemon", now - 600, None, finished=False)
    code, report = status(workspace)
    assert code == 1 and "never finished that tick" in report["problem"]
    assert report["last_tick"]["finished_at"] is None and report["last_tick"]["duration"] is None
    text = workspace.cli("status")
    # pid 4242 is not a process of this machine: the tick was interrupted, not running
    assert report["last_tick"]["state"] == "interrupted"
    assert "never finished: its process is gone" in text.output


def test_stopped_daemon_is_stale_unless_cron_took_over(workspace: Any, store: Store) -> None:
    now = to_epoch(utcnow())
    record = DaemonRecord(4242, "shop-1", 60, now - 7200, now - 3600)
    write_record(store, record.stopped(now - 3600))
    add_tick(store, "daemon", now - 3660, {})
    code, report = status(workspace)
    assert code == 1 and "it was stopped at" in report["problem"]
    add_tick(store, "run", now - 30, {"sent": 2})
    code, report = status(workspace)
    assert code == 0 and report["mode"] == "cron" and report["last_tick"]["kind"] == "run"


def test_cron_only_store_is_healthy_unless_max_age_is_exceeded(
    workspace: Any, store: Store
) -> None:
    now = to_epoch(utcnow())
    add_tick(store, "run", now - 7200, {"sent": 1})
    add_tick(store, "dry-run", now - 10, {})
    code, report = status(workspace)
    assert code == 0 and report["mode"] == "cron" and report["daemon"] is None
    assert report["last_tick"]["kind"] == "run"  # a dry run is not a tick that counts
    code, report = status(workspace, "--max-age", "1h")
    assert code == 1 and "2h ago" in report["problem"]
    assert workspace.cli("status", "--max-age", "soon").exit_code == 2


def test_second_lock_on_one_store_is_refused_with_the_holders_pid(tmp_path: Any) -> None:
    store_path = tmp_path / "regard.db"
    with DaemonLock(store_path):
        with pytest.raises(DaemonAlreadyRunning) as err:
            DaemonLock(store_path).acquire()
        assert str(store_path) in str(err.value) and f"pid {os.getpid()}" in str(err.value)
    with DaemonLock(store_path):  # released: free again
        pass


@pytest.mark.slow
def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Any) -> None:
    store_path = tmp_path / "regard.db"
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from regard.daemon.lock import DaemonLock;"
            f"DaemonLock(Path({str(store_path)!r})).acquire(); print('locked', flush=True);"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            with pytest.raises(DaemonAlreadyRunning, match=f"pid {holder.pid}"):
                DaemonLock(store_path).acquire()
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
    assert lock_path(store_path).exists()
    deadline = time.monotonic() + 5
    while True:
        try:
            with DaemonLock(store_path):
                break
        except DaemonAlreadyRunning:
            assert time.monotonic() < deadline
            time.sleep(0.05)
