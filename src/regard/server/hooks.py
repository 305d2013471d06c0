"""``POST /hooks/<provider name>``: what the providers report after sending.

The provider named in the path (a ``[providers.NAME]`` table) decides the format; a name
that is not a provider with callbacks is 404. Every change is committed before the 2xx.

**postmark** — Postmark's webhook JSON
(https://postmarkapp.com/developer/webhooks/webhooks-overview,
https://postmarkapp.com/developer/webhooks/bounce-webhook,
https://postmarkapp.com/developer/webhooks/spam-complaint-webhook,
https://postmarkapp.com/developer/webhooks/subscription-change-webhook), authenticated by
HTTP Basic auth whose password is the provider's ``callback_secret`` (Postmark sends the
credentials put in the webhook URL, ``https://regard:<secret>@host/hooks/<name>``); without
it, or without a ``callback_secret`` in the config: 401.

- ``RecordType = "Bounce"`` with ``Type`` HardBounce, BadEmailAddress or
  ManuallyDeactivated, or ``Inactive = true``: the ``Email`` has bounced (any purpose).
- ``RecordType = "SpamComplaint"``: the ``Email`` is unsubscribed from marketing e-mail.
- ``RecordType = "SubscriptionChange"``: ``SuppressSending`` true unsubscribes the
  ``Recipient``, false resubscribes it.
- anything else: 200, nothing changes.

**twilio** — status callbacks and inbound messages, form-encoded, verified by
``X-Twilio-Signature`` as Twilio documents it
(https://www.twilio.com/docs/usage/webhooks/webhooks-security): base64 of HMAC-SHA1, keyed
with the account's auth token, over ``<public_url>/hooks/<name>`` followed by every POST
parameter sorted by name, each name then its value; otherwise 403.
(https://www.twilio.com/docs/messaging/guides/track-outbound-message-status,
https://www.twilio.com/docs/messaging/guides/webhook-request.)

- ``MessageStatus`` failed or undelivered with ``ErrorCode`` 30003, 30005 or 30006 (the
  handset is unreachable, unknown, or a landline): the ``To`` number has bounced; 21610 (it
  replied STOP to the carrier): unsubscribed (sms).
- an inbound message whose trimmed ``Body`` is STOP, STOPP, STOPALL, UNSUBSCRIBE, CANCEL,
  END, QUIT or ABMELDEN (any case): the ``From`` number is unsubscribed (sms); START or
  UNSTOP resubscribes it.
- Twilio is answered an empty TwiML ``<Response/>`` (no reply message).

An address no contact has changes nothing (200). A body that is not the format's (not
JSON, not a form) is 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from regard.server.state import ServerState, state_of
from regard.store import Store
from regard.store.suppressions import Kind
from regard.times import now_instant

BOUNCE_TYPES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
TWILIO_BOUNCE_CODES = frozenset({"30003", "30005", "30006"})
TWILIO_STOPPED_CODE = "21610"
STOP_WORDS = frozenset(
    {"STOP", "STOPP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ABMELDEN"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


def _done(changed: bool) -> Response:
    return JSONResponse({"ok": True, "changed": changed})


async def hook(request: Request) -> Response:
    state = state_of(request)
    name = str(request.path_params["name"])
    table = state.config.providers.get(name)
    handler = HANDLERS.get(table.type) if table is not None else None
    if table is None or handler is None:
        return _error(404, "not found")
    return await handler(request, state, name, table.options)


# -- postmark --------------------------------------------------------------------------


def basic_password(request: Request) -> str | None:
    """The password of the request's HTTP Basic credentials, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon else None


