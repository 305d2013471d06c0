"""``type = "handwrytten"``: a robot-handwritten card, mailed by post, via Handwrytten.

Wire format: Handwrytten's single-step order, https://www.handwrytten.com/api-redoc
("Single Step Order", ``POST /orders/singleStepOrder``): JSON ``card_id``, ``message``,
``font_label``, ``date_send``, ``client_metadata``, ``sender_*`` and ``recipient_*`` address
fields; the API key alone in the ``Authorization`` header (no ``Bearer``). Countries: the
API takes ``*_country_id`` (1 United States, 2 Canada, the only ids it documents; both need
a ``*_state``) or the country's English name in ``*_country``; regard sends the name for
every ISO code and the id for US and CA. Errors come as ``{"httpCode", "status": "error",
"message"}``, sometimes with HTTP 200, so the body's status decides.

Test mode is a switch on the account: in it, orders are accepted but not fulfilled
(nothing is written or mailed), and payments are authorised but not captured. ``test_mode = true`` turns it on with
``POST /auth/setTestMode`` before the first order of a run, and sends no order unless that
succeeded; ``false`` leaves the account as it is.

The card text limit: Handwrytten documents no number (what fits depends on the card and
the handwriting). regard refuses card texts over 320 characters, a conservative choice of
its own, so that a text that passes ``regard check`` is not cut short on a small card.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx
from babel import Locale
from pydantic import SecretStr

from regard.providers.base import (
    RETRYABLE_STATUS,
    HTTPProvider,
    Outcome,
    Retry,
    Sent,
    ServiceURL,
    Undeliverable,
    classify_failure,
    response_excerpt,
    response_json,
)
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

COUNTRY_IDS = {"US": 1, "CA": 2}  # the ids Handwrytten documents; others go by name
_COUNTRY_NAMES = Locale("en").territories


class HandwryttenOptions(StrictModel):
    api_key: SecretStr
    base_url: ServiceURL = "https://api.handwrytten.com/v2"
    test_mode: bool = False
    card_id: int | None = None  # the card used when a campaign names no design
    font: str | None = None  # the handwriting (font_label) when a campaign names none
    designs: dict[str, int] = {}  # campaign `[card] design` name → Handwrytten card id
    fonts: dict[str, str] = {}  # campaign `[card] font` name → Handwrytten font label


class HandwryttenProvider(HTTPProvider):
    """Handwritten cards; the message id is Handwrytten's order id."""

    type = "handwrytten"
    channels = frozenset({"card"})
    Options = HandwryttenOptions
    card_max_chars = 320

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._test_mode_on = False
        self._test_mode_lock = asyncio.Lock()

    async def send(self, record: DeliveryRecord, client: httpx.AsyncClient) -> Outcome:
        if self.options.test_mode and not self._test_mode_on:
            async with self._test_mode_lock:
                if not self._test_mode_on:
                    refused = await self._switch_to_test_mode(client)
                    if refused is not None:
                        return self.scrub(refused)
                    self._test_mode_on = True
        return await super().send(record, client)

    async def _switch_to_test_mode(self, client: httpx.AsyncClient) -> Outcome | None:
        request = client.build_request(
            "POST", self._url("auth/setTestMode"), json={"test_mode": 1}, headers=self._headers()
        )
        exchanged = await self.exchange(request, client)
        answer = exchanged if isinstance(exchanged, Retry) else self.read_response(exchanged)
        if isinstance(answer, Sent):
            return None
        # no order goes out unless the account is surely in test mode
        return replace(answer, reason=f"could not switch the account to test mode: {answer.reason}")

    def build_request(self, record: DeliveryRecord, client: httpx.AsyncClient) -> httpx.Request:
        card = record.get("card") or {}
        to = record.get("to")
        if not isinstance(to, dict):
            raise Undeliverable(f"a card needs a postal address, not {to!r}")
        sender = card.get("sender") or self.config.sender.return_address()
        order: dict[str, Any] = {
            "card_id": self._card_id(card.get("design")),
            "font_label": self._font(card.get("font")),
            "message": record.get("text") or "",
            "date_send": datetime.now(self.config.tz).date().isoformat(),
            "client_metadata": str(record["delivery_id"]),
            **address_fields("sender", sender),
            **address_fields("recipient", to),
        }
        return client.build_request(
            "POST", self._url("orders/singleStepOrder"), json=order, headers=self._headers()
        )

    def read_response(self, response: httpx.Response) -> Outcome:
        answer = response_json(response)
        status = answer.get("httpCode", response.status_code)
        failed = answer.get("status") == "error" or not 200 <= response.status_code < 300
        if not failed:
            return Sent(order_id(answer))
        message = answer.get("message") or response_excerpt(response)
        reason = f"HTTP {response.status_code}: Handwrytten: {message}"
        transient = isinstance(status, int) and (status in RETRYABLE_STATUS or status >= 500)
        return classify_failure(response, reason, retry=transient)

    def _card_id(self, design: str | None) -> int:
        if design is None:
            if self.options.card_id is None:
                raise Undeliverable(
                    f"no card: the campaign names no [card] design and providers.{self.name} "
                    "sets no card_id"
                )
            return int(self.options.card_id)
        if design in self.options.designs:
            return int(self.options.designs[design])
        if design.isdigit():
            return int(design)
        raise Undeliverable(
            f"card design {design!r} is not a Handwrytten card id; map it in "
            f"providers.{self.name}.designs = {{ {design!r} = <card id> }}"
        )

    def _font(self, font: str | None) -> str:
        chosen = font or self.options.font
        if not chosen:
            raise Undeliverable(
                f"no handwriting: the campaign names no [card] font and providers.{self.name} "
                "sets no font"
            )
        # campaigns name a handwriting in their own words ("hand-1"), so they stay
        # portable between card providers; a name not mapped is taken as a font label
        return str(self.options.fonts.get(chosen, chosen))

    def _url(self, path: str) -> str:
        return f"{self.options.base_url.rstrip('/')}/{path}"

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "Authorization": self.options.api_key.get_secret_value(),
        }


def address_fields(role: str, address: dict[str, Any]) -> dict[str, Any]:
    """``<role>_name``, ``<role>_address1``… of a regard postal address (name, company,
    street, postal_code, city, country as ISO 3166-1 alpha-2, optional state)."""
    country = str(address.get("country") or "").upper()
    name, company = address.get("name") or "", address.get("company") or ""
    fields: dict[str, Any] = {
        f"{role}_name": name or company,
        f"{role}_business_name": company if name else "",
        f"{role}_address1": address.get("street") or "",
        f"{role}_city": address.get("city") or "",
        f"{role}_zip": address.get("postal_code") or "",
        f"{role}_country": _COUNTRY_NAMES.get(country, country),
    }
    if address.get("state"):
        fields[f"{role}_state"] = address["state"]
    if country in COUNTRY_IDS:
        fields[f"{role}_country_id"] = COUNTRY_IDS[country]
    return {k: v for k, v in fields.items() if v != ""}


def order_id(answer: dict[str, Any]) -> str | None:
    """The order id of a successful answer (``order_id``, or ``id`` of the order object)."""
    nested = answer.get("response")
    for value in (
        answer.get("order_id"),
        nested.get("id") if isinstance(nested, dict) else None,
        answer.get("id"),
    ):
        if value is not None:
            return str(value)
    return None
