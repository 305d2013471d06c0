"""Many daemons on one store: each registers in ``store.daemons``, renews its heartbeat
and unregisters when it stops; ``regard status`` lists every live one. On SQLite the
one-daemon-per-store lock stays; on PostgreSQL there is none."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from regard.daemon.presence import DaemonRecord, write_record
from regard.store import Store, open_store
from regard.times import Instant, to_epoch, utcnow
from test_daemon_process import daemons, shop, sink, wait_for  # noqa: F401
from test_daemon_status import status


def test_register_heartbeat_unregister_and_live(store: Store) -> None:
    now = Instant(1_800_000_000)
    store.daemons.register("a:1:x", "a", 1, 60, Instant(now - 100))
    store.daemons.register("b:2:y", "b", 2, 300, now)
    assert [d["id"] for d in store.daemons.live(now)] == ["a:1:x", "b:2:y"]
    # a's heartbeat is 100 s old: live up to three of its 60 s intervals, then not
    assert [d["id"] for d in store.daemons.live(Instant(now - 100 + 3 * 60))] == [
        "a:1:x",
        "b:2:y",
    ]
    assert [d["id"] for d in store.daemons.live(Instant(now - 100 + 3 * 60 + 1))] == ["b:2:y"]
    store.daemons.heartbeat("a:1:x", Instant(now + 500), ticks=7, failed=1)
    (a,) = [d for d in store.daemons.live(Instant(now + 500)) if d["id"] == "a:1:x"]
    assert a == {
        "id": "a:1:x",
        "host": "a",
        "pid": 1,
        "interval": 60,
        "started_at": now - 100,
        "heartbeat_at": now + 500,
        "ticks": 7,
        "failed_ticks": 1,
    }
    store.daemons.heartbeat("a:1:x", Instant(now + 501))  # counts kept when not given
    assert store.daemons.live(Instant(now + 501))[0]["ticks"] == 7
    store.daemons.unregister("a:1:x")
    assert [d["id"] for d in store.daemons.live(Instant(now + 501))] == ["b:2:y"]
    store.daemons.heartbeat("gone", Instant(now + 502))  # not registered: nothing happens
    assert store.daemons.count() == 1


def test_rows_of_daemons_killed_long_ago_are_dropped_at_the_next_start(store: Store) -> None:
    now = Instant(1_800_000_000)
    store.daemons.register("old:1:x", "old", 1, 60, Instant(now - 8 * 86400))
    store.daemons.register("new:2:y", "new", 2, 60, now)
    assert store.daemons.count() == 1


def test_status_lists_every_live_daemon(workspace: Any, store: Store) -> None:
    now = to_epoch(utcnow())
    write_record(store, DaemonRecord(4242, "shop-1", 300, now - 3600, now - 30, ticks=12))
    store.daemons.register("shop-1:4242:aa", "shop-1", 4242, 300, Instant(now - 3600))
    store.daemons.heartbeat("shop-1:4242:aa", Instant(now - 30), ticks=12, failed=0)
    store.daemons.register("shop-2:77:bb", "shop-2", 77, 300, Instant(now - 600))
    store.daemons.heartbeat("shop-2:77:bb", Instant(now - 10), ticks=2, failed=1)
    # killed outright an hour ago: its row stays, but it is not live
    store.daemons.register("shop-3:9:cc", "shop-3", 9, 300, Instant(now - 7200))
    store.daemons.heartbeat("shop-3:9:cc", Instant(now - 3600))
    code, report = status(workspace)
    assert code == 0 and report["healthy"] is True
    assert [(d["host"], d["pid"]) for d in report["daemons"]] == [("shop-1", 4242), ("shop-2", 77)]
    second = report["daemons"][1]
    assert second["interval"] == "5m" and second["ticks"] == 2 and second["failed_ticks"] == 1
    assert second["id"] == "shop-2:77:bb" and second["heartbeat_at"].endswith("Z")
    text = workspace.cli("status")
    assert text.exit_code == 0, text.output
    assert "Daemons:      2 running on this store" in text.output
    assert "pid 77 on shop-2, every 5m" in text.output
    assert "shop-3" not in text.output


def test_a_daemon_of_this_host_whose_process_is_gone_is_not_listed(
    workspace: Any, store: Store
) -> None:
    import socket
    import subprocess
    import sys

    from regard.delivery.owners import default_owner

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(done.stdout)
    me = default_owner()  # host:pidns:pid:random, as a daemon registers
    host, pidns, _, _ = me.split(":")
    killed = f"{host}:{pidns}:{dead_pid}:0bad"
    now = to_epoch(utcnow())
    store.daemons.register(me, socket.gethostname(), 1, 300, Instant(now))
    store.daemons.register(killed, socket.gethostname(), dead_pid, 300, Instant(now))
    # heartbeats fresh, but this host can tell the second's process has ended
    assert [d["id"] for d in status(workspace)[1]["daemons"]] == [me]


def test_status_without_daemons_lists_none(workspace: Any, store: Store) -> None:
    assert status(workspace)[1]["daemons"] == []
    assert "Daemons:" not in workspace.cli("status").output


@pytest.mark.slow
def test_a_daemon_registers_beats_and_unregisters(shop: Any) -> None:  # noqa: F811
    daemon = shop.start()
    wait_for(lambda: daemon.events("tick"), what="the first tick")

    def live() -> list[dict[str, Any]]:
        return list(regard_status(shop)["daemons"])

    (row,) = wait_for(live, what="the daemon in status")
    assert row["pid"] == daemon.process.pid and row["interval"] == "1s"
    first = row["heartbeat_at"]
    wait_for(lambda: live() and live()[0]["heartbeat_at"] > first, what="a newer heartbeat")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert regard_status(shop)["daemons"] == []
    with open_store(shop.store_target) as store:
        assert store.daemons.count() == 0


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_on_sqlite_a_second_daemon_is_still_refused(shop: Any) -> None:  # noqa: F811
    first = shop.start()
    wait_for(lambda: first.events("tick"), what="the first tick")
    second = shop.start()
    assert second.wait() == 1
    assert "already running on this store" in second.log_path.read_text(encoding="utf-8")
    assert len(regard_status(shop)["daemons"]) == 1


def regard_status(workspace: Any) -> dict[str, Any]:
    return status(workspace)[1]
