"""``type = "twilio"``: SMS through Twilio's Messages API.

Wire format: https://www.twilio.com/docs/messaging/api/message-resource — ``POST
/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``, ``From`` or
``MessagingServiceSid``, ``Body``; HTTP Basic auth with the account SID and auth token;
``201 Created`` with the message's ``sid``. Errors are JSON ``{"code", "message",
"more_info", "status"}`` (https://www.twilio.com/docs/api/errors). Test mode: the account's
test credentials (https://www.twilio.com/docs/iam/test-credentials) with the magic sender
``+15005550006`` send nothing and charge nothing.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

import httpx
from pydantic import Field, SecretStr, model_validator

from regard.providers.base import (
    HTTPProvider,
    Outcome,
    Sent,
    ServiceURL,
    Undeliverable,
    classify_failure,
    coded_reason,
    response_json,
)
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

UNSUBSCRIBED_RECIPIENT = 21610  # the recipient replied STOP
RETRYABLE_CODES = frozenset({20429})  # too many requests
ERROR_NAMES = {
    20003: "authentication failed",
    20429: "too many requests",
    21211: "invalid 'To' phone number",
    21408: "sending to this region is not enabled",
    21606: "'From' is not a message-capable number of this account",
    21610: "recipient unsubscribed (replied STOP)",
    21612: "'To' is not reachable by SMS",
    21614: "'To' is not a mobile number",
    21617: "body exceeds 1600 characters",
}


class TwilioOptions(StrictModel):
    account_sid: str = Field(pattern=r"^AC\w+$")
    auth_token: SecretStr
    from_: str | None = Field(default=None, alias="from")  # a number in E.164, or a sender id
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG\w+$")
    base_url: ServiceURL = "https://api.twilio.com"

    @model_validator(mode="after")
    def _has_sender(self) -> TwilioOptions:
        if not self.from_ and not self.messaging_service_sid:
            raise ValueError("set `from` (a Twilio number) or `messaging_service_sid`")
        return self


class TwilioProvider(HTTPProvider):
    """SMS; the message id is Twilio's ``sid`` (``SM…``)."""

    type = "twilio"
    channels = frozenset({"sms"})
    Options = TwilioOptions

    def build_request(self, record: DeliveryRecord, client: httpx.AsyncClient) -> httpx.Request:
        if not isinstance(record.get("to"), str) or not record["to"]:
            raise Undeliverable(f"{record.get('to')!r} is not a phone number")
        options = self.options
        form = {"To": record["to"], "Body": record.get("text") or ""}
        if options.messaging_service_sid:
            form["MessagingServiceSid"] = options.messaging_service_sid
        if options.from_:
            form["From"] = options.from_
        url = f"{options.base_url.rstrip('/')}/2010-04-01/Accounts/{options.account_sid}/Messages.json"
        return client.build_request(
            "POST",
            url,
            data=form,
            headers={
                "Accept": "application/json",
                "Authorization": "Basic " + self._credential(),
            },
        )

    def _credential(self) -> str:
        """The HTTP Basic credential: base64 of ``<account SID>:<auth token>``."""
        login = f"{self.options.account_sid}:{self.options.auth_token.get_secret_value()}"
        return base64.b64encode(login.encode()).decode("ascii")

    def derived_secrets(self) -> list[str]:
        return [self._credential()]

    def read_response(self, response: httpx.Response) -> Outcome:
        answer = response_json(response)
        status = response.status_code
        if 200 <= status < 300:
            sid = answer.get("sid")
            return Sent(str(sid) if sid else None)
        code = answer.get("code")
        reason = coded_reason(response, "Twilio", code, ERROR_NAMES, answer.get("message"))
        unsubscribe = _recipient(response.request) if code == UNSUBSCRIBED_RECIPIENT else None
        return classify_failure(
            response, reason, retry=code in RETRYABLE_CODES, unsubscribe=unsubscribe
        )


def _recipient(request: httpx.Request) -> str | None:
    """The ``To`` of the refused message, from the form that was sent."""
    values = parse_qs(request.content.decode("utf-8")).get("To")
    return values[0] if values else None
