"""A sink on 127.0.0.1 that fails at random (seeded), for the webhook provider to hit.

Built on the shared recording server (tests/httpsink.py). Each request gets one of: 200,
500, 429 with Retry-After, a timeout (held past the client's timeout), a connection reset,
or a slow 200. Deliveries to contacts whose id ends in ``-x`` get a permanent 422. Every
request is noted with its Idempotency-Key, the delivery id of its body and the answer, and
its Standard Webhooks signature is verified, so a test can compare the sink with the store.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass

from standardwebhooks import Webhook

from httpsink import Answer, Received, Sink

FAULTS = ("ok", "500", "429", "timeout", "reset", "slow")
SECRET = "fault-suite-secret"


@dataclass(frozen=True)
class Hit:
    key: str
    delivery_id: str
    answer: str  # one of FAULTS, or "dead" for the permanent 422
    accepted: bool  # the sink answered 2xx


class FaultySink:
    """``weights`` maps each fault of FAULTS to its share of requests; ``hold`` is how long
    a "timeout" is held (longer than the client's timeout), ``slow`` the slow answers' delay.
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
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.verifier = Webhook(SECRET.encode())
        self.server = Sink()
        self.server.responder = self.respond

    @property
    def url(self) -> str:
        return f"{self.server.url}/deliveries"

    def __enter__(self) -> FaultySink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()

    def respond(self, request: Received) -> Answer:
        key = request.headers.get("idempotency-key", "")
        try:
            record = request.json()
        except ValueError:
            return Answer(400, {"error": "torn body"})  # its sender was killed mid-request
        delivery_id = record["delivery_id"]
        try:
            self.verifier.verify(request.body, request.headers)
        except Exception:
            with self.lock:
                self.bad_signatures += 1
        with self.lock:
            fault = (
                "dead"
                if str(record["contact_id"]).endswith("-x")
                else self.random.choices(list(self.weights), list(self.weights.values()))[0]
            )
        answer = {
            "ok": Answer(200, {"id": f"m-{delivery_id}"}),
            "slow": Answer(200, {"id": f"m-{delivery_id}"}, delay=self.slow),
            "500": Answer(500, {"error": "internal"}),
            "429": Answer(429, {"error": "slow down"}, {"Retry-After": "1"}),
            "timeout": Answer(503, {"error": "too late"}, delay=self.hold),
            "reset": Answer(reset=True),
            "dead": Answer(422, {"error": "recipient rejected"}),
        }[fault]
        # noted before the answer leaves: a process killed after a 200 reached it is exactly
        # the case of a provider that accepted a message the store never heard of
        with self.lock:
            self.hits.append(
                Hit(key, delivery_id, fault, accepted=answer.status == 200 and not answer.reset)
            )
        return answer

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
