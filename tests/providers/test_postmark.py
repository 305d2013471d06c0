"""The Postmark adapter: the documented POST /email format against a real server, and
Postmark's error codes mapped to sent / retry / dead (406 unsubscribes the address)."""

from __future__ import annotations

import re

import pytest

from httpsink import Answer
from regard.errors import ConfigError
from regard.providers import Dead, Paused, Retry, Sent, Unknown
from regard.providers.postmark import mailbox

TOKEN = "5a1d9c0e-3b7f-4e2a-9c8d-1f0e2d3c4b5a"

# answers as Postmark documents them (developer/api/email-api, developer/api/overview)
OK = {
    "To": "erika.mustermann@example.de",
    "SubmittedAt": "2014-02-17T07:25:01.4178645-05:00",
    "MessageID": "0a129aee-e1cd-480d-b08d-4f48548ff48d",
    "ErrorCode": 0,
    "Message": "OK",
}
INACTIVE = {
    "ErrorCode": 406,
    "Message": "You tried to send to recipient(s) that have been marked as inactive. Found "
    "inactive addresses: erika.mustermann@example.de. Inactive recipients are ones that have "
    "generated a hard bounce, a spam complaint, or a manual suppression.",
}


def table(base_url: str, extra: str = "") -> str:
    return f"""\
        type = "postmark"
        server_token = "${{POSTMARK_SERVER_TOKEN}}"
        base_url = "{base_url}"
        {extra}
        """


@pytest.fixture
def postmark(sink, make_provider):
    return make_provider(table(sink.url), env={"POSTMARK_SERVER_TOKEN": TOKEN})


def test_sends_the_documented_email_format(sink, postmark, deliver, record):
    sink.script(Answer(200, OK))
    sent = record("email")

    assert deliver(postmark, sent) == Sent("0a129aee-e1cd-480d-b08d-4f48548ff48d")

    got = sink.last
    assert (got.method, got.path) == ("POST", "/email")
    assert got.headers["accept"] == "application/json"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-postmark-server-token"] == TOKEN
    assert got.headers["idempotency-key"] == sent["delivery_id"]
    assert got.json() == {
        "From": "Blumen Rosa GmbH <hallo@blumen-rosa.de>",
        "To": "erika.mustermann@example.de",
        "Subject": "Danke für Ihre Bestellung",
        "TextBody": "Hallo Erika, danke für Ihre erste Bestellung!",
        "HtmlBody": "<p>Hallo Erika, danke für Ihre erste Bestellung!</p>",
        "MessageStream": "outbound",
        "Tag": "thank-you",
        "Metadata": {
            "delivery_id": sent["delivery_id"],
            "campaign": "thank-you",
            "contact_id": "c-1001",
        },
    }


def test_options_and_test_mode_token(sink, make_provider, deliver, record):
    provider = make_provider(
        table(
            sink.url + "/",
            'from = "Rosa vom Blumenladen <rosa@blumen-rosa.de>"\nmessage_stream = "retention"',
        ),
        env={"POSTMARK_SERVER_TOKEN": "POSTMARK_API_TEST"},
    )
    sink.script(Answer(200, OK))
    assert isinstance(deliver(provider, record("email", html=None)), Sent)
    got = sink.last
    assert got.path == "/email"
    assert got.headers["x-postmark-server-token"] == "POSTMARK_API_TEST"
    body = got.json()
    assert body["From"] == "Rosa vom Blumenladen <rosa@blumen-rosa.de>"
    assert body["MessageStream"] == "retention"
    assert "HtmlBody" not in body


def test_inactive_recipient_is_dead_and_unsubscribes(sink, postmark, deliver, record):
    sink.script(Answer(422, INACTIVE))
    outcome = deliver(postmark, record("email"))
    assert isinstance(outcome, Dead)
    assert outcome.unsubscribe == "erika.mustermann@example.de"
    assert outcome.reason.startswith("HTTP 422: Postmark 406 (inactive recipient): You tried")


