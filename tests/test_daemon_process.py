"""The real daemon as a subprocess, ticking every second, delivering through the webhook
adapter over real sockets to a recording sink on 127.0.0.1: signals, crashes, restarts, a
second daemon, and status."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import regard_command, subprocess_env
from faults.rows import add_pending, campaign_file, states
from faults.sink import SECRET, FaultySink
from regard.store import Store, open_store

# real daemon processes, signalled and killed
pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.05)


def regard(workspace: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """``regard --config … ARGS`` in a subprocess."""
    return subprocess.run(
        regard_command("--config", str(workspace.config), *args),
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        cwd=workspace.root,
    )


class DaemonProcess:
    """``regard daemon --log-format json`` running against a workspace."""

    def __init__(self, workspace: Any) -> None:
        self.workspace = workspace
        self.log_path = workspace.root / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            regard_command("--config", str(workspace.config), "daemon", "--log-format", "json"),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=subprocess_env(),
            cwd=workspace.root,
        )

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a traceback line of a crash
                out.append({"msg": line})
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.lines() if e.get("event") == name]

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()


@pytest.fixture
def sink() -> Iterator[FaultySink]:
    with FaultySink(weights={"slow": 1.0}, slow=0.25) as s:
        yield s


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop()


@pytest.fixture
def shop(
    workspace: Any, sink: FaultySink, daemons: list[DaemonProcess], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A workspace whose daemon ticks every second and delivers to the sink."""
    monkeypatch.setenv("HOOK_SECRET", SECRET)  # for the daemon and `regard status` alike
    text = workspace.config.read_text(encoding="utf-8")
    workspace.write(
        "regard.toml",
        text
        + '\n[scheduler]\ninterval = "1s"\n'
        + '\n[delivery]\nconcurrency = 4\ntimeout = "2s"\nlease = "4s"\nbackoff = "1s"\n'
        + 'max_backoff = "1s"\n'
        + f'\n[providers.sink]\ntype = "webhook"\nurl = "{sink.url}"\n'
        + 'secret = "${HOOK_SECRET}"\n',
    )
    campaign_file(workspace.root)  # the campaign of the backlogs written straight in

    def start() -> DaemonProcess:
        daemon = DaemonProcess(workspace)
        daemons.append(daemon)
        return daemon

    workspace.start = start
    return workspace


def store_of(workspace: Any) -> Store:
    return open_store(workspace.store_target)


def backlog(workspace: Any, n: int, **columns: Any) -> list[str]:
    """``n`` pending deliveries to the sink, due a minute ago, as a tick leaves them."""
    due = int(time.time()) - 60
    with store_of(workspace) as store:
        return add_pending(
            store, [f"c{i:03d}" for i in range(n)], provider="sink", due_at=due, **columns
        )


def daemon_ticks(workspace: Any) -> list[Any]:
    with store_of(workspace) as store:
        return store.conn.execute(
            "SELECT started_at, finished_at, result FROM ticks WHERE kind = 'daemon' ORDER BY id"
        ).fetchall()


def test_ticks_on_time_and_status_is_healthy(shop: Any) -> None:
    daemon = shop.start()
    wait_for(lambda: len(daemon.events("tick")) >= 4, what="four ticks")
    ticks = daemon_ticks(shop)
    assert 2 <= ticks[3]["started_at"] - ticks[0]["started_at"] <= 5
    status = regard(shop, "status", "--json")
    report = json.loads(status.stdout)
    assert status.returncode == 0, status.stdout
    assert report["mode"] == "daemon" and report["daemon"]["pid"] == daemon.process.pid
    assert report["last_tick"]["kind"] == "daemon" and report["next_tick"] is not None
    daemon.signal(signal.SIGINT)
    assert daemon.wait() == 0
    assert daemon.events("stopped")


def test_sigterm_mid_dispatch_exits_0_with_nothing_lost(shop: Any, sink: FaultySink) -> None:
    ids = backlog(shop, 40)
    daemon = shop.start()
    wait_for(lambda: len(sink.hits) >= 6, what="dispatch under way")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    with store_of(shop) as store:
        after_stop = states(store)
    accepted = sink.accepted()
    assert "sending" not in after_stop.values()  # in-flight requests finished or released
    assert {i for i, s in after_stop.items() if s == "sent"} == set(accepted)
    assert 0 < len(accepted) < len(ids)  # it really stopped mid-dispatch
    assert all(s == "pending" for i, s in after_stop.items() if i not in accepted)
    assert daemon.events("stopping") and daemon.events("stopped")

    again = shop.start()
    wait_for(lambda: set(sink.accepted()) == set(ids), what="the rest delivered")
    again.signal(signal.SIGTERM)
    assert again.wait() == 0
    assert all(n == 1 for n in sink.accepted().values())
    assert sink.bad_signatures == 0
    with store_of(shop) as store:
        assert set(states(store).values()) == {"sent"}


