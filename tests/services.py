"""Fakes of the real services on 127.0.0.1, behaving as their APIs document, on the shared
recording server (tests/httpsink.py).

- :class:`FakePostmark`: ``POST /email`` (https://postmarkapp.com/developer/api/email-api)
  and the outbound message search ``GET /messages/outbound`` with ``count``, ``offset``,
  ``recipient``, ``tag`` and ``metadata_<key>`` filters
  (https://postmarkapp.com/developer/api/messages-api#outbound-message-search); errors as
  ``{"ErrorCode", "Message"}`` (https://postmarkapp.com/developer/api/overview#error-codes).
- :class:`FakeTwilio`: ``POST`` and ``GET /2010-04-01/Accounts/{sid}/Messages.json``
  (https://www.twilio.com/docs/messaging/api/message-resource), HTTP Basic auth, ``To`` /
  ``From`` filters, newest first, ``PageSize`` and ``next_page_uri``; a message just created
  is ``queued`` with no ``date_sent``; errors as ``{"code", "message", "more_info", "status"}``.
- :class:`FakeHandwrytten`: ``GET /checkauth/auth`` (with the account's ``test_mode``),
  ``GET /countries/list`` and ``POST /orders/singleStepOrder`` as Handwrytten's OpenAPI
  description has them, errors answered with HTTP 200 and ``{"httpCode", "error"}``.

None of them honours ``Idempotency-Key``: none of the real ones does. Each can *stall*: a
share of the sends (seeded) is accepted and then held past the client's timeout, so the
client never hears that the service has the message (the case that doubles a message when
regard sends again blindly). What each accepted is kept, so a test compares it with the store.
"""

from __future__ import annotations

import base64
import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from httpsink import Answer, Received, Sink


@dataclass
class Accepted:
    """One message (or order) a fake service accepted."""

    id: str
    key: str  # the delivery id it carried (metadata / body / client_metadata)
    to: str
    body: dict[str, Any]
    created: float = field(default_factory=time.time)
    stalled: bool = False  # accepted, but the answer was held past the client's timeout


class _Fake:
    """What every fake shares: the server, the stalls, what was accepted."""

    def __init__(self, *, stall: float = 0.0, hold: float = 1.5, seed: int = 0) -> None:
        self.stall = stall
        self.hold = hold
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.accepted: list[Accepted] = []
        self.lookups = 0
        self.server = Sink()
        self.server.responder = self.respond
        self.url = self.server.url

    def __enter__(self) -> _Fake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()

    def respond(self, request: Received) -> Answer:
        raise NotImplementedError

    def _stalls(self) -> bool:
        with self.lock:
            return self.random.random() < self.stall

    def _accept(self, item: Accepted, answer: Answer) -> Answer:
        item.stalled = self._stalls()
        with self.lock:
            self.accepted.append(item)
        if item.stalled:
            answer.delay = self.hold
        return answer

    # -- what the tests ask ------------------------------------------------------------
    def counts(self) -> Counter[str]:
        """Delivery id → how many times the service accepted it."""
        with self.lock:
            return Counter(a.key for a in self.accepted)

    def ids(self) -> dict[str, list[str]]:
        """Delivery id → the service's ids for it."""
        out: dict[str, list[str]] = {}
        with self.lock:
            for a in self.accepted:
                out.setdefault(a.key, []).append(a.id)
        return out

    def stalled(self) -> set[str]:
        with self.lock:
            return {a.key for a in self.accepted if a.stalled}


