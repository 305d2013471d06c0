"""A recording HTTP sink on 127.0.0.1 that fails at random (seeded), and a test-only
provider adapter that POSTs the delivery record to it.

The sink answers each request with one of: 200, 500, 429 with Retry-After, a timeout (it
holds the request past the client's timeout and never answers), a connection reset (RST
before any answer), or a slow 200. It records every request with the Idempotency-Key, the
delivery id of the body and what it answered, so a test can compare it with the store.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from regard.providers.base import HTTPProvider, Outcome, classify_status
from regard.validation import StrictModel

FAULTS = ("ok", "500", "429", "timeout", "reset", "slow")


@dataclass
class Hit:
    key: str
    delivery_id: str
    answer: str  # one of FAULTS, or "dead" for the permanent 422
    accepted: bool  # the sink answered 2xx


class Sink:
    """A threaded server; ``weights`` maps each fault of FAULTS to its share of requests.

    Deliveries whose contact id ends in ``-x`` always get a permanent 422.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        weights: dict[str, float] | None = None,
        hold: float = 1.5,
        slow: float = 0.3,
    ) -> None:
        self.random = random.Random(seed)
        self.weights = weights or {"ok": 1.0}
        self.hold = hold
        self.slow = slow
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.handle(self, json.loads(body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/deliveries"

    def __enter__(self) -> Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _choose(self) -> str:
        with self.lock:
            return self.random.choices(list(self.weights), list(self.weights.values()))[0]

    def handle(self, handler: BaseHTTPRequestHandler, record: dict[str, Any]) -> None:
        key = handler.headers.get("Idempotency-Key", "")
        delivery_id = record["delivery_id"]
        fault = "dead" if str(record["contact_id"]).endswith("-x") else self._choose()
        if fault == "timeout":
            time.sleep(self.hold)
            self._note(key, delivery_id, fault, accepted=False)
            handler.close_connection = True
            return
        if fault == "reset":
            self._note(key, delivery_id, fault, accepted=False)
            # SO_LINGER 0: close() sends RST instead of FIN
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.close_connection = True
            return
        if fault == "slow":
            time.sleep(self.slow)
        status, headers, body = {
            "ok": (200, {}, {"id": f"m-{delivery_id}"}),
            "slow": (200, {}, {"id": f"m-{delivery_id}"}),
            "500": (500, {}, {"error": "internal"}),
            "429": (429, {"Retry-After": "1"}, {"error": "slow down"}),
            "dead": (422, {}, {"error": "recipient rejected"}),
        }[fault]
        payload = json.dumps(body).encode()
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        # recorded before the answer leaves: a process killed after the 200 reached it is
        # exactly the case of a provider that accepted a message the store never heard of
        self._note(key, delivery_id, fault, accepted=status == 200)
        handler.wfile.write(payload)
        handler.wfile.flush()

    def _note(self, key: str, delivery_id: str, answer: str, *, accepted: bool) -> None:
        with self.lock:
            self.hits.append(Hit(key, delivery_id, answer, accepted))

    # -- what the tests ask ------------------------------------------------------------
    def accepted(self) -> Counter[str]:
        """Delivery id → how many times the sink accepted it."""
        with self.lock:
            return Counter(h.delivery_id for h in self.hits if h.accepted)

    def keys(self) -> dict[str, set[str]]:
        """Delivery id → every Idempotency-Key it arrived with."""
        out: dict[str, set[str]] = {}
        with self.lock:
            for h in self.hits:
                out.setdefault(h.delivery_id, set()).add(h.key)
        return out

    def answers(self) -> Counter[str]:
        with self.lock:
            return Counter(h.answer for h in self.hits)


class SinkOptions(StrictModel):
    url: str


class SinkProvider(HTTPProvider):
    """``type = "test-sink"``: POST the delivery record as JSON to ``url``."""

    type = "test-sink"
    channels = frozenset({"email", "sms", "card", "webhook"})
    Options = SinkOptions

    def build_request(self, record: dict[str, Any], client: httpx.AsyncClient) -> httpx.Request:
        return client.build_request("POST", self.options.url, json=record)

    def read_response(self, response: httpx.Response) -> Outcome:
        message_id = response.json().get("id") if response.is_success else None
        return classify_status(response, message_id)
