"""The Twilio adapter: the Messages API format (form-encoded, Basic auth) against a real
server, and Twilio's error codes (21610: the recipient replied STOP → dead + unsubscribe)."""

from __future__ import annotations

import base64

import pytest

from httpsink import Answer
from regard.errors import ConfigError
from regard.providers import Dead, Paused, Retry, Sent, Unknown

SID = "AC3f9b2c1d4e5f60718293a4b5c6d7e8f9"
TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
MESSAGE_SID = "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0"

# answers as Twilio documents them (messaging/api/message-resource, api/errors)
CREATED = {
    "account_sid": SID,
    "api_version": "2010-04-01",
    "body": "Hallo Erika, danke für Ihre erste Bestellung!",
    "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
    "date_sent": None,
    "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
    "direction": "outbound-api",
    "error_code": None,
    "error_message": None,
    "from": "+15005550006",
    "messaging_service_sid": None,
    "num_media": "0",
    "num_segments": "1",
    "price": None,
    "price_unit": "USD",
    "sid": MESSAGE_SID,
    "status": "queued",
    "subresource_uris": {"media": f"/2010-04-01/Accounts/{SID}/Messages/{MESSAGE_SID}/Media.json"},
    "to": "+4915112345678",
    "uri": f"/2010-04-01/Accounts/{SID}/Messages/{MESSAGE_SID}.json",
}


def error(code: int, message: str, status: int = 400) -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def table(base_url: str, sender: str = 'from = "+15005550006"') -> str:
    return f"""\
        type = "twilio"
        account_sid = "{SID}"
        auth_token = "${{TWILIO_AUTH_TOKEN}}"
        base_url = "{base_url}"
        {sender}
        """


def test_sends_the_documented_messages_format(sink, make_provider, deliver, record):
    provider = make_provider(table(sink.url), env={"TWILIO_AUTH_TOKEN": TOKEN})
    sink.script(Answer(201, CREATED))
    sent = record("sms")

    assert deliver(provider, sent) == Sent(MESSAGE_SID)

    got = sink.last
    assert (got.method, got.path) == ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json")
    assert got.headers["content-type"] == "application/x-www-form-urlencoded"
    assert (
        got.headers["authorization"]
        == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    )
    assert got.headers["idempotency-key"] == sent["delivery_id"]
    assert got.form() == {
        "To": "+4915112345678",
        "From": "+15005550006",
        "Body": "Hallo Erika, danke für Ihre erste Bestellung!",
    }


def test_a_messaging_service_instead_of_a_number(sink, make_provider, deliver, record):
    service = 'messaging_service_sid = "MG9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"'
    provider = make_provider(table(sink.url, service), env={"TWILIO_AUTH_TOKEN": TOKEN})
    sink.script(Answer(201, CREATED))
    assert isinstance(deliver(provider, record("sms")), Sent)
    form = sink.last.form()
    assert form["MessagingServiceSid"] == "MG9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
    assert "From" not in form


def test_replied_stop_is_dead_and_unsubscribes(sink, make_provider, deliver, record):
    provider = make_provider(table(sink.url), env={"TWILIO_AUTH_TOKEN": TOKEN})
    sink.script(Answer(400, error(21610, "Attempt to send to unsubscribed recipient")))
    outcome = deliver(provider, record("sms"))
    assert isinstance(outcome, Dead)
    assert outcome.unsubscribe == "+4915112345678"
    assert "Twilio 21610" in outcome.reason


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (201, CREATED, Sent),
        (400, error(21211, "The 'To' number +15005550001 is not a valid phone number."), Dead),
        (400, error(21614, "'To' number is not a valid mobile number"), Dead),
        (400, error(21408, "Permission to send an SMS has not been enabled for the region"), Dead),
        (
            400,
            error(
                21606,
                "The 'From' phone number provided is not a valid message-capable Twilio phone number for this request.",
            ),
            Paused,
        ),
        (401, error(20003, "Authentication Error - invalid username", 401), Paused),
        (
            400,
            error(21611, "This 'From' number has exceeded the maximum number of queued messages"),
            Retry,
        ),
        (401, None, Paused),
        (429, error(20429, "Too Many Requests", 429), Retry),
        (400, error(20429, "Too Many Requests"), Retry),
        (500, error(20500, "Internal Server Error", 500), Retry),
        (503, None, Retry),
        (404, error(20404, "The requested resource was not found", 404), Dead),
    ],
)
def test_error_codes(make_provider, answer_with, record, status, body, expected):
    provider = make_provider(table("https://api.twilio.com"), env={"TWILIO_AUTH_TOKEN": TOKEN})
    outcome = answer_with(provider, record("sms"), status, body)
    assert type(outcome) is expected
    if isinstance(outcome, Paused):
        assert "check" in outcome.reason or "must" in outcome.reason  # says what to fix
    if isinstance(outcome, Dead):
        assert outcome.unsubscribe is None
        assert f"Twilio {body['code']}" in outcome.reason


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('base_url = "http://api.twilio.com"\nfrom = "+15005550006"', "plain http://"),
        ("", "set `from` (a Twilio number) or `messaging_service_sid`"),
        ('from = "+15005550006"\naccount_sid = "XX123"', "account_sid"),
    ],
)
def test_config_errors(make_provider, extra, problem):
    with pytest.raises(ConfigError) as caught:
        make_provider(
            f'type = "twilio"\nauth_token = "{TOKEN}"\n{extra}\n'
            + ("" if "account_sid" in extra else f'account_sid = "{SID}"\n')
        )
    assert problem in str(caught.value)
    assert TOKEN not in str(caught.value)


