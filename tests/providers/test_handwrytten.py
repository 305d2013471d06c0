"""The Handwrytten adapter: the single-step order format against a real server, the
country mapping, the account's test mode, and Handwrytten's error answers."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from httpsink import Answer
from regard.errors import ConfigError
from regard.providers import Dead, Retry, Sent, adapter_class

KEY = "hw_live_7c1e9a2b4d6f8a0c2e4b6d8f"
ORDER = {"status": "ok", "order_id": 4711}  # singleStepOrder's answer
NO_AUTH = {"httpCode": 401, "status": "error", "message": "no auth"}  # swagger example


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
def handwrytten(sink, make_provider):
    return make_provider(table(sink.url), env={"HANDWRYTTEN_API_KEY": KEY})


def card_record(record, **card):
    return record("card", card={"design": None, "font": None, "sender": None, **card})


def test_places_the_documented_single_step_order(sink, handwrytten, deliver, record):
    sink.script(Answer(200, ORDER))
    sent = card_record(record, design="thank-you-floral", font="Fancy Jenna")

    assert deliver(handwrytten, sent) == Sent("4711")

    got = sink.last
    assert (got.method, got.path) == ("POST", "/orders/singleStepOrder")
    assert got.headers["authorization"] == KEY  # the key alone, no "Bearer"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["idempotency-key"] == sent["delivery_id"]
    assert got.json() == {
        "card_id": 25019,
        "font_label": "Fancy Jenna",
        "message": "Hallo Erika, danke für Ihre erste Bestellung!",
        "date_send": datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat(),
        "client_metadata": sent["delivery_id"],
        "sender_name": "Blumen Rosa GmbH",
        "sender_address1": "Lindenstraße 5",
        "sender_city": "Berlin",
        "sender_zip": "10969",
        "sender_country": "Germany",
        "recipient_name": "Erika Mustermann",
        "recipient_address1": "Hauptstraße 1",
        "recipient_city": "München",
        "recipient_zip": "80331",
        "recipient_country": "Germany",
    }


def test_a_campaign_font_name_maps_to_a_font_label(sink, make_provider, deliver, record):
    extra = 'fonts = { "hand-1" = "Casual David", "hand-2" = "Fancy Jenna" }'
    provider = make_provider(table(sink.url, extra), env={"HANDWRYTTEN_API_KEY": KEY})
    for font, label in (("hand-2", "Fancy Jenna"), ("Tarzan Kyle", "Tarzan Kyle")):
        deliver(provider, card_record(record, design="thank-you-floral", font=font))
        assert sink.last.json()["font_label"] == label
    deliver(provider, card_record(record))
    assert sink.last.json()["font_label"] == "Casual David"  # the provider's font, as is


@pytest.mark.parametrize(
    ("country", "name", "country_id"),
    [
        ("DE", "Germany", None),
        ("AT", "Austria", None),
        ("CH", "Switzerland", None),
        ("US", "United States", 1),
        ("CA", "Canada", 2),
        ("GB", "United Kingdom", None),
    ],
)
def test_country_mapping(sink, handwrytten, deliver, record, country, name, country_id):
    to = {
        "name": "Erika Mustermann",
        "company": "Muster AG",
        "street": "Main St 1",
        "postal_code": "12345",
        "city": "Town",
        "country": country,
        "state": "AZ",
    }
    deliver(handwrytten, record("card", to=to))
    body = sink.last.json()
    assert body["recipient_country"] == name
    assert body.get("recipient_country_id") == country_id
    assert body["recipient_business_name"] == "Muster AG"
    assert body["recipient_state"] == "AZ"


def test_campaign_card_and_sender_override_the_defaults(sink, handwrytten, deliver, record):
    sender = {
        "name": "",
        "company": "Blumen Rosa Filiale Wien",
        "street": "Ring 1",
        "postal_code": "1010",
        "city": "Wien",
        "country": "AT",
    }
    deliver(handwrytten, card_record(record, design="12345", sender=sender))
    body = sink.last.json()
    assert body["card_id"] == 12345
    assert body["font_label"] == "Casual David"  # the provider's default
    assert body["sender_name"] == "Blumen Rosa Filiale Wien"
    assert "sender_business_name" not in body
    assert (body["sender_city"], body["sender_country"]) == ("Wien", "Austria")


def test_no_design_uses_the_default_card(sink, handwrytten, deliver, record):
    deliver(handwrytten, card_record(record))
    assert sink.last.json()["card_id"] == 3404


@pytest.mark.parametrize(
    ("extra", "card", "problem"),
    [
        (
            "",
            {"design": "autumn-leaves"},
            "card design 'autumn-leaves' is not a Handwrytten card id",
        ),
        ('card_id = 1\nfont = ""', {"design": None}, "no handwriting"),
    ],
)
def test_an_unusable_card_is_dead_without_a_request(
    sink, make_provider, deliver, record, extra, card, problem
):
    base = (
        table(sink.url)
        if not extra
        else f"""\
        type = "handwrytten"
        api_key = "{KEY}"
        base_url = "{sink.url}"
        {extra}
        """
    )
    provider = make_provider(base, env={"HANDWRYTTEN_API_KEY": KEY})
    outcome = deliver(provider, card_record(record, **card))
    assert isinstance(outcome, Dead)
    assert problem in outcome.reason
    assert sink.requests == []


def test_a_card_without_postal_address_is_dead(sink, handwrytten, deliver, record):
    outcome = deliver(handwrytten, record("card", to="erika@example.de"))
    assert isinstance(outcome, Dead) and "postal address" in outcome.reason
    assert sink.requests == []


def test_test_mode_switches_the_account_once_before_the_first_order(
    sink, make_provider, deliver, record
):
    provider = make_provider(table(sink.url, "test_mode = true"), env={"HANDWRYTTEN_API_KEY": KEY})
    sink.script(
        Answer(200, {"httpCode": 200, "status": "ok", "test_mode": 1}),
        Answer(200, ORDER),
        Answer(200, ORDER),
    )

    async def two_orders():
        async with httpx.AsyncClient() as client:
            first = await provider.send(card_record(record), client)
            second = await provider.send(card_record(record), client)
            return first, second

    assert asyncio.run(two_orders()) == (Sent("4711"), Sent("4711"))
    paths = [r.path for r in sink.requests]
    assert paths == ["/auth/setTestMode", "/orders/singleStepOrder", "/orders/singleStepOrder"]
    assert sink.requests[0].json() == {"test_mode": 1}
    assert sink.requests[0].headers["authorization"] == KEY


@pytest.mark.parametrize(
    ("answer", "expected"), [(Answer(401, NO_AUTH), Dead), (Answer(503), Retry)]
)
def test_no_order_unless_test_mode_is_on(sink, make_provider, deliver, record, answer, expected):
    provider = make_provider(table(sink.url, "test_mode = true"), env={"HANDWRYTTEN_API_KEY": KEY})
    sink.script(answer)
    outcome = deliver(provider, card_record(record))
    assert type(outcome) is expected
    assert "could not switch the account to test mode" in outcome.reason
    assert [r.path for r in sink.requests] == ["/auth/setTestMode"]


@pytest.mark.parametrize(
    ("status", "body", "expected", "message_id"),
    [
        (200, ORDER, Sent, "4711"),
        (200, {"status": "ok", "response": {"id": 815, "message": "Danke"}}, Sent, "815"),
        (
            200,
            {"httpCode": 400, "status": "error", "message": "Recipient address is invalid"},
            Dead,
            None,
        ),
        (400, {"httpCode": 400, "status": "error", "message": "card_id is required"}, Dead, None),
        (401, NO_AUTH, Dead, None),
        (200, {"httpCode": 500, "status": "error", "message": "Database Error"}, Retry, None),
        (500, {"httpCode": 500, "status": "error", "message": "no uid"}, Retry, None),
        (200, {"httpCode": 429, "status": "error", "message": "Too many requests"}, Retry, None),
        (429, None, Retry, None),
    ],
)
def test_answers(make_provider, answer_with, record, status, body, expected, message_id):
    provider = make_provider(
        table("https://api.handwrytten.com/v2"), env={"HANDWRYTTEN_API_KEY": KEY}
    )
    outcome = answer_with(provider, card_record(record), status, body)
    assert type(outcome) is expected
    if expected is Sent:
        assert outcome.message_id == message_id
    elif body:
        assert body["message"] in outcome.reason


def test_an_echoed_key_is_scrubbed(make_provider, answer_with, record):
    provider = make_provider(
        table("https://api.handwrytten.com/v2"), env={"HANDWRYTTEN_API_KEY": KEY}
    )
    body = {"httpCode": 401, "status": "error", "message": f"Auth error for uid {KEY}"}
    outcome = answer_with(provider, card_record(record), 401, body)
    assert KEY not in outcome.reason and "***" in outcome.reason


def test_card_length_limit_is_declared():
    assert adapter_class("handwrytten").card_max_chars == 320


def test_plain_http_is_refused(make_provider):
    with pytest.raises(
        ConfigError, match=r"providers\.svc\.base_url: .*plain http:// is only allowed"
    ):
        make_provider(table("http://api.handwrytten.com/v2"), env={"HANDWRYTTEN_API_KEY": KEY})
