"""``type = "brevo"``: e-mail through Brevo's transactional API (formerly Sendinblue; an EU
service, Paris).

Wire format: https://developers.brevo.com/reference/send-transac-email — ``POST
/v3/smtp/email`` with the key in the ``api-key`` header and a JSON body ``sender`` {name,
email}, ``to`` [{email}], ``replyTo``, ``subject``, ``htmlContent``, ``textContent``,
``headers`` (custom mail headers: List-Unsubscribe and List-Unsubscribe-Post go here) and
``tags``; ``201 Created`` with ``{"messageId": "<…>"}``. Errors are ``{"code", "message"}``
(the ``ErrorModel`` of Brevo's API: invalid_parameter, missing_parameter,
not_enough_credits, permission_denied, unauthorized, account_under_validation, …) with
HTTP 400, 401, 402, 403, 404, 429 or 5xx.

Test mode: ``sandbox = true`` adds the mail header ``X-Sib-Sandbox: drop``
(https://developers.brevo.com/docs/using-sandbox-mode): Brevo validates the request and
answers 201 with a message id, sends nothing and logs nothing.

An unknown outcome: Brevo de-duplicates by ``headers.idempotencyKey`` (a UUID; regard
derives one from the delivery id) — for 15 minutes by its changelog of 2021-11-10, 30 by
its current guide (https://developers.brevo.com/docs/heterogenous-versions-batch-emails);
regard counts on the shorter. So before sending again it asks (``OnUnknown.LOOKUP``): within
15 minutes of the first attempt, the same request goes again and Brevo drops the
duplicate; later, it looks for the mail in Brevo's list of transactional e-mails
(https://developers.brevo.com/reference/get-transac-emails-list, ``GET /v3/smtp/emails``
by recipient and date, whose entries carry their ``tags``): an entry tagged with the
delivery id → ``sent`` without a new request; none → sent again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
from pydantic import Field, SecretStr

from regard.errors import ProviderError
from regard.providers.http import (
    HTTPProvider,
    ServiceURL,
    classify_failure,
    response_excerpt,
    response_json,
)
from regard.providers.outcomes import OnUnknown, Outcome, Paused, Sent, Undeliverable, Unknown
from regard.providers.smtp import OWN_HEADERS
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

IDEMPOTENCY_TTL = timedelta(minutes=15)  # the shorter of the two Brevo documents
ACCOUNT_CODES = frozenset(
    {"unauthorized", "not_enough_credits", "permission_denied", "account_under_validation"}
    | {"reseller_permission_denied"}
)
LIST_LIMIT = 100  # entries per page Brevo's list answers with


class BrevoOptions(StrictModel):
    api_key: SecretStr
    from_: str | None = Field(default=None, alias="from")  # an address; default: [sender] email
    from_name: str | None = None  # default: [sender] name
    sandbox: bool = False
    base_url: ServiceURL = "https://api.brevo.com"


class BrevoProvider(HTTPProvider):
    """Transactional e-mail; the message id is Brevo's ``messageId``."""

    type = "brevo"
    channels = frozenset({"email"})
    Options = BrevoOptions
    on_unknown = OnUnknown.LOOKUP

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options: BrevoOptions = self.options
        sender = self.config.sender
        address = options.from_ or sender.email
        if not address:
            raise ProviderError("no sender address: set `from` here or `email` in [sender]")
        self.sender: dict[str, str] = {"email": address}
        name = options.from_name if options.from_name is not None else sender.name
        if name:
            self.sender["name"] = name
        self.reply_to = str(getattr(sender, "reply_to", "") or "")

    def _url(self, path: str) -> str:
        return f"{self.options.base_url.rstrip('/')}/v3/{path}"

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "api-key": self.options.api_key.get_secret_value()}

    def build_request(self, record: DeliveryRecord, client: httpx.AsyncClient) -> httpx.Request:
        to = record.get("to")
        if not isinstance(to, str) or "@" not in to:
            raise Undeliverable(f"{to!r} is not an e-mail address")
        headers: dict[str, str] = {}
        own = cast(dict[str, Any], record).get("headers") or {}
        for name, value in dict(own).items():
            if str(name).lower() not in OWN_HEADERS and value is not None:
                headers[str(name)] = str(value)
        headers["idempotencyKey"] = idempotency_key(str(record["delivery_id"]))
        if self.options.sandbox:
            headers["X-Sib-Sandbox"] = "drop"
        body: dict[str, Any] = {
            "sender": self.sender,
            "to": [{"email": to}],
            "subject": record.get("subject") or "",
            "textContent": record.get("text") or "",
            "headers": headers,
            "tags": [str(record["campaign"]), str(record["delivery_id"])],
        }
        if record.get("html"):
            body["htmlContent"] = record["html"]
        if self.reply_to:
            body["replyTo"] = {"email": self.reply_to}
        return client.build_request(
            "POST", self._url("smtp/email"), json=body, headers=self._headers()
        )

    def read_response(self, response: httpx.Response) -> Outcome:
        answer = response_json(response)
        status = response.status_code
        if 200 <= status < 300:
            message_id = answer.get("messageId")
            return Sent(str(message_id) if message_id else None)
        code = answer.get("code")
        message = answer.get("message") or ""
        reason = (
            f"HTTP {status}: Brevo {code}: {message}"
            if code
            else f"HTTP {status}: {response_excerpt(response)}"
        )
        if code == "duplicate_request":
            # only an earlier attempt of this delivery can carry its idempotency key
            return Sent(None)
        if code in ACCOUNT_CODES or status in (401, 402):
            return Paused(f"{reason}; check api_key, the sender and the account at Brevo")
        return classify_failure(response, reason)

    async def lookup(
        self, record: DeliveryRecord, client: httpx.AsyncClient, since: int | None
    ) -> Sent | Unknown | Paused | None:
        now = datetime.now(UTC)
        first = datetime.fromtimestamp(since, UTC) if since is not None else None
        if first is not None and now - first < IDEMPOTENCY_TTL:
            return None  # Brevo still knows the key: the same request is dropped if it had it
        to = record.get("to")
        if not isinstance(to, str):
            return None
        start = max((first or now) - timedelta(days=1), now - timedelta(days=29))
        params = {
            "email": to,
            "startDate": start.date().isoformat(),
            "endDate": now.date().isoformat(),
            "limit": str(LIST_LIMIT),
            "sort": "desc",
        }
        request = client.build_request(
            "GET", self._url("smtp/emails"), params=params, headers=self._headers()
        )
        answer = await self.exchange(request, client)
        if not isinstance(answer, httpx.Response):
            return Unknown(f"could not ask Brevo whether it has the message: {answer.reason}")
        if not 200 <= answer.status_code < 300:
            asked = self.read_response(answer)
            if isinstance(asked, Paused):
                return asked
            why = getattr(asked, "reason", "")
            return Unknown(f"could not ask Brevo whether it has the message: {why}")
        emails = response_json(answer).get("transactionalEmails") or []
        for entry in emails if isinstance(emails, list) else []:
            if isinstance(entry, dict) and str(record["delivery_id"]) in (entry.get("tags") or []):
                found = entry.get("messageId")
                return Sent(str(found) if found else None)
        return None


def idempotency_key(delivery_id: str) -> str:
    """A UUID (Brevo wants one) that is the same for every attempt of a delivery: the
    delivery id's 32 hex digits, or a name-based UUID of an id of another shape."""
    try:
        return str(uuid.UUID(hex=delivery_id.removeprefix("d_")))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"regard:{delivery_id}"))