def test_sigkill_then_restart_sends_everything_exactly_once(shop: Any, sink: FaultySink) -> None:
    ids = backlog(shop, 40)
    daemon = shop.start()
    wait_for(lambda: len(sink.hits) >= 6, what="dispatch under way")
    daemon.signal(signal.SIGKILL)
    assert daemon.wait() == -signal.SIGKILL
    with store_of(shop) as store:
        in_flight = [i for i, s in states(store).items() if s == "sending"]
    assert in_flight, "the kill should leave claimed deliveries behind"

    again = shop.start()  # the lock died with the first daemon
    wait_for(lambda: set(sink.accepted()) == set(ids), timeout=30, what="all delivered")
    wait_for(lambda: set(states(store_of(shop)).values()) == {"sent"}, what="all recorded")
    again.signal(signal.SIGTERM)
    assert again.wait() == 0
    # one idempotency key per delivery, ever; only a request in flight at the kill may have
    # reached the sink twice, and then with the same key, so the provider drops the copy
    assert all(keys == {i} for i, keys in sink.keys().items())
    twice = [i for i, n in sink.accepted().items() if n > 1]
    assert set(twice) <= set(in_flight)
    reclaimed = sum(json.loads(t["result"])["reclaimed"] for t in daemon_ticks(shop) if t["result"])
    assert reclaimed == len(in_flight)


def test_a_second_daemon_on_the_store_is_refused(shop: Any) -> None:
    first = shop.start()
    wait_for(lambda: first.events("tick"), what="the first daemon ticking")
    second = shop.start()
    assert second.wait(timeout=20) == 1
    message = second.log_path.read_text(encoding="utf-8")
    assert str(shop.root / "regard.db") in message
    assert f"pid {first.process.pid}" in message and "already running" in message
    assert first.process.poll() is None  # the first one is untouched


def test_status_reports_a_killed_daemon_as_stale(shop: Any) -> None:
    daemon = shop.start()
    wait_for(lambda: daemon.events("tick"), what="a tick")
    assert regard(shop, "status").returncode == 0
    daemon.signal(signal.SIGKILL)
    daemon.wait()
    # stale once three intervals of one second have passed without a tick
    stale = wait_for(lambda: (r := regard(shop, "status")).returncode == 1 and r, what="stale")
    assert "UNHEALTHY" in stale.stdout and f"pid {daemon.process.pid}" in stale.stdout
    report = json.loads(regard(shop, "status", "--json").stdout)
    assert report["healthy"] is False and report["next_tick"] is None


def test_logs_hold_neither_secrets_nor_message_bodies(shop: Any, sink: FaultySink) -> None:
    backlog(shop, 3)
    backlog_dead = ["c900-x"]  # the sink rejects these for good: a failure gets logged
    with store_of(shop) as store:
        add_pending(store, backlog_dead, provider="sink", due_at=int(time.time()) - 60)
    daemon = shop.start()
    wait_for(lambda: len(sink.hits) >= 4, what="all four requests")
    wait_for(lambda: any(e.get("failed") for e in daemon.events("tick")), what="a failure line")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    text = daemon.log_path.read_text(encoding="utf-8")
    assert SECRET not in text
    assert "Hallo c0" not in text and "@example.org" not in text  # bodies and addresses


CAMPAIGN = """\
channel = "webhook"
provider = "sink"
template = "{name}"
max_lateness = "1h"

[trigger]
type = "post_purchase"
"""
TEMPLATE = "{% block text %}Danke für Ihre Bestellung, {{ contact.first_name }}!{% endblock %}\n"


def import_jsonl(workspace: Any, kind: str, rows: list[dict[str, Any]]) -> None:
    path = workspace.root / f"{kind}-{time.monotonic_ns()}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = regard(workspace, "import", kind, str(path))
    assert done.returncode == 0, done.stderr


