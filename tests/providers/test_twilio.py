"""The Twilio adapter: the Messages API format (form-encoded, Basic auth) against a real
server, and Twilio's error codes (21610: the recipient replied STOP → dead + unsubscribe)."""

from __future__ import annotations

import base64

import pytest

from httpsink import Answer
from regard.errors import ConfigError
from regard.providers import Dead, Retry, Sent

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
            Dead,
        ),
        (401, error(20003, "Authentication Error - invalid username", 401), Dead),
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


def test_the_basic_credential_regard_builds_is_scrubbed(sink, make_provider, deliver, record):
    """Twilio's Basic credential is base64 of SID and token, made by regard itself: an
    answer echoing the Authorization header does not leak it."""
    provider = make_provider(
        f"""
        type = "twilio"
        account_sid = "AC3f9b2c1d4e5f60718293a4b5c6d7e8f9"
        auth_token = "${{TWILIO_AUTH_TOKEN}}"
        from = "+15005550006"
        base_url = "{sink.url}"
        """,
        env={"TWILIO_AUTH_TOKEN": "f00dfeedf00dfeedf00dfeedf00dfeed"},
    )
    sink.script(Answer(400, "echo"))
    deliver(provider, record("sms"))
    credential = sink.last.headers["authorization"].removeprefix("Basic ")
    sink.script(Answer(400, {"code": 21211, "message": f"bad header Basic {credential}"}))
    outcome = deliver(provider, record("sms"))
    assert isinstance(outcome, Dead)
    assert credential not in outcome.reason, outcome.reason