@pytest.mark.parametrize(
    ("status", "body", "expected", "in_reason"),
    [
        (200, OK, Sent, None),
        (401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."}, Paused, "10 (bad"),
        (422, {"ErrorCode": 300, "Message": "Invalid 'To' address: 'erika@'."}, Dead, "300"),
        (422, {"ErrorCode": 400, "Message": "Sender signature not found"}, Paused, "confirm a"),
        (422, {"ErrorCode": 401, "Message": "Sender signature not confirmed"}, Paused, "confirm"),
        (422, {"ErrorCode": 405, "Message": "Not allowed to send"}, Paused, "no credits"),
        (422, {"ErrorCode": 412, "Message": "Account is pending"}, Paused, "pending approval"),
        (422, {"ErrorCode": 413, "Message": "Account may not send"}, Paused, "413"),
        (422, {"ErrorCode": 402, "Message": "Invalid JSON"}, Dead, "402"),
        (403, None, Paused, "check server_token"),
        (422, {"ErrorCode": 100, "Message": "Maintenance"}, Retry, "maintenance"),
        (429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, Retry, "429"),
        (500, {"ErrorCode": 0, "Message": "Internal Server Error"}, Retry, "HTTP 500"),
        (503, None, Retry, "HTTP 503"),
        (404, None, Dead, "HTTP 404"),
    ],
)
def test_error_codes(make_provider, answer_with, record, status, body, expected, in_reason):
    provider = make_provider(
        table("https://api.postmarkapp.com"), env={"POSTMARK_SERVER_TOKEN": TOKEN}
    )
    outcome = answer_with(provider, record("email"), status, body)
    assert type(outcome) is expected
    if in_reason:
        assert in_reason in outcome.reason
    if isinstance(outcome, Dead):
        assert outcome.unsubscribe is None


def test_an_echoed_token_is_scrubbed(make_provider, answer_with, record):
    provider = make_provider(
        table("https://api.postmarkapp.com"), env={"POSTMARK_SERVER_TOKEN": TOKEN}
    )
    body = {"ErrorCode": 10, "Message": f"The Server Token '{TOKEN}' you provided was invalid."}
    outcome = answer_with(provider, record("email"), 401, body)
    assert isinstance(outcome, Paused)
    assert TOKEN not in outcome.reason and "'***'" in outcome.reason


def test_without_any_sender_address_it_refuses_to_start(workspace, make_provider):
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(text.replace('email = "hallo@blumen-rosa.de"', ""))
    with pytest.raises(ConfigError) as caught:
        make_provider(f'type = "postmark"\nserver_token = "{TOKEN}"\n')
    assert re.search(
        r"regard\.toml:\d+: providers\.svc: no sender address: set `from` here or `email`",
        str(caught.value),
    )


@pytest.mark.parametrize(
    "extra",
    ['base_url = "http://api.postmarkapp.com"', "server_tokn = 'x'"],
)
def test_config_errors(make_provider, extra):
    with pytest.raises(ConfigError) as caught:
        make_provider(f'type = "postmark"\nserver_token = "{TOKEN}"\n{extra}\n')
    assert "providers.svc." in str(caught.value)


@pytest.mark.parametrize(
    ("name", "address", "expected"),
    [
        ("Blumen Rosa GmbH", "a@b.de", "Blumen Rosa GmbH <a@b.de>"),
        ("Müller & Söhne", "a@b.de", "Müller & Söhne <a@b.de>"),
        ("Rosa, Blumen", "a@b.de", '"Rosa, Blumen" <a@b.de>'),
        ('Rosa "Die Blume"', "a@b.de", '"Rosa \\"Die Blume\\"" <a@b.de>'),
        ("", "a@b.de", "a@b.de"),
    ],
)
def test_mailbox(name, address, expected):
    assert mailbox(name, address) == expected


# -- an unknown outcome: Postmark can be asked (its outbound message search by metadata) ---


@pytest.fixture
def service():
    from services import FakePostmark

    with FakePostmark(TOKEN) as fake:
        yield fake


@pytest.fixture
def on_fake(service, make_provider):
    return make_provider(table(service.url), env={"POSTMARK_SERVER_TOKEN": TOKEN})


def test_after_an_unknown_outcome_a_message_postmark_has_is_sent_without_a_new_request(
    service, on_fake, deliver, record
):
    service.stall, service.hold = 1.0, 0.6
    sent = record("email")
    first = deliver(on_fake, sent, timeout=0.2)
    assert isinstance(first, Unknown)
    [accepted] = service.accepted  # Postmark has it, regard did not hear

    again = deliver(on_fake, sent, uncertain=True, since=int(accepted.created))

    assert again == Sent(accepted.id)
    assert service.counts() == {sent["delivery_id"]: 1}
    ask = service.server.last
    assert (ask.method, ask.path) == ("GET", "/messages/outbound")
    assert ask.query == {
        "count": ["1"],
        "offset": ["0"],
        "metadata_delivery_id": [sent["delivery_id"]],
    }
    assert ask.headers["x-postmark-server-token"] == TOKEN
    assert ask.headers["accept"] == "application/json"


def test_after_an_unknown_outcome_a_message_postmark_lacks_is_sent_again(
    service, on_fake, deliver, record
):
    sent = record("email")
    outcome = deliver(on_fake, sent, uncertain=True, since=0)
    assert isinstance(outcome, Sent)
    assert [(r.method, r.path) for r in service.server.requests] == [
        ("GET", "/messages/outbound"),
        ("POST", "/email"),
    ]
    assert service.counts() == {sent["delivery_id"]: 1}


def test_a_search_without_an_answer_sends_nothing(service, on_fake, deliver, record):
    service.server.script(Answer(200, {}, delay=0.6))
    outcome = deliver(on_fake, record("email"), timeout=0.2, uncertain=True, since=0)
    assert isinstance(outcome, Unknown) and "could not ask Postmark" in outcome.reason
    assert service.accepted == []


def test_a_refused_token_pauses_the_provider(service, make_provider, deliver, record):
    provider = make_provider(table(service.url), env={"POSTMARK_SERVER_TOKEN": "wrong"})
    outcome = deliver(provider, record("email"))
    assert isinstance(outcome, Paused) and "check server_token" in outcome.reason
    assert "wrong" not in outcome.reason


def test_postmark_declares_that_it_can_be_asked():
    from regard.providers import adapter_class

    assert adapter_class("postmark").on_unknown == "lookup"
