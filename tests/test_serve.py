"""``regard serve`` as a real process: it listens, answers /healthz, logs one JSON line per
request without the raw path, refuses bodies over 1 MiB, answers 404 for unknown paths and
stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from typing import Any

import httpx

from conftest import Workspace, regard_command, subprocess_env
from serve import add_server_table, free_port


def test_serve_answers_healthz_and_stops_on_sigterm(workspace: Workspace, served: Any) -> None:
    server = served(workspace.config)
    answer = httpx.get(server.url + "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"ok": True}
    assert server.stop() == 0
    lines = server.requests()
    assert {"method": "GET", "route": "/healthz", "status": 200}.items() <= lines[-1].items()
    assert isinstance(lines[-1]["ms"], float)


def test_unknown_path_is_404_json_and_the_path_is_not_logged(
    workspace: Workspace, served: Any
) -> None:
    server = served(workspace.config)
    answer = httpx.get(server.url + "/no/such/anna@example.com")
    assert answer.status_code == 404
    assert answer.json() == {"error": "not found"}
    assert httpx.post(server.url + "/healthz").status_code == 405
    server.stop()
    assert "anna@example.com" not in server.log()
    assert [r["route"] for r in server.requests() if r["status"] == 404] == ["-"]


def test_bodies_over_one_mib_are_refused_with_413(workspace: Workspace, served: Any) -> None:
    server = served(workspace.config)
    big = b"x" * (1024 * 1024 + 1)
    assert httpx.post(server.url + "/healthz", content=big).status_code == 413

    def chunks() -> Any:  # no Content-Length: the bytes are counted as they come
        for _ in range(17):
            yield b"y" * 65536

    assert httpx.post(server.url + "/healthz", content=chunks()).status_code in (405, 413)
    assert httpx.get(server.url + "/healthz").status_code == 200  # still serving
    server.stop()
    assert "Traceback" not in server.log()


def test_a_taken_address_is_a_clear_error(workspace: Workspace, served: Any) -> None:
    server = served(workspace.config)
    port = server.url.rsplit(":", 1)[1]
    other = workspace.root / "other.toml"
    text = workspace.config.read_text(encoding="utf-8")
    other.write_text(text, encoding="utf-8")
    result = workspace.run("--config", str(other), "serve", timeout=30)
    assert result.returncode == 1
    assert port in result.stderr


def test_the_daemon_runs_the_server_and_sigterm_stops_both(workspace: Workspace) -> None:
    url = add_server_table(workspace.config, free_port())
    log_path = workspace.root / "daemon.log"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [*regard_command("--config", str(workspace.config)), "daemon", "--log-format", "json"],
            stderr=log,
            stdout=subprocess.DEVNULL,
            env=subprocess_env(),
            cwd=workspace.root,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert daemon.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, log_path.read_text()
    finally:
        if daemon.poll() is None:
            daemon.kill()
    text = log_path.read_text()
    events = [json.loads(line).get("event") for line in text.splitlines()]
    assert "server_started" in events and "request" in events and "stopped" in events
    try:
        httpx.get(url + "/healthz", timeout=1)
        raise AssertionError("the server still answers after the daemon stopped")
    except httpx.TransportError:
        pass
