"""``type = "postmark"``: e-mail through Postmark's ``POST /email``.

Wire format: https://postmarkapp.com/developer/api/email-api (body fields ``From``, ``To``,
``Subject``, ``TextBody``, ``HtmlBody``, ``MessageStream``, ``Tag``, ``Metadata``; header
``X-Postmark-Server-Token``), error codes: https://postmarkapp.com/developer/api/overview#error-codes.
Test mode: the server token ``POSTMARK_API_TEST`` validates the request without sending
(https://postmarkapp.com/developer/user-guide/send-email-with-api).

Postmark answers errors with a JSON ``{"ErrorCode": n, "Message": "..."}``; the code decides:
406 (inactive recipient: hard bounce, spam complaint or manual suppression; HTTP 422) is
dead and records the address as bounced, 100 (maintenance) and 429 are retried; the codes that say the
*account* cannot send — 10 (bad or missing server token), 400 (sender signature not found),
401 (sender signature not confirmed), 405 (not allowed to send: no credits), 412 (account
pending approval), 413 (account may not send) — and an HTTP 401/403 without a code pause
the provider for the run (its deliveries stay pending); every other code is dead.

Postmark has no idempotency keys: the ``Idempotency-Key`` header regard sends is ignored.
What it offers instead is a search of the messages it accepted, by metadata
(https://postmarkapp.com/developer/api/messages-api#outbound-message-search, ``GET
/messages/outbound`` with ``count``, ``offset`` and ``metadata_<key>=<value>``; answer
``{"TotalCount", "Messages": [{"MessageID", …}]}``). Every message carries ``Metadata
{"delivery_id": …}``, so when an attempt's outcome is unknown the next one first asks
``/messages/outbound?count=1&offset=0&metadata_delivery_id=<id>``: found, the delivery is
sent (with that MessageID) without a new request; not found, it is sent again. The search
sees what Postmark accepted within seconds, not at once: the retry's backoff (at least
``delivery.backoff``) is that margin.

Marketing mail goes on ``broadcast_stream`` with its List-Unsubscribe pair in ``Headers``
(``[{"Name", "Value"}]``); Postmark's callbacks come back to :mod:`regard.server.hooks`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from pydantic import Field, SecretStr

from regard.errors import ProviderError
from regard.providers.http import (
    HTTPProvider,
    ServiceURL,
    classify_failure,
    coded_account_failure,
    coded_reason,
    response_json,
)
from regard.providers.outcomes import OnUnknown, Outcome, Paused, Sent, Undeliverable, Unknown
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

INACTIVE_RECIPIENT = 406
RETRYABLE_CODES = frozenset({100, 429})  # maintenance, rate limit exceeded
# the account cannot send, whatever the message: pause the provider, fix the account
ACCOUNT_CODES = {
    10: "check server_token: it must be the Server API token of a Postmark server",
    400: "add and confirm a sender signature for the From address in Postmark",
    401: "confirm the sender signature of the From address (Postmark sent a confirmation mail)",
    405: "the Postmark account has no credits or may not send: check its billing",
    412: "the Postmark account is pending approval: wait for it or contact Postmark",
    413: "the Postmark account may not send: contact Postmark support",
}
ERROR_NAMES = {
    10: "bad or missing server token",
    100: "maintenance",
    300: "invalid email request",
    400: "sender signature not found",
    401: "sender signature not confirmed",
    402: "invalid JSON",
    403: "incompatible JSON",
    405: "not allowed to send (account out of credits)",
    406: "inactive recipient",
    409: "JSON required",
    411: "forbidden attachment type",
    412: "account is pending",
    413: "account may not send",
    429: "rate limit exceeded",
}
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


def mailbox(name: str, address: str) -> str:
    """``Name <address>``, the name quoted when it holds punctuation (Postmark's From format)."""
    if not name:
        return address
    if _SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


class PostmarkOptions(StrictModel):
    server_token: SecretStr
    from_: str | None = Field(default=None, alias="from")  # default: [sender] name and email
    message_stream: str = "outbound"  # service mail: the transactional stream
    broadcast_stream: str = "broadcast"  # marketing mail: Postmark's broadcast stream
    callback_secret: SecretStr | None = None  # the Basic auth password of POST /hooks/<name>
    base_url: ServiceURL = "https://api.postmarkapp.com"


class PostmarkProvider(HTTPProvider):
    """Transactional e-mail; the message id is Postmark's ``MessageID``."""

    type = "postmark"
    channels = frozenset({"email"})
    Options = PostmarkOptions
    on_unknown = OnUnknown.LOOKUP

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sender = self.config.sender
        self.sender = self.options.from_ or (sender.email and mailbox(sender.name, sender.email))
        if not self.sender:
            raise ProviderError("no sender address: set `from` here or `email` in [sender]")

    def build_request(self, record: DeliveryRecord, client: httpx.AsyncClient) -> httpx.Request:
        if not isinstance(record.get("to"), str) or not record["to"]:
            raise Undeliverable(f"{record.get('to')!r} is not an e-mail address")
        message: dict[str, Any] = {
            "From": self.sender,
            "To": record["to"],
            "Subject": record.get("subject") or "",
            "TextBody": record.get("text") or "",
            "MessageStream": self.stream(record),
            "Tag": record["campaign"],
            "Metadata": {
                "delivery_id": str(record["delivery_id"]),
                "campaign": str(record["campaign"]),
                "contact_id": str(record["contact_id"]),
            },
        }
        if record.get("html"):
            message["HtmlBody"] = record["html"]
        headers = record.get("headers") or {}
        if headers:
            message["Headers"] = [{"Name": k, "Value": v} for k, v in headers.items()]
        if self.config.sender.reply_to:
            message["ReplyTo"] = self.config.sender.reply_to
        return client.build_request(
            "POST",
            self.options.base_url.rstrip("/") + "/email",
            json=message,
            headers={
                "Accept": "application/json",
                "X-Postmark-Server-Token": self.options.server_token.get_secret_value(),
            },
        )

    def stream(self, record: DeliveryRecord) -> str:
        """Marketing mail (it carries List-Unsubscribe) goes on ``broadcast_stream``, the
        rest on ``message_stream``: Postmark pauses servers that send promotions on the
        transactional stream (https://postmarkapp.com/message-streams)."""
        headers = record.get("headers") or {}
        marketing = "List-Unsubscribe" in headers
        stream: str = self.options.broadcast_stream if marketing else self.options.message_stream
        return stream

    async def lookup(
        self, record: DeliveryRecord, client: httpx.AsyncClient, since: int | None
    ) -> Sent | Unknown | Paused | None:
        request = client.build_request(
            "GET",
            self.options.base_url.rstrip("/") + "/messages/outbound",
            params={
                "count": "1",
                "offset": "0",
                "metadata_delivery_id": str(record["delivery_id"]),
            },
            headers={
                "Accept": "application/json",
                "X-Postmark-Server-Token": self.options.server_token.get_secret_value(),
            },
        )
        answer = await self.exchange(request, client)
        if not isinstance(answer, httpx.Response):
            return Unknown(f"could not ask Postmark whether it has the message: {answer.reason}")
        found = response_json(answer)
        if not 200 <= answer.status_code < 300 or found.get("ErrorCode"):
            paused = self._account_failure(answer, found)
            if paused is not None:
                return paused
            return Unknown(
                f"could not ask Postmark whether it has the message: HTTP {answer.status_code}"
            )
        messages = found.get("Messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            message_id = messages[0].get("MessageID")
            return Sent(str(message_id) if message_id else None)
        return None

    def _account_failure(self, response: httpx.Response, answer: dict[str, Any]) -> Paused | None:
        """Paused when Postmark's answer says the account (not the message) cannot send."""
        return coded_account_failure(
            response, "Postmark", answer.get("ErrorCode"), answer.get("Message"), ACCOUNT_CODES,
            ERROR_NAMES, "the server token was refused; check server_token",
        )  # fmt: skip

    def read_response(self, response: httpx.Response) -> Outcome:
        answer = response_json(response)
        code = answer.get("ErrorCode")
        status = response.status_code
        if 200 <= status < 300 and not code:
            message_id = answer.get("MessageID")
            return Sent(str(message_id) if message_id else None)
        paused = self._account_failure(response, answer)
        if paused is not None:
            return paused
        reason = coded_reason(response, "Postmark", code, ERROR_NAMES, answer.get("Message"))
        unsubscribe = _recipient(response.request) if code == INACTIVE_RECIPIENT else None
        return classify_failure(
            response, reason, retry=code in RETRYABLE_CODES, unsubscribe=unsubscribe
        )


def _recipient(request: httpx.Request) -> str | None:
    """The ``To`` of the message Postmark refused (one address: regard sends one each)."""
    try:
        to = json.loads(request.content).get("To")
    except ValueError:
        return None
    return str(to) if to else None
