"""A server on 127.0.0.1 whose answers are hostile in their shape, not their status.

- ``trickle``: 200 with a long ``Content-Length``, then one byte every ``interval``
  seconds: every single read is quick, the answer never ends.
- ``big``: an error status with a huge body (``size`` bytes), streamed from a small buffer
  until the client stops reading; ``written`` says how much got out.

Every request is noted with its Idempotency-Key and when it started and ended, so a test
can see whether two requests for one key were ever in flight together.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    key: str
    started: float
    ended: float | None = None


class HostileServer:
    def __init__(
        self,
        mode: str,
        *,
        interval: float = 0.2,
        length: int = 1000,
        size: int = 300 * 1024 * 1024,
        status: int = 500,
    ) -> None:
        self.mode = mode
        self.interval = interval
        self.length = length
        self.size = size
        self.status = status
        self.requests: list[Request] = []
        self.written = 0
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()

    def overlapping(self) -> list[str]:
        """Keys that had two requests in flight at the same time."""
        found = []
        with self.lock:
            by_key: dict[str, list[Request]] = {}
            for r in self.requests:
                by_key.setdefault(r.key, []).append(r)
        for key, requests in by_key.items():
            requests.sort(key=lambda r: r.started)
            for a, b in itertools.pairwise(requests):
                if a.ended is None or b.started < a.ended:
                    found.append(key)
                    break
        return found


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: HostileServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        noted = Request(self.headers.get("Idempotency-Key", ""), time.monotonic())
        with owner.lock:
            owner.requests.append(noted)
        try:
            if owner.mode == "trickle":
                self._trickle(owner)
            else:
                self._big(owner)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            noted.ended = time.monotonic()
            self.close_connection = True

    def _trickle(self, owner: HostileServer) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(owner.length))
        self.end_headers()
        for _ in range(owner.length):
            if owner.closing.is_set():
                return
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(owner.interval)

    def _big(self, owner: HostileServer) -> None:
        self.send_response(owner.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(owner.size))
        self.end_headers()
        chunk = b"x" * (1024 * 1024)
        left = owner.size
        while left > 0 and not owner.closing.is_set():
            part = chunk[: min(left, len(chunk))]
            self.wfile.write(part)
            left -= len(part)
            with owner.lock:
                owner.written += len(part)