def order(contact: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    return {"id": f"o-{contact}", "contact_id": contact, "type": "order",
            "occurred_at": now, "amount": "49.90"}  # fmt: skip


def test_campaign_broken_and_fixed_while_running(shop: Any, sink: FaultySink) -> None:
    for name in ("thanks", "welcome"):
        shop.write(f"campaigns/{name}.toml", CAMPAIGN.format(name=name))
        shop.write(f"templates/{name}.j2", TEMPLATE)
    import_jsonl(shop, "contacts", [{"id": c, "first_name": "Jürgen"} for c in ("k1", "k2")])
    daemon = shop.start()

    def delivered() -> set[tuple[str, str]]:
        with store_of(shop) as store:
            rows = store.conn.execute(
                "SELECT campaign, contact_id FROM deliveries WHERE state = 'sent'"
            )
            return {(r[0], r[1]) for r in rows}

    import_jsonl(shop, "events", [order("k1")])
    wait_for(lambda: delivered() >= {("thanks", "k1"), ("welcome", "k1")}, what="both sent")

    good = (shop.root / "campaigns/thanks.toml").read_text(encoding="utf-8")
    shop.write("campaigns/thanks.toml", good.replace("[trigger]", "[trigger\n"))
    skipped = wait_for(lambda: daemon.events("campaign_skipped"), what="the broken file logged")
    assert "thanks.toml" in skipped[0]["msg"] and skipped[0]["level"] == "error"
    import_jsonl(shop, "events", [order("k2")])
    wait_for(lambda: ("welcome", "k2") in delivered(), what="the other campaign going on")
    assert ("thanks", "k2") not in delivered()

    shop.write("campaigns/thanks.toml", good)
    wait_for(lambda: ("thanks", "k2") in delivered(), what="the fixed campaign picked up")
    assert daemon.process.poll() is None
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert len(sink.accepted()) == 4 and all(n == 1 for n in sink.accepted().values())


def test_a_second_signal_ends_the_daemon_at_once(shop: Any, sink: FaultySink) -> None:
    sink.slow = 1.5  # requests in flight outlast the patience of whoever signals twice
    backlog(shop, 8)
    daemon = shop.start()
    wait_for(lambda: sink.hits, what="requests in flight")
    daemon.signal(signal.SIGTERM)
    wait_for(lambda: daemon.events("stopping"), what="the first signal handled")
    daemon.signal(signal.SIGTERM)
    began = time.monotonic()
    assert daemon.wait(timeout=10) == -signal.SIGTERM
    assert time.monotonic() - began < 1.0
    with store_of(shop) as store:  # the claims stay for their lease: nothing is lost
        assert "sending" in states(store).values()


def _run_in_background(workspace: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*regard_command("--config", str(workspace.config)), "run"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=subprocess_env(), cwd=workspace.root,
    )  # fmt: skip


@pytest.mark.slow
def test_a_run_stopped_with_sigterm_finishes_its_tick(shop: Any, sink: FaultySink) -> None:
    """SIGTERM ends `regard run` as it ends the daemon: nothing is left `sending`, and
    `status` shows the run finished, not "still running" for ever."""
    ids = backlog(shop, 40)
    process = _run_in_background(shop)
    wait_for(lambda: len(sink.hits) >= 4, what="dispatch under way")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert "Traceback" not in stderr
    with store_of(shop) as store:
        states = store.deliveries.states(ids)
        last = store.ticks.last(["run"])
    assert "sending" not in states.values()
    assert last is not None and last["finished_at"] is not None
    status = regard(shop, "status", "--json")
    assert json.loads(status.stdout)["last_tick"]["state"] == "finished"


@pytest.mark.slow
def test_status_tells_a_killed_run_from_a_running_one(shop: Any, sink: FaultySink) -> None:
    backlog(shop, 400)  # about 25 s of dispatch: it is still under way when killed
    process = _run_in_background(shop)
    wait_for(lambda: len(sink.hits) >= 4, what="dispatch under way")
    assert json.loads(regard(shop, "status", "--json").stdout)["last_tick"]["state"] == "running"
    process.kill()
    process.communicate(timeout=30)
    report = json.loads(regard(shop, "status", "--json").stdout)
    assert report["last_tick"]["state"] == "interrupted"
    assert "never finished: its process is gone" in regard(shop, "status").stdout
