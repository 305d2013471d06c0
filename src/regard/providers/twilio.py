"""``type = "twilio"``: SMS through Twilio's Messages API.

Wire format: https://www.twilio.com/docs/messaging/api/message-resource — ``POST
/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``, ``From`` or
``MessagingServiceSid``, ``Body``; HTTP Basic auth with the account SID and auth token;
``201 Created`` with the message's ``sid``. Errors are JSON ``{"code", "message",
"more_info", "status"}`` (https://www.twilio.com/docs/api/errors). Test mode: the account's
test credentials (https://www.twilio.com/docs/iam/test-credentials) with the magic sender
``+15005550006`` send nothing and charge nothing. With ``[server]`` each message carries
``StatusCallback = <public_url>/hooks/<name>``; the reports and inbound STOP replies are
:mod:`regard.server.hooks`'s.

Error codes: 20429 (too many requests) and 21611 (the sender's queue is full,
https://www.twilio.com/docs/api/errors/21611: slow down and try again) are retried; the
codes that say the *account* cannot send — 20003 (authentication failed), 10001 and 20005
(account not active), 21606 and 21659 (``From`` is not a message-capable number of this
account), 21212 (invalid ``From``) — and an HTTP 401/403 without a code pause the provider
for the run (its deliveries stay pending); 21610 is dead and records the number as bounced.

Twilio's Messages API has no idempotency keys (the ``Idempotency-Key`` header regard sends
is ignored), but it can be asked: when an attempt's outcome is unknown, the next one first
lists the messages sent to that number (``GET …/Messages.json?To=<number>&PageSize=50``,
with ``From`` when one is configured; https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources)
and looks for one with the same ``body`` created since the first attempt (a few minutes'
margin for clock skew), following ``next_page_uri`` while the page still reaches back that
far. Found, the delivery is sent with that ``sid`` and no new request; not found, it is sent
again. ``DateSent`` is not used as a filter: a message still queued has no ``date_sent``
yet, and it is exactly the one an unknown outcome may have left behind.
"""

from __future__ import annotations

import base64
import email.utils
from datetime import UTC
from typing import Any
from urllib.parse import parse_qs

import httpx
from pydantic import Field, SecretStr, model_validator

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

UNSUBSCRIBED_RECIPIENT = 21610  # the recipient replied STOP
RETRYABLE_CODES = frozenset({20429, 21611})  # too many requests; the sender's queue is full
# the account cannot send, whatever the message: pause the provider, fix the account
ACCOUNT_CODES = {
    10001: "the Twilio account is not active: check it in the Twilio Console",
    20003: "check account_sid and auth_token (the Console's Account Info)",
    20005: "the Twilio account is not active (suspended or closed): check it in the Console",
    21212: "`from` is not a valid phone number or sender id",
    21606: "`from` must be an SMS-capable number of this Twilio account",
    21659: "`from` must be a Twilio number of this account",
}
LOOKUP_MARGIN = 300  # seconds before the first attempt a found message may have been created
LOOKUP_PAGES = 5
ERROR_NAMES = {
    10001: "account not active",
    20003: "authentication failed",
    20005: "account not active",
    21212: "invalid 'From' number",
    21611: "the 'From' number's queue is full",
    21659: "'From' is not a Twilio number",
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
    on_unknown = OnUnknown.LOOKUP
    sms_mobile_only = True

    def _auth(self) -> dict[str, str]:
        options = self.options
        login = f"{options.account_sid}:{options.auth_token.get_secret_value()}"
        return {
            "Accept": "application/json",
            "Authorization": "Basic " + base64.b64encode(login.encode()).decode("ascii"),
        }

    async def lookup(
        self, record: DeliveryRecord, client: httpx.AsyncClient, since: int | None
    ) -> Sent | Unknown | Paused | None:
        to, body = record.get("to"), record.get("text") or ""
        if not isinstance(to, str) or not to:
            return None
        options = self.options
        base = options.base_url.rstrip("/")
        first: dict[str, str] = {"To": to, "PageSize": "50"}
        if options.from_:
            first["From"] = options.from_
        params: dict[str, str] | None = first
        url: str | None = f"{base}/2010-04-01/Accounts/{options.account_sid}/Messages.json"
        earliest = (since or 0) - LOOKUP_MARGIN
        for _ in range(LOOKUP_PAGES):
            assert url is not None
            request = client.build_request("GET", url, params=params, headers=self._auth())
            answer = await self.exchange(request, client)
            if not isinstance(answer, httpx.Response):
                return Unknown(f"could not ask Twilio whether it has the message: {answer.reason}")
            page = response_json(answer)
            if not 200 <= answer.status_code < 300:
                paused = self._account_failure(answer, page)
                return paused or Unknown(
                    f"could not ask Twilio whether it has the message: HTTP {answer.status_code}"
                )
            messages = page.get("messages")
            if not isinstance(messages, list):
                return Unknown("could not ask Twilio whether it has the message: no list")
            reaches_back = False
            for message in messages:
                if not isinstance(message, dict):
                    continue
                created = _instant(message.get("date_created"))
                if created is not None and created < earliest:
                    reaches_back = True
                    continue
                if message.get("body") == body and message.get("to") == to:
                    sid = message.get("sid")
                    return Sent(str(sid) if sid else None)
            next_uri = page.get("next_page_uri")
            if reaches_back or not isinstance(next_uri, str) or not next_uri:
                return None
            url, params = base + next_uri, None  # the next page's URI carries the filters
        return None

    def _account_failure(self, response: httpx.Response, answer: dict[str, Any]) -> Paused | None:
        """Paused when Twilio's answer says the account (not the message) cannot send."""
        return coded_account_failure(
            response, "Twilio", answer.get("code"), answer.get("message"), ACCOUNT_CODES,
            ERROR_NAMES, "the credentials were refused; check account_sid and auth_token",
        )  # fmt: skip

    def build_request(self, record: DeliveryRecord, client: httpx.AsyncClient) -> httpx.Request:
        if not isinstance(record.get("to"), str) or not record["to"]:
            raise Undeliverable(f"{record.get('to')!r} is not a phone number")
        options = self.options
        form = {"To": record["to"], "Body": record.get("text") or ""}
        if options.messaging_service_sid:
            form["MessagingServiceSid"] = options.messaging_service_sid
        if options.from_:
            form["From"] = options.from_
        if self.config.server is not None:  # delivery reports come back to regard serve
            form["StatusCallback"] = f"{self.config.server.base_url}/hooks/{self.name}"
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
        paused = self._account_failure(response, answer)
        if paused is not None:
            return paused
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


def _instant(value: Any) -> int | None:
    """Twilio's RFC 2822 time (``Wed, 18 Aug 2010 20:01:40 +0000``) as unix seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, said without commitment
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())
