"""``type = "handwrytten"``: a robot-handwritten card, mailed by post, via Handwrytten.

API version: v2 (``https://api.handwrytten.com/v2``), the base URL of Handwrytten's own
current SDKs (github.com/handwrytten/handwrytten-python-sdk, ``DEFAULT_BASE_URL``), whose
bundled OpenAPI description ("Handwrytten API", servers ``…/api/v1`` and ``…/api/v2``, the
same paths) documents every endpoint used here. The order is the one-request
``POST /orders/singleStepOrder`` ("Create's a complete order from one json API call"), not
the SDK's ``orders/placeBasket`` + ``basket/send``: the basket is one per account, so two
workers (or two processes) filling and sending it at once would send each other's cards.

Request: JSON ``card_id``, ``message``, ``font_label``, ``date_send``, ``client_metadata``
(the delivery id), and for ``sender_`` and ``recipient_``: ``first_name``, ``last_name``,
``address1``, ``address2``, ``city``, ``zip``, ``state`` ("required for US and Canada"),
``country_id`` — the fields that operation documents (the older ``*_name`` and
``*_business_name`` are not sent). A company goes on the first address line, the street on
the second (with a contact's ``address2`` after it). The API key alone is the
``Authorization`` header (no ``Bearer``). Answer: ``{"httpCode": 200, "status": "ok",
"order_id": n}``.

Countries: the ids come from ``GET /countries/list`` (``{"countries": [{"id", "name",
"aliases", "states": [{"short_name", …}]}]}``), fetched once and kept for a day; a country
not on it, or a US/CA address without a state on its list, is dead without an order.

Errors: the body decides, whatever the HTTP status: ``{"httpCode": 4xx, "error": "…"}``
(what the API documents for singleStepOrder), ``"status": "error"`` or ``"success": false``
is an error; a 2xx answer without an ``order_id`` is not ``sent`` either (it is
``unconfirmed``: the order may exist). Authentication failures (401, "no uid") and payment
errors ("no credit cards", "cannot buy", "error processing payment", …) pause the provider
for the run; 408/425/429 are retried; a 5xx may come after the order was placed, so it is an
unknown outcome.

Handwrytten documents no idempotency key and regard treats it as a service that can
neither de-duplicate nor be asked: an attempt whose outcome is unknown (a timeout after
sending, a lost connection, a run killed mid-send, a 5xx, a 2xx without an order id) makes
the delivery ``unconfirmed``; it is never sent again by itself (``regard deliveries confirm``
once the order is seen in the Handwrytten dashboard, ``retry`` once it is not there).

Test mode is the *account's* setting (orders accepted but never written or mailed, payments
authorised, not captured), switched only by the account's owner (dashboard, or ``POST
/auth/setTestMode``); regard never switches it. Before its first order of a run it reads the
setting (``GET /checkauth/auth``, ``test_mode`` 0/1): with ``test_mode = true`` it sends only
while the account is in test mode, with ``false`` (the default) only while it is live;
otherwise the provider is paused with what to switch. So a "live" card is never recorded as
sent while the account would throw it away, nor a test card paid for.

The card text limit: Handwrytten documents no number (what fits depends on the card and
the handwriting). regard refuses card texts over 320 characters, a conservative choice of
its own, so that a text that passes ``regard check`` is not cut short on a small card.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from regard.providers.http import (
    RETRYABLE_STATUS,
    HTTPProvider,
    ServiceURL,
    classify_failure,
    response_excerpt,
    response_json,
    retry_with,
)
from regard.providers.outcomes import (
    OnUnknown,
    Outcome,
    Paused,
    Retry,
    Sent,
    Unconfirmed,
    Undeliverable,
    Unknown,
)
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

STATE_COUNTRIES = frozenset({"US", "CA"})  # "required for US and Canada"
COUNTRIES_TTL = 24 * 3600  # seconds the countries list is kept
# answers about the account, not the card: the provider pauses
AUTH_ERRORS = ("no uid", "unauthorized", "not authorized", "invalid api key", "no auth")
PAYMENT_ERRORS = (
    "no credit cards",
    "credit_card id error",
    "no such credit card",
    "cannot buy",
    "no free cards",
    "error processing payment",
    "authorize.net",
    "insufficient",
)
# countries lists by base URL: (fetched at, ISO code → country entry)
_COUNTRIES: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}


class HandwryttenOptions(StrictModel):
    api_key: SecretStr
    base_url: ServiceURL = "https://api.handwrytten.com/v2"
    # what the account must be set to for regard to send: test (true) or live (false)
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
    on_unknown = OnUnknown.NEITHER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mode_checked = False
        self._ready_lock = asyncio.Lock()
        self._countries: dict[str, dict[str, Any]] | None = None

    async def send(self, record: DeliveryRecord, client: httpx.AsyncClient) -> Outcome:
        async with self._ready_lock:
            refused = await self._get_ready(client)
        if refused is not None:
            return self.scrub(refused)
        return await super().send(record, client)

    async def _get_ready(self, client: httpx.AsyncClient) -> Outcome | None:
        """Once a run: the account's test mode is what the config says, and the countries
        list is at hand. None when ready, else the outcome for the delivery (nothing sent)."""
        if not self._mode_checked:
            refused = await self._check_mode(client)
            if refused is not None:
                return refused
            self._mode_checked = True
        if self._countries is None:
            cached = _COUNTRIES.get(self.options.base_url)
            if cached is not None and time.monotonic() - cached[0] < COUNTRIES_TTL:
                self._countries = cached[1]
            else:
                loaded = await self._load_countries(client)
                if not isinstance(loaded, dict):
                    return loaded
                _COUNTRIES[self.options.base_url] = (time.monotonic(), loaded)
                self._countries = loaded
        return None

    async def _get(self, path: str, client: httpx.AsyncClient) -> dict[str, Any] | Outcome:
        """A GET of the API: its JSON answer, or the outcome for the delivery (Paused for
        the account, Retry when no answer came: a GET places no order)."""
        request = client.build_request("GET", self._url(path), headers=self._headers())
        answer = await self.exchange(request, client)
        if isinstance(answer, (Retry, Unknown)):
            return Retry(f"Handwrytten {path}: {answer.reason}")
        body = response_json(answer)
        problem = _error(answer, body)
        if problem is None:
            return body
        paused = _account_failure(answer, body, problem)
        if paused is not None:
            return paused
        transient = answer.status_code in RETRYABLE_STATUS or answer.status_code >= 500
        reason = f"Handwrytten {path}: HTTP {answer.status_code}: {problem}"
        if transient:
            return retry_with(reason, answer.headers.get("Retry-After"))
        return Paused(f"{reason}; check the provider's base_url and api_key")

    async def _check_mode(self, client: httpx.AsyncClient) -> Outcome | None:
        got = await self._get("checkauth/auth", client)
        if not isinstance(got, dict):
            return got
        mode = got.get("test_mode")
        wanted = self.options.test_mode
        where = f"providers.{self.name}.test_mode"
        if mode is None:
            if wanted:
                return Paused(
                    "Handwrytten did not say whether the account is in test mode, so no "
                    f"test card is sent ({where} = true)"
                )
            return None
        in_test = str(mode) not in ("0", "False", "false", "")
        if wanted and not in_test:
            return Paused(
                f"the Handwrytten account is live but {where} = true: switch the account to "
                "test mode in Handwrytten (regard never switches it), or set test_mode = false "
                "to send real cards"
            )
        if not wanted and in_test:
            return Paused(
                "the Handwrytten account is in test mode: its cards are accepted but never "
                "written or mailed; switch it back to live in Handwrytten, or set "
                f"{where} = true to send test cards"
            )
        return None

    async def _load_countries(
        self, client: httpx.AsyncClient
    ) -> dict[str, dict[str, Any]] | Outcome:
        got = await self._get("countries/list", client)
        if not isinstance(got, dict):
            return got
        entries = got.get("countries")
        if not isinstance(entries, list) or not entries:
            return Retry("Handwrytten countries/list: no countries in the answer")
        return countries_by_code(entries)

    def build_request(self, record: DeliveryRecord, client: httpx.AsyncClient) -> httpx.Request:
        card = record.get("card") or {}
        to = record.get("to")
        if not isinstance(to, dict):
            raise Undeliverable(f"a card needs a postal address, not {to!r}")
        sender = card.get("sender") or self.config.sender.return_address()
        countries = self._countries or {}
        order: dict[str, Any] = {
            "card_id": self._card_id(card.get("design")),
            "font_label": self._font(card.get("font")),
            "message": record.get("text") or "",
            "date_send": datetime.now(self.config.tz).date().isoformat(),
            "client_metadata": str(record["delivery_id"]),
            **address_fields("sender", sender, countries),
            **address_fields("recipient", to, countries),
        }
        return client.build_request(
            "POST", self._url("orders/singleStepOrder"), json=order, headers=self._headers()
        )

    def read_response(self, response: httpx.Response) -> Outcome:
        answer = response_json(response)
        problem = _error(response, answer)
        if problem is None:
            found = order_id(answer)
            if found is not None:
                return Sent(found)
            return Unconfirmed(
                f"HTTP {response.status_code} from Handwrytten without an order id "
                f"({response_excerpt(response, 200)}): look for client_metadata "
                "<delivery id> in the Handwrytten dashboard, then `regard deliveries confirm` "
                "or `retry`"
            )
        paused = _account_failure(response, answer, problem)
        if paused is not None:
            return paused
        reason = f"HTTP {response.status_code}: Handwrytten: {problem}"
        code = _code(response, answer)
        if code in RETRYABLE_STATUS:
            return retry_with(reason, response.headers.get("Retry-After"))
        if code >= 500 or response.status_code >= 500:
            # the order may have been placed before the error: never placed twice
            return Unknown(reason)
        return classify_failure(response, reason)

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


def countries_by_code(entries: list[Any]) -> dict[str, dict[str, Any]]:
    """Handwrytten's countries list keyed by ISO 3166-1 alpha-2 code: each entry's
    ``aliases`` (``"US"``, or several separated by commas or spaces) and, for entries whose
    aliases name no two-letter code, the English name babel gives that code."""
    from babel import Locale  # only where a countries list is read

    names = {name.casefold(): code for code, name in Locale("en").territories.items()}
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("id") is None:
            continue
        aliases = str(entry.get("aliases") or "").replace(",", " ").split()
        codes = [a.upper() for a in aliases if len(a) == 2 and a.isalpha()]
        by_name = names.get(str(entry.get("name") or "").casefold())
        for code in codes or ([by_name] if by_name else []):
            found.setdefault(code, entry)
    return found


def address_fields(
    role: str, address: dict[str, Any], countries: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """``<role>_first_name``, ``<role>_address1``… of a regard postal address (name,
    company, street, address2, postal_code, city, country as ISO 3166-1 alpha-2, state).
    Raises Undeliverable for a country Handwrytten does not list, or a US/CA address
    without a state it knows."""
    code = str(address.get("country") or "").strip().upper()
    entry = countries.get(code)
    if entry is None:
        raise Undeliverable(
            f"{role} country {code or '(none)'!r} is not on Handwrytten's countries list"
        )
    name = str(address.get("name") or "").strip()
    company = str(address.get("company") or "").strip()
    first, _, last = name.rpartition(" ")
    if not name:
        first, last = "", company
    lines = [str(address.get("street") or "").strip(), str(address.get("address2") or "").strip()]
    if name and company:
        lines = [company, ", ".join(line for line in lines if line)]
    fields: dict[str, Any] = {
        f"{role}_first_name": first,
        f"{role}_last_name": last,
        f"{role}_address1": lines[0],
        f"{role}_address2": lines[1],
        f"{role}_city": str(address.get("city") or "").strip(),
        f"{role}_zip": str(address.get("postal_code") or "").strip(),
        f"{role}_country_id": entry["id"],
    }
    state = str(address.get("state") or "").strip()
    if code in STATE_COUNTRIES:
        known = {
            str(s.get("short_name") or "").upper()
            for s in entry.get("states") or []
            if isinstance(s, dict)
        }
        if not state or (known and state.upper() not in known):
            raise Undeliverable(
                f"{role} address in {code} needs a state Handwrytten knows "
                f"(two letters, e.g. {'NY' if code == 'US' else 'ON'}), not {state or 'none'!r}"
            )
        fields[f"{role}_state"] = state.upper()
    elif state:
        fields[f"{role}_state"] = state
    return {k: v for k, v in fields.items() if v != ""}


def order_id(answer: dict[str, Any]) -> str | None:
    """The order id of a successful answer (``order_id``, or ``id`` of the order object)."""
    nested = answer.get("response")
    for value in (
        answer.get("order_id"),
        nested.get("id") if isinstance(nested, dict) else None,
    ):
        if value not in (None, "", 0, "0"):
            return str(value)
    return None


def _code(response: httpx.Response, answer: dict[str, Any]) -> int:
    """The answer's own ``httpCode`` (Handwrytten sends errors with HTTP 200), else the
    HTTP status."""
    code = answer.get("httpCode", answer.get("code"))
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return response.status_code


def _error(response: httpx.Response, answer: dict[str, Any]) -> str | None:
    """What went wrong, or None when the answer is a success: the HTTP status, the body's
    ``httpCode``, ``status: "error"``, ``success: false`` or an ``error`` each say so."""
    status = response.status_code
    code = _code(response, answer)
    message = answer.get("error") or answer.get("message") or answer.get("errors")
    failed = (
        not 200 <= status < 300
        or not 200 <= code < 300
        or str(answer.get("status", "")).lower() == "error"
        or answer.get("success") is False
        or bool(answer.get("error"))
    )
    if not failed:
        return None
    text = str(message) if message else response_excerpt(response)
    if code != status:
        text = f"httpCode {code}: {text}"
    return text


def _account_failure(
    response: httpx.Response, answer: dict[str, Any], problem: str
) -> Paused | None:
    """Paused when the answer is about the account (its key, its payment), not the card."""
    lowered = problem.lower()
    code = _code(response, answer)
    if (
        code in (401, 403)
        or response.status_code in (401, 403)
        or any(e in lowered for e in AUTH_ERRORS)
    ):
        return Paused(
            f"Handwrytten refused the API key (HTTP {response.status_code}: {problem}); "
            "check api_key (Handwrytten: Profile → API key)"
        )
    if any(e in lowered for e in PAYMENT_ERRORS):
        return Paused(
            f"Handwrytten cannot charge the account ({problem}); add credit or a credit "
            "card to the Handwrytten account"
        )
    return None
