"""The Handwrytten adapter against a fake of Handwrytten's v2 API (tests/services.py): the
single-step order's documented fields, countries from the countries list, states for US and
Canada, the account's test mode read and never switched, errors in a 200's body, account
failures that pause the provider, and unknown outcomes that leave a card unconfirmed."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from httpsink import Answer
from regard.errors import ConfigError
from regard.providers import Dead, Paused, Retry, Sent, Unconfirmed, adapter_class
from regard.providers.handwrytten import _COUNTRIES, COUNTRIES_TTL
from services import FakeHandwrytten

KEY = "hw_live_7c1e9a2b4d6f8a0c2e4b6d8f"


def table(base_url: str, extra: str = "") -> str:
    return f"""\
        type = "handwrytten"
        api_key = "${{HANDWRYTTEN_API_KEY}}"
        base_url = "{base_url}"
        font = "Casual David"
        card_id = 3404
        designs = {{ "thank-you-floral" = 25019 }}
        {extra}
        """


@pytest.fixture
def service():
    with FakeHandwrytten(KEY) as fake:
        yield fake


@pytest.fixture
def handwrytten(service, make_provider):
    return make_provider(table(service.url), env={"HANDWRYTTEN_API_KEY": KEY})


def card_record(record, **card):
    return record("card", card={"design": None, "font": None, "sender": None, **card})


def orders(service):
    return [r for r in service.server.requests if r.path == "/orders/singleStepOrder"]


def test_places_the_documented_single_step_order(service, handwrytten, deliver, record):
    sent = card_record(record, design="thank-you-floral", font="Fancy Jenna")

    outcome = deliver(handwrytten, sent)

    assert outcome == Sent("196936")
    paths = [(r.method, r.path) for r in service.server.requests]
    assert paths == [
        ("GET", "/checkauth/auth"),
        ("GET", "/countries/list"),
        ("POST", "/orders/singleStepOrder"),
    ]
    got = service.server.last
    assert got.headers["authorization"] == KEY  # the key alone, no "Bearer"
    assert got.headers["content-type"] == "application/json"
    assert got.json() == {
        "card_id": 25019,
        "font_label": "Fancy Jenna",
        "message": "Hallo Erika, danke für Ihre erste Bestellung!",
        "date_send": datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat(),
        "client_metadata": sent["delivery_id"],
        "sender_first_name": "Blumen Rosa",
        "sender_last_name": "GmbH",
        "sender_address1": "Lindenstraße 5",
        "sender_city": "Berlin",
        "sender_zip": "10969",
        "sender_country_id": 81,
        "recipient_first_name": "Erika",
        "recipient_last_name": "Mustermann",
        "recipient_address1": "Hauptstraße 1",
        "recipient_city": "München",
        "recipient_zip": "80331",
        "recipient_country_id": 81,
    }
    assert service.mode_switches == 0  # the account's setting is never touched


def test_the_countries_list_is_fetched_once_and_kept(service, make_provider, deliver, record):
    for _ in range(3):
        provider = make_provider(table(service.url), env={"HANDWRYTTEN_API_KEY": KEY})
        assert isinstance(deliver(provider, card_record(record)), Sent)
    assert service.countries_asked == 1
    fetched, _ = _COUNTRIES[service.url]
    _COUNTRIES[service.url] = (fetched - COUNTRIES_TTL - 1, _COUNTRIES[service.url][1])
    provider = make_provider(table(service.url), env={"HANDWRYTTEN_API_KEY": KEY})
    deliver(provider, card_record(record))
    assert service.countries_asked == 2  # a day later it is fetched again


@pytest.mark.parametrize(
    ("country", "state", "country_id", "sent_state"),
    [
        ("DE", None, 81, None),
        ("AT", None, 14, None),
        ("CH", None, 204, None),
        ("GB", None, 225, None),
        ("US", "az", 1, "AZ"),
        ("CA", "ON", 2, "ON"),
    ],
)
def test_countries_and_states(
    service, handwrytten, deliver, record, country, state, country_id, sent_state
):
    to = {
        "name": "Erika Mustermann",
        "company": "Muster AG",
        "street": "Main St 1",
        "address2": "Suite 4",
        "postal_code": "12345",
        "city": "Town",
        "country": country,
    }
    if state:
        to["state"] = state
    assert isinstance(deliver(handwrytten, record("card", to=to)), Sent)
    body = service.server.last.json()
    assert body["recipient_country_id"] == country_id
    assert body.get("recipient_state") == sent_state
    # the company on the first line, the street and the second line after it
    assert (body["recipient_address1"], body["recipient_address2"]) == (
        "Muster AG",
        "Main St 1, Suite 4",
    )
    assert "recipient_business_name" not in body and "recipient_name" not in body


def test_a_second_address_line_without_a_company(service, handwrytten, deliver, record):
    to = dict(record("card")["to"], address2="c/o Blumen Rosa")
    deliver(handwrytten, record("card", to=to))
    body = service.server.last.json()
    assert (body["recipient_address1"], body["recipient_address2"]) == (
        "Hauptstraße 1",
        "c/o Blumen Rosa",
    )


@pytest.mark.parametrize(
    ("country", "state", "problem"),
    [
        ("US", None, "needs a state"),
        ("US", "XX", "needs a state"),
        ("CA", "", "needs a state"),
        ("JP", None, "'JP' is not on Handwrytten's countries list"),
    ],
)
def test_an_address_handwrytten_cannot_take_is_dead_without_an_order(
    service, handwrytten, deliver, record, country, state, problem
):
    to = dict(record("card")["to"], country=country, state=state)
    outcome = deliver(handwrytten, record("card", to=to))
    assert isinstance(outcome, Dead) and problem in outcome.reason
    assert orders(service) == []


def test_a_company_only_sender(service, handwrytten, deliver, record):
    sender = {
        "name": "",
        "company": "Blumen Rosa Filiale Wien",
        "street": "Ring 1",
        "postal_code": "1010",
        "city": "Wien",
        "country": "AT",
    }
    deliver(handwrytten, card_record(record, design="12345", sender=sender))
    body = service.server.last.json()
    assert body["card_id"] == 12345
    assert body["font_label"] == "Casual David"  # the provider's default
    assert body["sender_last_name"] == "Blumen Rosa Filiale Wien"
    assert "sender_first_name" not in body
    assert (body["sender_city"], body["sender_country_id"]) == ("Wien", 14)


def test_a_campaign_font_name_maps_to_a_font_label(service, make_provider, deliver, record):
    extra = 'fonts = { "hand-1" = "Casual David", "hand-2" = "Fancy Jenna" }'
    provider = make_provider(table(service.url, extra), env={"HANDWRYTTEN_API_KEY": KEY})
    for font, label in (("hand-2", "Fancy Jenna"), ("Tarzan Kyle", "Tarzan Kyle")):
        deliver(provider, card_record(record, design="thank-you-floral", font=font))
        assert service.server.last.json()["font_label"] == label


@pytest.mark.parametrize(
    ("extra", "card", "problem"),
    [
        ("", {"design": "autumn-leaves"}, "card design 'autumn-leaves' is not a Handwrytten card id"),
        ('card_id = 1\nfont = ""', {"design": None}, "no handwriting"),
    ],
)  # fmt: skip
def test_an_unusable_card_is_dead_without_an_order(
    service, make_provider, deliver, record, extra, card, problem
):
    base = (
        table(service.url)
        if not extra
        else f'type = "handwrytten"\napi_key = "{KEY}"\nbase_url = "{service.url}"\n{extra}\n'
    )
    provider = make_provider(base, env={"HANDWRYTTEN_API_KEY": KEY})
    outcome = deliver(provider, card_record(record, **card))
    assert isinstance(outcome, Dead) and problem in outcome.reason
    assert orders(service) == []


def test_a_card_without_postal_address_is_dead(service, handwrytten, deliver, record):
    outcome = deliver(handwrytten, record("card", to="erika@example.de"))
    assert isinstance(outcome, Dead) and "postal address" in outcome.reason
    assert orders(service) == []


@pytest.mark.parametrize(
    ("config_test_mode", "account_test_mode", "sends"),
    [(True, True, True), (False, False, True), (True, False, False), (False, True, False)],
)
def test_test_mode_is_read_never_switched(
    make_provider, deliver, record, config_test_mode, account_test_mode, sends
):
    with FakeHandwrytten(KEY, test_mode=account_test_mode) as service:
        extra = f"test_mode = {'true' if config_test_mode else 'false'}"
        provider = make_provider(table(service.url, extra), env={"HANDWRYTTEN_API_KEY": KEY})
        outcome = deliver(provider, card_record(record))
        assert service.mode_switches == 0
        if sends:
            assert isinstance(outcome, Sent) and len(orders(service)) == 1
        else:
            assert isinstance(outcome, Paused) and orders(service) == []
            assert "regard never switches it" in outcome.reason or "never written" in (
                outcome.reason
            )
        assert service.test_mode is account_test_mode


def test_the_mode_is_read_once_a_run(service, handwrytten, record):
    async def two_orders():
        async with httpx.AsyncClient() as client:
            return [await handwrytten.attempt(card_record(record), client) for _ in range(2)]

    assert asyncio.run(two_orders()) == [Sent("196936"), Sent("196937")]
    paths = [r.path for r in service.server.requests]
    assert paths.count("/checkauth/auth") == 1


@pytest.mark.parametrize(
    ("status", "body", "expected", "in_reason"),
    [
        (200, {"httpCode": 200, "status": "ok", "order_id": 4711}, Sent, None),
        (200, {"status": "ok", "response": {"id": 815}}, Sent, None),
        # errors in a 200's body: the documented {httpCode, error}, without status
        (200, {"httpCode": 400, "error": "Oops! Please check recipient address"}, Dead, "recipient"),
        (200, {"httpCode": 400, "status": "error", "message": "Card not found"}, Dead, "Card not"),
        (400, {"httpCode": 400, "error": "font label error"}, Dead, "font label"),
        # a success without an order id is not sent: the order may or may not exist
        (200, {"httpCode": 200, "status": "ok"}, Unconfirmed, "without an order id"),
        (200, {}, Unconfirmed, "without an order id"),
        # the account, not the card: pause
        (401, {"httpCode": 401, "error": "no uid"}, Paused, "api_key"),
        (200, {"httpCode": 400, "error": "no credit cards"}, Paused, "credit"),
        (200, {"httpCode": 400, "error": "error processing payment"}, Paused, "credit"),
        # passing
        (200, {"httpCode": 429, "status": "error", "message": "Too many requests"}, Retry, "429"),
        (429, None, Retry, "429"),
        # a 5xx may come after the order was placed: never placed twice
        (500, {"success": False, "code": 500, "message": "error placing order"}, Unconfirmed,
         "error placing order"),
        (200, {"httpCode": 500, "status": "error", "message": "Database Error"}, Unconfirmed,
         "Database"),
    ],
)  # fmt: skip
def test_answers(service, handwrytten, deliver, record, status, body, expected, in_reason):
    service.server.script(
        Answer(200, {"httpCode": 200, "status": "ok", "test_mode": 0}),
        Answer(200, {"httpCode": 200, "status": "OK", "countries": [{"id": 81, "aliases": "DE"}]}),
        Answer(status, body if body is not None else b""),
    )
    outcome = deliver(handwrytten, card_record(record))
    assert type(outcome) is expected
    if in_reason:
        assert in_reason in outcome.reason


def test_an_answer_that_never_comes_leaves_the_card_unconfirmed(service, handwrytten, record):
    service.stall, service.hold = 1.0, 1.0
    outcome = asyncio.run(_attempt(handwrytten, card_record(record), timeout=0.3))
    assert isinstance(outcome, Unconfirmed) and "timeout after sending" in outcome.reason
    assert service.counts()[record("card")["delivery_id"]] == 1  # the service has the order


def test_a_card_caught_mid_send_is_unconfirmed_without_a_request(service, handwrytten, record):
    outcome = asyncio.run(_attempt(handwrytten, card_record(record), uncertain=True))
    assert isinstance(outcome, Unconfirmed)
    assert "regard deliveries confirm" in outcome.reason
    assert service.server.requests == []


async def _attempt(provider, record, *, timeout=5.0, uncertain=False):
    async with httpx.AsyncClient(timeout=timeout) as client:
        return await provider.attempt(record, client, uncertain=uncertain)


def test_an_echoed_key_is_scrubbed(service, handwrytten, deliver, record):
    service.server.script(
        Answer(401, {"httpCode": 401, "status": "error", "message": f"Auth error for {KEY}"})
    )
    outcome = deliver(handwrytten, card_record(record))
    assert isinstance(outcome, Paused)
    assert KEY not in outcome.reason and "***" in outcome.reason


def test_card_length_limit_and_what_the_service_offers_are_declared():
    cls = adapter_class("handwrytten")
    assert cls.card_max_chars == 320
    assert cls.on_unknown == "neither"


def test_plain_http_is_refused(make_provider):
    with pytest.raises(
        ConfigError, match=r"providers\.svc\.base_url: .*plain http:// is only allowed"
    ):
        make_provider(table("http://api.handwrytten.com/v2"), env={"HANDWRYTTEN_API_KEY": KEY})
