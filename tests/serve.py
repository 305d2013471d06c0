"""``regard serve`` as a real subprocess on a free 127.0.0.1 port, for endpoint tests.

    from serve import start_serve

    def test_health(workspace, served):
        server = served(workspace.config)          # appends [server] listen = free port
        assert httpx.get(server.url + "/healthz").json() == {"ok": True}

``start_serve(config_path, server_table="...")`` appends a ``[server]`` table to the config
(``listen`` on a free port, then the extra lines given), starts ``regard --config X serve``,
waits for ``/healthz`` and returns a :class:`Served` (``url``, ``log()``, ``stop()``). The
``served`` fixture of conftest.py is the same function, and kills what it started at
teardown.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from conftest import regard_command, subprocess_env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A running ``regard serve``: ``url`` is its base URL (no trailing slash)."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def log(self) -> str:
        """Everything it wrote to stderr and stdout so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def requests(self) -> list[dict[str, Any]]:
        """Its access log lines (one JSON object per request)."""
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("event") == "request":
                    lines.append(entry)
        return lines

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait; returns its exit status (SIGKILL if it does not stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def add_server_table(config: Path, port: int, server_table: str = "") -> str:
    """Append ``[server]`` with ``listen = 127.0.0.1:<port>`` (and ``server_table``'s lines)
    to the config file; returns the base URL."""
    text = config.read_text(encoding="utf-8")
    assert "\n[server]" not in "\n" + text, "the config has a [server] table already"
    extra = "\n".join(line.strip() for line in server_table.strip().splitlines())
    config.write_text(
        text.rstrip("\n")
        + f'\n\n[server]\nlisten = "127.0.0.1:{port}"\n'
        + (extra + "\n" if extra else ""),
        encoding="utf-8",
    )
    return f"http://127.0.0.1:{port}"


def start_serve(
    config: Path,
    server_table: str = "",
    *,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> Served:
    """Add a ``[server]`` table on a free port to ``config``, start ``regard serve`` on it
    and wait until ``/healthz`` answers 200."""
    port = free_port()
    url = add_server_table(config, port, server_table)
    log_path = config.parent / f"serve-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*regard_command("--config", str(config)), "serve"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=subprocess_env(**(env or {})),
        cwd=config.parent,
    )
    log.close()
    served = Served(process, url, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"regard serve exited {process.returncode}:\n{served.log()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    served.stop()
    raise AssertionError(f"regard serve did not answer /healthz in {timeout}s:\n{served.log()}")
