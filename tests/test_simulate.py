"""``regard simulate``: a backtest on a scratch copy. The real store stays byte-identical
and no provider hears a thing — a webhook provider points at a live local server that
must receive nothing."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import Workspace, child_processes, regard_command, subprocess_env
from regard.processes import alive
from regard.store import open_store
from regard.store.scratch import scratch_store

CONFIG_TAIL = """
[providers.hooks]
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
cost = 1.5
"""
THANKS = """\
name = "Danke"
channel = "webhook"
provider = "hooks"
template = "thanks"
holdout = 0.2
{extra}
[trigger]
type = "post_purchase"
delay = "1d"
"""
TEMPLATE = "{% block text %}Danke, {{ contact | greeting }}!{% endblock %}\n"
CONTACTS = """\
id,first_name,last_name,email,country
1,Jürgen,Müller,j@example.de,DE
2,Käthe,Schäfer,k@example.de,DE
3,Oliver,Smith,o@example.co.uk,GB
4,Zoë,Brown,z@example.com,US
"""
EVENTS = """\
id,contact_id,type,occurred_at,amount
e1,1,order,2026-03-02T10:00:00,40
e2,2,order,2026-03-04T10:00:00,25
e3,3,order,2026-03-11T10:00:00,60
e4,4,order,2026-03-12T10:00:00,15
e5,1,order,2026-03-20T10:00:00,30
e6,2,order,2026-05-01T10:00:00,30
"""


class Recorder(BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self) -> None:
        Recorder.received.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    Recorder.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def shop(workspace: Workspace, server: ThreadingHTTPServer) -> Workspace:
    config = workspace.config.read_text(encoding="utf-8")
    workspace.write("regard.toml", config + CONFIG_TAIL.format(port=server.server_address[1]))
    workspace.write("campaigns/thanks.toml", THANKS.format(extra=""))
    workspace.write("templates/thanks.j2", TEMPLATE)
    workspace.write("contacts.csv", CONTACTS)
    workspace.write("events.csv", EVENTS)
    for kind in ("contacts", "events"):
        result = workspace.cli("import", kind, str(workspace.root / f"{kind}.csv"))
        assert result.exit_code == 0, result.output
    return workspace


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store_digest(workspace: Workspace) -> object:
    """The store file's bytes, or a PostgreSQL store's rows (counts and digests per table)."""
    if workspace.store_url is None:
        return digest(workspace.root / "regard.db")
    from regard.store.copy import checks

    with open_store(workspace.store_url) as store:
        return checks(store)


def test_simulate_touches_neither_store_nor_provider(shop: Workspace) -> None:
    store = shop.root / "regard.db"
    before = store_digest(shop)
    data = shop.cli_json("simulate", "--from", "2026-03-01", "--to", "2026-03-31")
    assert store_digest(shop) == before
    assert not Path(f"{store}-wal").exists() or Path(f"{store}-wal").stat().st_size == 0
    assert Recorder.received == []
    thanks = data["campaigns"]["thanks"]
    # five orders in March, each due a day later; the holdout hash decides who is held out
    assert thanks["sent"] + thanks["held_out"] == 5
    assert thanks["cost"] == pytest.approx(1.5 * thanks["sent"])
    assert data["ticks"] == 31 and data["currency"] == "EUR"
    assert sum(w["sent"] for w in thanks["weeks"].values()) == thanks["sent"]
    for week in thanks["weeks"].values():  # to whom, week by week
        assert len(week["sample"]) == min(week["sent"], 5)
    names = {s["name"] for s in thanks["sample"]}
    assert names and names <= {"Jürgen Müller", "Käthe Schäfer", "Oliver Smith", "Zoë Brown"}
    # and the real store has not a single delivery
    deliveries = shop.cli_json("deliveries")
    assert deliveries == []


def test_simulate_a_disabled_campaign_before_switching_it_on(shop: Workspace) -> None:
    shop.write("campaigns/thanks.toml", THANKS.format(extra="enabled = false\n"))
    everything = shop.cli_json("simulate", "--from", "2026-03-01", "--to", "2026-03-31")
    assert everything["campaigns"] == {}
    one = shop.cli_json(
        "simulate", "--from", "2026-03-01", "--to", "2026-03-31", "--campaign", "thanks"
    )
    assert one["campaigns"]["thanks"]["sent"] + one["campaigns"]["thanks"]["held_out"] == 5
    assert Recorder.received == []


def test_simulate_text_output_and_errors(shop: Workspace) -> None:
    result = shop.cli("simulate", "--from", "2026-03-01", "--to", "2026-03-31", "--every", "12h")
    assert result.exit_code == 0, result.output
    assert "would have gone out" in result.stdout and "week of" in result.stdout
    assert "nothing was sent" in result.stdout
    assert shop.cli("simulate", "--from", "2026-03-31", "--to", "2026-03-01").exit_code == 2
    assert (
        shop.cli(
            "simulate", "--from", "2026-03-01", "--to", "2026-03-02", "--every", "0d"
        ).exit_code
        == 2
    )
    assert (
        shop.cli(
            "simulate", "--from", "2026-03-01", "--to", "2026-03-02", "--campaign", "x"
        ).exit_code
        == 2
    )
    assert Recorder.received == []


def test_simulate_sends_waiting_deliveries_when_their_window_opens(shop: Workspace) -> None:
    """Daily ticks at midnight and a 9-to-18 window: each delivery goes out when the window
    opens, 9:00 in the contacts' (the config's) Europe/Berlin, 08:00 UTC in March — not never."""
    shop.write(
        "campaigns/thanks.toml",
        THANKS.format(extra="") + "\n[window]\nhours = [9, 18]\n",
    )
    data = shop.cli_json("simulate", "--from", "2026-03-01", "--to", "2026-03-31")
    thanks = data["campaigns"]["thanks"]
    assert thanks["pending"] == 0
    assert thanks["sent"] + thanks["held_out"] == 5
    assert {s["sent_at"][11:] for s in thanks["sample"]} == {"08:00:00Z"}
    assert Recorder.received == []


def test_simulate_without_a_store_says_what_to_do(workspace: Workspace) -> None:
    workspace.write("campaigns/thanks.toml", THANKS.format(extra="").replace("hooks", "outbox"))
    workspace.write("templates/thanks.j2", TEMPLATE)
    result = workspace.cli("simulate", "--from", "2026-03-01", "--to", "2026-03-31")
    assert result.exit_code == 1
    # no store file; or, on PostgreSQL, a database with nothing in it
    assert "no store yet" in result.output or "nothing in the store yet" in result.output
    assert "regard import contacts" in result.output
    assert not (workspace.root / "regard.db").exists()


def _start_long_simulation(shop: Workspace, tmp: Path, *extra: str) -> subprocess.Popen[str]:
    """A replay long enough to be stopped in the middle: hourly ticks over four years."""
    return subprocess.Popen(
        [*regard_command("--config", str(shop.config)), "simulate",
         "--from", "2023-01-01", "--to", "2026-12-31", "--every", "1h", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=subprocess_env(TMPDIR=str(tmp)), cwd=shop.root,
    )  # fmt: skip


def _scratch_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("regard-simulate-*"))


def _wait_for_scratch(tmp: Path, process: subprocess.Popen[str], name: str = "scratch.db") -> None:
    deadline = time.monotonic() + 60
    while not any(f.glob(name) for f in _scratch_folders(tmp)):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the scratch copy never appeared"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_stopped_simulation_leaves_no_copy_of_the_store(shop: Workspace, tmp_path: Path) -> None:
    """The scratch copy holds every contact: SIGTERM removes it on the way out, and the
    copy a SIGKILLed run could not remove is removed by the next run."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = _start_long_simulation(shop, tmp)
    _wait_for_scratch(tmp, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0, stderr
    assert "Traceback" not in stderr
    assert _scratch_folders(tmp) == []

    killed = _start_long_simulation(shop, tmp)
    _wait_for_scratch(tmp, killed)
    killed.kill()
    killed.communicate(timeout=60)
    assert len(_scratch_folders(tmp)) == 1, "SIGKILL leaves it (nothing can run then)"
    result = subprocess.run(
        [*regard_command("--config", str(shop.config)), "simulate",
         "--from", "2026-03-01", "--to", "2026-03-02"],
        capture_output=True, text=True, env=subprocess_env(TMPDIR=str(tmp)), cwd=shop.root,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _scratch_folders(tmp) == []


def _parts_running(tmp: Path, process: subprocess.Popen[str], n: int) -> list[int]:
    """The ``n`` part processes of a replay in parts, once they all run."""
    _wait_for_scratch(tmp, process, "part-*.db")
    deadline = time.monotonic() + 60
    while len(parts := child_processes(process.pid)) < n:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the parts never started"
        time.sleep(0.05)
    return parts


def _gone(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_stopped_replay_in_parts_stops_its_parts_and_leaves_no_copy(
    shop: Workspace, tmp_path: Path
) -> None:
    """SIGTERM: the parts are stopped and their copies removed on the way out. SIGKILL:
    nothing can run then, but each part stops by itself at its next tick, and the next
    run removes the copies."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = _start_long_simulation(shop, tmp, "--jobs", "2")
    parts = _parts_running(tmp, process, 2)
    stopped = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - stopped < 5, "the parts were left to finish"
    assert process.returncode != 0, stderr
    assert "Traceback" not in stderr
    assert _gone(parts, 10), "a part outlived the replay"
    assert _scratch_folders(tmp) == []

    killed = _start_long_simulation(shop, tmp, "--jobs", "2")
    parts = _parts_running(tmp, killed, 2)
    killed.kill()
    killed.wait(timeout=60)  # not its output: the parts hold that open until they end
    assert _gone(parts, 5), "a part went on without its parent"
    killed.communicate(timeout=60)
    assert len(_scratch_folders(tmp)) == 1
    result = subprocess.run(
        [*regard_command("--config", str(shop.config)), "simulate",
         "--from", "2026-03-01", "--to", "2026-03-02", "--jobs", "2"],
        capture_output=True, text=True, env=subprocess_env(TMPDIR=str(tmp)), cwd=shop.root,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _scratch_folders(tmp) == []


def test_a_replays_scratch_copy_keeps_no_log_and_still_rolls_back(tmp_path: Path) -> None:
    """Set up for a replay, the scratch copy writes no write-ahead log (nobody else reads
    it; its pages are written once, not to the log first and copied back later), and a
    write that fails inside the replay's transaction still leaves the copy as it was."""
    source = tmp_path / "regard.db"
    with open_store(source) as store, store.write() as conn:
        conn.execute("INSERT INTO settings (key, value, created_at) VALUES ('kept', '1', 0)")
    with scratch_store(source) as copy:
        copy.backtests.for_replay()
        assert copy.conn.execute("PRAGMA journal_mode").fetchone()[0] == "memory"
        with copy.write():
            copy.conn.execute(
                "INSERT INTO settings (key, value, created_at) VALUES ('first', '1', 0)"
            )
            with pytest.raises(RuntimeError), copy.write():
                copy.conn.execute(
                    "INSERT INTO settings (key, value, created_at) VALUES ('undone', '1', 0)"
                )
                raise RuntimeError("a failing step")
        keys = {r[0] for r in copy.conn.execute("SELECT key FROM settings")}
        assert {"kept", "first"} <= keys and "undone" not in keys
        assert not Path(f"{copy.path}-wal").exists() or Path(f"{copy.path}-wal").stat().st_size == 0