async def postmark(
    request: Request, state: ServerState, name: str, options: Mapping[str, Any]
) -> Response:
    secret = options.get("callback_secret")
    password = basic_password(request)
    if (
        not isinstance(secret, str)
        or not secret
        or password is None
        or not hmac.compare_digest(password.encode("utf-8"), secret.encode("utf-8"))
    ):
        return _error(401, "unauthorized", {"WWW-Authenticate": 'Basic realm="regard"'})
    try:
        record = json.loads(await request.body())
    except (ValueError, UnicodeError):
        return _error(400, "the body is not JSON")
    if not isinstance(record, dict):
        return _error(400, "the body is not a JSON object")
    kind = record.get("RecordType")
    source = f"hook:{name}"

    def text(key: str) -> str | None:
        value = record.get(key)
        return value.strip() if isinstance(value, str) and value.strip() else None

    if kind == "Bounce":
        email = text("Email")
        bounce = record.get("Type")
        if email and (bounce in BOUNCE_TYPES or record.get("Inactive") is True):
            reason = f"postmark bounce: {bounce}"
            return _done(await state.call(_by_address, "bounced", "email", email, reason, source))
    elif kind == "SpamComplaint":
        email = text("Email")
        if email:
            changed = await state.call(
                _by_address, "unsubscribed", "email", email, "postmark spam complaint", source
            )
            return _done(changed)
    elif kind == "SubscriptionChange":
        email = text("Recipient")
        suppress = record.get("SuppressSending")
        if email and suppress is True:
            why = record.get("SuppressionReason") or "suppressed"
            reason = f"postmark subscription change: {why}"
            return _done(
                await state.call(_by_address, "unsubscribed", "email", email, reason, source)
            )
        if email and suppress is False:
            return _done(await state.call(_resubscribe, "email", email))
    return _done(False)


def _by_address(
    store: Store, kind: Kind, channel: str, address: str, reason: str, source: str
) -> bool:
    return store.suppressions.by_address(
        kind,
        channel,
        address,
        reason=reason,
        source=source,
        at=now_instant(),
    )


def _resubscribe(store: Store, channel: str, address: str) -> bool:
    return store.suppressions.remove_by_address(channel, address)


# -- twilio ----------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature`` of a form POST to ``url``: base64 HMAC-SHA1 with the
    auth token over the URL followed by each parameter, sorted by name (values of one name
    in sorted order), as name then value."""
    data = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


async def twilio(
    request: Request, state: ServerState, name: str, options: Mapping[str, Any]
) -> Response:
    body = await request.body()
    try:
        params = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (ValueError, UnicodeError):
        params = None
    token = options.get("auth_token")
    given = request.headers.get("x-twilio-signature", "")
    url = f"{state.base_url}/hooks/{name}"
    if (
        not isinstance(token, str)
        or not given
        or params is None
        or not hmac.compare_digest(
            given.encode("utf-8"), twilio_signature(token, url, params).encode("utf-8")
        )
    ):
        if params is None and isinstance(token, str) and given:
            return _error(400, "the body is not a form")
        return _error(403, "forbidden")
    form = dict(params)
    source = f"hook:{name}"
    status = (form.get("MessageStatus") or "").lower()
    if status in ("failed", "undelivered"):
        number = form.get("To", "").strip()
        code = form.get("ErrorCode", "").strip()
        if number and code in TWILIO_BOUNCE_CODES:
            await state.call(
                _by_address, "bounced", "sms", number, f"twilio {status}: {code}", source
            )
        elif number and code == TWILIO_STOPPED_CODE:
            await state.call(
                _by_address, "unsubscribed", "sms", number, f"twilio {code}: replied STOP", source
            )
    elif status in ("", "received") and "Body" in form:  # an inbound message
        number = form.get("From", "").strip()
        word = form["Body"].strip().upper()
        if number and word in STOP_WORDS:
            await state.call(_by_address, "unsubscribed", "sms", number, f"replied {word}", source)
        elif number and word in START_WORDS:
            await state.call(_resubscribe, "sms", number)
    return Response(TWIML_EMPTY, media_type="text/xml")


HANDLERS = {"postmark": postmark, "twilio": twilio}


def routes() -> list[BaseRoute]:
    return [Route("/hooks/{name}", hook, methods=["POST"])]