class FakePostmark(_Fake):
    """Postmark's e-mail and message search API for one server token."""

    def __init__(self, token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token
        self.account_error: tuple[int, str] | None = None  # (ErrorCode, Message) for sends

    def respond(self, request: Received) -> Answer:
        if request.headers.get("x-postmark-server-token") != self.token:
            return Answer(
                401, {"ErrorCode": 10, "Message": "The Server Token you provided was invalid."}
            )
        if request.method == "POST" and request.path == "/email":
            if self.account_error is not None:
                code, message = self.account_error
                return Answer(422, {"ErrorCode": code, "Message": message})
            body = request.json()
            message_id = str(uuid.uuid4())
            key = str((body.get("Metadata") or {}).get("delivery_id") or "")
            answer = Answer(
                200,
                {
                    "To": body["To"],
                    "SubmittedAt": "2026-06-01T05:00:00.0000000-04:00",
                    "MessageID": message_id,
                    "ErrorCode": 0,
                    "Message": "OK",
                },
            )
            return self._accept(Accepted(message_id, key, body["To"], body), answer)
        if request.method == "GET" and request.path == "/messages/outbound":
            return self._search(request)
        return Answer(404, {"ErrorCode": 0, "Message": "Not found"})

    def _search(self, request: Received) -> Answer:
        q = {k: v[0] for k, v in request.query.items()}
        if "count" not in q or "offset" not in q:
            return Answer(
                422,
                {"ErrorCode": 0, "Message": "The 'count' and 'offset' parameters are required."},
            )
        count, offset = int(q["count"]), int(q["offset"])
        if count > 500 or count + offset > 10_000:
            return Answer(422, {"ErrorCode": 0, "Message": "count is too large"})
        with self.lock:
            self.lookups += 1
            found = list(reversed(self.accepted))  # most recent first
        for name, value in q.items():
            if name.startswith("metadata_"):
                key = name.removeprefix("metadata_")
                found = [a for a in found if str((a.body.get("Metadata") or {}).get(key)) == value]
            elif name == "recipient":
                found = [a for a in found if a.to == value]
            elif name == "tag":
                found = [a for a in found if a.body.get("Tag") == value]
        page = found[offset : offset + count]
        return Answer(
            200,
            {
                "TotalCount": len(found),
                "Messages": [
                    {
                        "Tag": a.body.get("Tag"),
                        "MessageID": a.id,
                        "MessageStream": a.body.get("MessageStream"),
                        "To": [{"Email": a.to, "Name": None}],
                        "Recipients": [a.to],
                        "Subject": a.body.get("Subject"),
                        "Status": "Sent",
                        "Metadata": a.body.get("Metadata") or {},
                    }
                    for a in page
                ],
            },
        )


class FakeTwilio(_Fake):
    """Twilio's Messages resource for one account."""

    def __init__(self, sid: str, token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sid, self.token = sid, token
        self.path = f"/2010-04-01/Accounts/{sid}/Messages.json"
        self.account_error: tuple[int, int, str] | None = None  # (HTTP, code, message)

    def respond(self, request: Received) -> Answer:
        expected = "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return self._error(401, 20003, "Authenticate")
        if request.path != self.path:
            return self._error(404, 20404, "The requested resource was not found")
        if request.method == "POST":
            if self.account_error is not None:
                return self._error(*self.account_error)
            form = request.form()
            sid = "SM" + uuid.uuid4().hex
            resource = self._resource(sid, form, time.time())
            return self._accept(Accepted(sid, "", form["To"], resource), Answer(201, resource))
        return self._list(request)

    def _resource(self, sid: str, form: dict[str, str], created: float) -> dict[str, Any]:
        return {
            "account_sid": self.sid,
            "api_version": "2010-04-01",
            "body": form.get("Body", ""),
            "date_created": _rfc2822(created),
            "date_sent": None,  # still queued
            "date_updated": _rfc2822(created),
            "direction": "outbound-api",
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_segments": "1",
            "sid": sid,
            "status": "queued",
            "to": form["To"],
            "uri": f"{self.path[:-5]}/{sid}.json",
        }

    def _list(self, request: Received) -> Answer:
        q = {k: v[0] for k, v in request.query.items()}
        with self.lock:
            self.lookups += 1
            found = [a.body for a in reversed(self.accepted)]
        if "To" in q:
            found = [m for m in found if m["to"] == q["To"]]
        if "From" in q:
            found = [m for m in found if m["from"] == q["From"]]
        size = min(int(q.get("PageSize", 50)), 1000)
        number = int(q.get("Page", 0))
        page = found[number * size : (number + 1) * size]
        more = (number + 1) * size < len(found)
        base = {k: v for k, v in q.items() if k not in ("Page", "PageToken")}
        next_uri = (
            f"{self.path}?{urlencode({**base, 'Page': number + 1, 'PageToken': f'PA{number + 1}'})}"
            if more
            else None
        )
        return Answer(
            200,
            {
                "messages": page,
                "page": number,
                "page_size": size,
                "first_page_uri": f"{self.path}?{urlencode({**base, 'Page': 0})}",
                "next_page_uri": next_uri,
                "previous_page_uri": None,
                "uri": f"{self.path}?{urlencode(q)}",
                "end": number * size + len(page) - 1,
                "start": number * size,
            },
        )

    def _error(self, status: int, code: int, message: str) -> Answer:
        return Answer(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def key_of(self, delivery_bodies: dict[str, str]) -> None:
        """Name what was accepted by delivery id, from each delivery's (to, body)."""
        with self.lock:
            for a in self.accepted:
                a.key = delivery_bodies.get(f"{a.to}\x1f{a.body['body']}", "?")


COUNTRIES = [
    {"id": 1, "name": "United States", "delivery_cost": 0, "aliases": "US",
     "states": [{"id": 3, "short_name": "AZ", "name": "Arizona"},
                {"id": 33, "short_name": "NY", "name": "New York"}]},
    {"id": 2, "name": "Canada", "delivery_cost": 1.5, "aliases": "CA",
     "states": [{"id": 70, "short_name": "ON", "name": "Ontario"}]},
    {"id": 81, "name": "Germany", "delivery_cost": 2.5, "aliases": "DE", "states": []},
    {"id": 14, "name": "Austria", "delivery_cost": 2.5, "aliases": "AT", "states": []},
    {"id": 204, "name": "Switzerland", "delivery_cost": 2.5, "aliases": "CH", "states": []},
    {"id": 225, "name": "United Kingdom", "delivery_cost": 2.5, "aliases": "GB UK", "states": []},
]  # fmt: skip
REQUIRED_ORDER_FIELDS = (
    "font_label", "card_id", "message", "sender_address1", "sender_city", "sender_zip",
    "recipient_address1", "recipient_city", "recipient_zip",
)  # fmt: skip


class FakeHandwrytten(_Fake):
    """Handwrytten's v2 API for one API key, in live mode unless ``test_mode``."""

    def __init__(self, key: str, *, test_mode: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.test_mode = test_mode
        self.order_ids = itertools.count(196936)
        self.countries_asked = 0
        self.mode_switches = 0
        self.account_error: str | None = None  # an error for every order ("no credit cards")

    def respond(self, request: Received) -> Answer:
        if request.headers.get("authorization") != self.key:
            return Answer(401, {"httpCode": 401, "status": "error", "message": "no auth"})
        if request.method == "GET" and request.path == "/checkauth/auth":
            return Answer(
                200,
                {"httpCode": 200, "status": "ok", "login": "rosa@blumen-rosa.de",
                 "has_no_password": False, "logged_with": "email",
                 "test_mode": int(self.test_mode)},
            )  # fmt: skip
        if request.method == "GET" and request.path == "/countries/list":
            with self.lock:
                self.countries_asked += 1
            return Answer(200, {"httpCode": 200, "status": "OK", "countries": COUNTRIES})
        if request.method == "POST" and request.path == "/auth/setTestMode":
            self.test_mode = bool(request.json().get("test_mode"))
            self.mode_switches += 1
            return Answer(200, {"httpCode": 200, "status": "ok", "test_mode": int(self.test_mode)})
        if request.method == "POST" and request.path == "/orders/singleStepOrder":
            return self._order(request.json())
        return Answer(404, {"httpCode": 404, "status": "error", "message": "not found"})

    def _order(self, body: dict[str, Any]) -> Answer:
        # the documented errors come with HTTP 200 and {httpCode, error}
        missing = [f for f in REQUIRED_ORDER_FIELDS if not body.get(f)]
        if missing:
            return Answer(200, {"httpCode": 400, "error": f"{missing[0]} error"})
        for role in ("sender", "recipient"):
            country = body.get(f"{role}_country_id", 1)
            known = {c["id"]: c for c in COUNTRIES}
            if country not in known:
                return Answer(200, {"httpCode": 400, "error": "no such country"})
            if country in (1, 2) and not body.get(f"{role}_state"):
                return Answer(200, {"httpCode": 400, "error": f"Oops! Please check {role} address"})
        if self.account_error is not None:
            return Answer(200, {"httpCode": 400, "error": self.account_error})
        order = str(next(self.order_ids))
        answer = Answer(
            200, {"httpCode": 200, "status": "ok", "order_id": int(order), "mail_sent": 0}
        )
        item = Accepted(order, str(body.get("client_metadata") or ""), body["recipient_zip"], body)
        return self._accept(item, answer)


def _rfc2822(instant: float) -> str:
    """Twilio's times: ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(instant))
