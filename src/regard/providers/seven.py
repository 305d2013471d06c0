"""``type = "seven"``: SMS through seven.io (Kiel), a German gateway, cheaper for +49.

Wire format: seven's OpenAPI description (github.com/seven-io/api-schemes, ``POST /sms``)
and its official clients (github.com/seven-io/js-client: base URL
``https://gateway.seven.io/api``, the key in ``X-Api-Key``): ``POST /api/sms``,
form-encoded ``to``, ``text``, ``from`` (at most 11 letters and digits, or 16 digits),
``foreign_id`` (returned in status reports; regard sends the delivery id) and ``label``.
The answer is JSON ``{"success": "100", "total_price", "balance", "debug", "sms_type",
"messages": [{"id", "recipient", "success", "error", "error_text", …}]}``; a refused
request is answered with a bare status code (``900``), often with HTTP 200, so the code
decides, not the HTTP status.

Codes (js-client ``ErrorCode``): 100 sent; 101 not sent to every recipient (the message's
own ``error`` then says why); 201 invalid country code, 202 invalid recipient number,
301/304/305/307 a parameter missing, 400 invalid type, 401 text too long: dead; 306
invalid sender, 300 no authentication, 500 too little credit, 900 invalid API key, 902
API access deactivated, 903 this IP not allowed: the account cannot send (paused); 403
the daily limit for this number reached, 600 carrier failed, 700 unknown error: retried;
402 the reload lock (the same text to the same number within 180 seconds) — only an
earlier attempt of this very delivery can have sent it, so it is ``unconfirmed``, never
sent a third time.

Test mode: ``sandbox = true`` sends ``debug=1``: seven validates the request and answers
as for a real one with ``"debug": "true"``, sends nothing and charges nothing (the debug
switch of seven's own integrations, e.g. github.com/seven-io/nodered-contrib-sms77).

An unknown outcome: seven documents no idempotency key and no look-up by our id, so the
delivery becomes ``unconfirmed`` (or is sent again with ``on_unknown = "resend"``).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import Field, SecretStr

from regard.providers.http import HTTPProvider, ServiceURL, classify_status, response_excerpt
from regard.providers.outcomes import (
    Dead,
    OnUnknown,
    Outcome,
    Paused,
    Retry,
    Sent,
    Unconfirmed,
    Undeliverable,
    Unknown,
)
from regard.providers.resend import MayResend, OnUnknownChoice
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

SENT, PARTLY_SENT, RELOAD_LOCK = 100, 101, 402
ACCOUNT_CODES = frozenset({300, 306, 500, 900, 902, 903})
RETRY_CODES = frozenset({403, 600, 700})
CODE_NAMES = {
    100: "sent",
    101: "not sent to every recipient",
    201: "invalid country code",
    202: "invalid recipient number",
    300: "missing authentication",
    301: "missing parameter to",
    304: "missing parameter type",
    305: "missing parameter text",
    306: "invalid sender",
    307: "missing parameter url",
    400: "invalid type",
    401: "text too long",
    402: "reload lock: the same SMS to this number within 180 seconds",
    403: "daily limit reached for this number",
    500: "insufficient credits",
    600: "carrier failed",
    700: "unknown error",
    900: "invalid API key",
    901: "invalid message id",
    902: "API access deactivated",
    903: "IP address not allowed",
}
_SAFE_LABEL = re.compile(r"^[A-Za-z0-9.\-_@]{1,64}$")


class SevenOptions(StrictModel):
    api_key: SecretStr
    from_: str | None = Field(
        default=None, alias="from", pattern=r"^([A-Za-z0-9 ]{1,11}|\+?[0-9]{1,16})$"
    )
    sandbox: bool = False
    base_url: ServiceURL = "https://gateway.seven.io/api"
    on_unknown: OnUnknownChoice = "unconfirmed"


class SevenProvider(MayResend, HTTPProvider):
    """SMS; the message id is seven's message ``id``."""

    type = "seven"
    channels = frozenset({"sms"})
    Options = SevenOptions
    on_unknown = OnUnknown.NEITHER
    sms_mobile_only = True  # it texts phones: a fixed-line number is no address for it

    def build_request(self, record: DeliveryRecord, client: httpx.AsyncClient) -> httpx.Request:
        to = record.get("to")
        if not isinstance(to, str) or not to:
            raise Undeliverable(f"{to!r} is not a phone number")
        options: SevenOptions = self.options
        form: dict[str, str] = {"to": to, "text": record.get("text") or ""}
        if options.from_:
            form["from"] = options.from_
        delivery_id = str(record["delivery_id"])
        if _SAFE_LABEL.match(delivery_id):
            form["foreign_id"] = delivery_id
        if _SAFE_LABEL.match(str(record["campaign"])):
            form["label"] = str(record["campaign"])
        if options.sandbox:
            form["debug"] = "1"
        return client.build_request(
            "POST",
            options.base_url.rstrip("/") + "/sms",
            data=form,
            headers={"Accept": "application/json", "X-Api-Key": options.api_key.get_secret_value()},
        )

    def read_response(self, response: httpx.Response) -> Outcome:
        if not 200 <= response.status_code < 300:
            return classify_status(response)
        answer: Any
        try:
            answer = response.json()
        except ValueError:
            answer = response.text.strip()
        message: dict[str, Any] = {}
        if isinstance(answer, dict):
            code = _int(answer.get("success"))
            messages = answer.get("messages")
            if isinstance(messages, list) and messages and isinstance(messages[0], dict):
                message = messages[0]
            if code == PARTLY_SENT or message.get("success") is False:
                code = _int(message.get("error")) or code
        else:
            code = _int(answer)
        if code == SENT:
            return Sent(str(message["id"]) if message.get("id") else None)
        name = CODE_NAMES.get(code or 0, "unexpected answer")
        detail = message.get("error_text") or ""
        reason = f"seven {code} ({name})" if code else f"seven: {response_excerpt(response)}"
        reason += f": {detail}" if detail else ""
        if code in ACCOUNT_CODES:
            return Paused(f"{reason}; check api_key, `from` and the account's credit at seven.io")
        if code in RETRY_CODES:
            return Retry(reason)
        if code == RELOAD_LOCK:
            return Unconfirmed(
                f"{reason}: an earlier attempt of this delivery seems to have been sent; "
                "check seven's journal, then `regard deliveries confirm` or `retry`"
            )
        if code is None:
            # a 2xx we cannot read: seven had the request, whether it sent is not known
            return Unknown(f"an answer without a status code: {reason}")
        return Dead(reason)


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None