# -- an unknown outcome: Twilio can be asked (the messages to that number since then) -----


@pytest.fixture
def service():
    from services import FakeTwilio

    with FakeTwilio(SID, TOKEN) as fake:
        yield fake


@pytest.fixture
def on_fake(service, make_provider):
    return make_provider(table(service.url), env={"TWILIO_AUTH_TOKEN": TOKEN})


def test_after_an_unknown_outcome_a_message_twilio_has_is_sent_without_a_new_request(
    service, on_fake, deliver, record
):
    service.stall, service.hold = 1.0, 0.6
    sent = record("sms")
    first = deliver(on_fake, sent, timeout=0.2)
    assert isinstance(first, Unknown)
    [accepted] = service.accepted

    again = deliver(on_fake, sent, uncertain=True, since=int(accepted.created))

    assert again == Sent(accepted.id)
    assert len(service.accepted) == 1
    ask = service.server.last
    assert (ask.method, ask.path) == ("GET", f"/2010-04-01/Accounts/{SID}/Messages.json")
    assert ask.query["To"] == ["+4915112345678"] and ask.query["From"] == ["+15005550006"]
    assert ask.headers["authorization"] == basic_auth()


def test_an_older_message_with_the_same_text_does_not_count(service, on_fake, deliver, record):
    sent = record("sms")
    assert isinstance(deliver(on_fake, sent), Sent)  # last year's, same words
    service.accepted[0].body["date_created"] = "Mon, 01 Jun 2025 09:00:00 +0000"

    outcome = deliver(on_fake, sent, uncertain=True, since=1_780_300_000)

    assert isinstance(outcome, Sent)
    assert len(service.accepted) == 2  # not found among the recent ones: sent again


def test_another_text_to_the_same_number_does_not_count(service, on_fake, deliver, record):
    deliver(on_fake, record("sms", text="Ihr Gutschein: 10 %"))
    outcome = deliver(on_fake, record("sms"), uncertain=True, since=0)
    assert isinstance(outcome, Sent) and len(service.accepted) == 2


def test_the_lookup_follows_the_pages_back_to_the_first_attempt(service, on_fake, deliver, record):
    sent = record("sms")
    assert isinstance(deliver(on_fake, sent), Sent)
    for i in range(60):  # newer messages to the same number push it to the second page
        deliver(on_fake, record("sms", text=f"Nachricht {i}"))
    before = len(service.accepted)
    outcome = deliver(on_fake, sent, uncertain=True, since=0)
    assert outcome == Sent(service.accepted[0].id)
    assert len(service.accepted) == before
    assert service.server.last.query.get("Page") == ["1"]


def test_refused_credentials_pause_the_provider(service, make_provider, deliver, record):
    provider = make_provider(table(service.url), env={"TWILIO_AUTH_TOKEN": "0" * 32})
    outcome = deliver(provider, record("sms"))
    assert isinstance(outcome, Paused) and "20003" in outcome.reason


def test_twilio_declares_that_it_can_be_asked():
    from regard.providers import adapter_class

    assert adapter_class("twilio").on_unknown == "lookup"


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
