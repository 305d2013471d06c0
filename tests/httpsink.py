"""A real HTTP server on 127.0.0.1 that records every request and answers from a script.

For every test that must cross a socket: provider wire-format tests and fault injection
(slow answers, client timeouts, connection resets, 500s, 429 + Retry-After). Use it through
the ``sink`` fixture of tests/conftest.py::

    def test_retry_after(sink):
        sink.script(Answer(429, {"message": "slow down"}, {"Retry-After": "7"}))
        ...  # send to sink.url
        assert sink.last.headers["idempotency-key"] == "d_…"
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answer:
    """One scripted answer. ``delay`` holds it back (slow answers, client timeouts);
    ``reset`` drops the connection with a TCP RST instead of answering."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False

    def payload(self) -> tuple[bytes, str | None]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return self.body, None


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


class Sink:
    """A threaded HTTP/1.1 server. Answers come from ``script(...)`` in order, then from
    ``responder`` (a function of the request), then ``default``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default = Answer(200, {})
        self.responder: Callable[[Received], Answer] | None = None
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.sink = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def next_answer(self, request: Received) -> Answer:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
        return self.responder(request) if self.responder else self.default

    @property
    def last(self) -> Received:
        assert self.requests, "the sink received no request"
        return self.requests[-1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # the default 5 drops connections when 8 workers connect at once
    sink: Sink


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real services speak
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests assert on requests, not on the server's log

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Received(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            at=time.time(),
        )
        answer = self.server.sink.next_answer(request)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.reset:
            # SO_LINGER 0: close() sends RST, the client sees "connection reset by peer"
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        payload, content_type = answer.payload()
        try:
            self.send_response(answer.status)
            if content_type and not any(k.lower() == "content-type" for k in answer.headers):
                self.send_header("Content-Type", content_type)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout): nothing to do

    do_GET = do_POST = do_PUT = do_DELETE = _handle
