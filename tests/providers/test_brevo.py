"""The Brevo adapter: the transactional e-mail API's wire format against a real loopback
server answering as Brevo documents (201 ``messageId``; ``{"code", "message"}`` errors),
its idempotency key and the look-up after the key's time to live, and `regard run`."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from httpsink import Answer, Received
from regard.errors import ConfigError
from regard.providers import Dead, Outcome, Paused, Provider, Retry, Sent, Unknown
from regard.providers.brevo import idempotency_key

KEY = "xkeysib-0123456789abcdef0123456789abcdef-AbCdEfGh"
DELIVERY_ID = "d_3f2a9c1e5b7d4f6a8c0e2b4d6f8a1c3e"
MESSAGE_ID = "<202605201200.12345678901@smtp-relay.mailin.fr>"


def table(url: str, extra: str = "") -> str:
    return f"""\
        type = "brevo"
        api_key = "${{BREVO_API_KEY}}"
        base_url = "{url}"
        {extra}
        """


def error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def test_the_request_is_brevos_send_transactional_email(sink, make_provider, deliver, record):
    sink.script(Answer(201, {"messageId": MESSAGE_ID}))
    provider = make_provider(table(sink.url), env={"BREVO_API_KEY": KEY})
    mail = record(
        "email",
        headers={
            "List-Unsubscribe": "<https://regard.blumen-rosa.de/u/tok123>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    assert deliver(provider, mail) == Sent(MESSAGE_ID)

    request = sink.last
    assert (request.method, request.path) == ("POST", "/v3/smtp/email")
    assert request.headers["api-key"] == KEY
    assert request.headers["accept"] == "application/json"
    body = request.json()
    assert body == {
        "sender": {"email": "hallo@blumen-rosa.de", "name": "Blumen Rosa GmbH"},
        "to": [{"email": "erika.mustermann@example.de"}],
        "subject": "Danke für Ihre Bestellung",
        "textContent": "Hallo Erika, danke für Ihre erste Bestellung!",
        "htmlContent": "<p>Hallo Erika, danke für Ihre erste Bestellung!</p>",
        "headers": {
            "List-Unsubscribe": "<https://regard.blumen-rosa.de/u/tok123>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "idempotencyKey": "3f2a9c1e-5b7d-4f6a-8c0e-2b4d6f8a1c3e",
        },
        "tags": ["thank-you", DELIVERY_ID],
    }
    uuid.UUID(body["headers"]["idempotencyKey"])  # Brevo wants a UUID


def test_the_idempotency_key_is_a_uuid_for_any_delivery_id():
    assert idempotency_key("d_2") == idempotency_key("d_2")
    assert idempotency_key("d_2") != idempotency_key("d_3")
    uuid.UUID(idempotency_key("weird id"))


def test_sandbox_drops(sink, make_provider, deliver, record):
    sink.script(Answer(201, {"messageId": MESSAGE_ID}))
    provider = make_provider(table(sink.url, "sandbox = true"), env={"BREVO_API_KEY": KEY})
    assert isinstance(deliver(provider, record("email", html=None)), Sent)
    body = sink.last.json()
    assert body["headers"]["X-Sib-Sandbox"] == "drop"
    assert "htmlContent" not in body


@pytest.mark.parametrize(
    ("answer", "kind", "says"),
    [
        (Answer(400, error("invalid_parameter", "email is not valid in to")), Dead, "Brevo invalid_parameter"),
        (Answer(400, error("missing_parameter", "subject is missing")), Dead, "missing_parameter"),
        (Answer(401, error("unauthorized", "Key not found")), Paused, "Brevo unauthorized"),
        (Answer(402, error("not_enough_credits", "Not enough credits")), Paused, "not_enough_credits"),
        (Answer(403, error("permission_denied", "Unable to send email. Your SMTP account is not yet activated.")), Paused, "permission_denied"),
        (Answer(400, error("account_under_validation", "Your account is under validation")), Paused, "account_under_validation"),
        (Answer(429, error("too_many_requests", "rate limited"), {"Retry-After": "9"}), Retry, "HTTP 429"),
        (Answer(500, "<html>Bad gateway</html>"), Retry, "HTTP 500"),
        (Answer(400, error("duplicate_request", "request already processed")), Sent, ""),
    ],
)  # fmt: skip
def test_brevos_errors(sink, make_provider, deliver, record, answer, kind, says):
    sink.script(answer)
    provider = make_provider(table(sink.url), env={"BREVO_API_KEY": KEY})
    outcome = deliver(provider, record("email"))
    assert isinstance(outcome, kind), outcome
    if says:
        assert says in outcome.reason  # type: ignore[union-attr]
        assert KEY not in outcome.reason  # type: ignore[union-attr]
    if isinstance(outcome, Retry) and answer.status == 429:
        assert outcome.retry_after == 9


def listed(to: str, tags: list[str]) -> dict[str, Any]:
    # GET /v3/smtp/emails, as Brevo documents its answer
    return {
        "count": 1,
        "transactionalEmails": [
            {
                "email": to,
                "subject": "Danke für Ihre Bestellung",
                "messageId": MESSAGE_ID,
                "uuid": "5f7c2b4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
                "date": "2026-05-20T12:00:01.000+02:00",
                "from": "hallo@blumen-rosa.de",
                "tags": tags,
            }
        ],
    }


def uncertain(provider: Provider, record: dict[str, Any], since: float) -> Outcome:
    async def go() -> Outcome:
        async with httpx.AsyncClient() as client:
            return await provider.attempt(record, client, uncertain=True, since=int(since))  # type: ignore[arg-type]

    return asyncio.run(go())


def test_after_an_unknown_outcome_brevo_is_asked_once_the_key_may_be_forgotten(
    sink, make_provider, record
):
    provider = make_provider(table(sink.url), env={"BREVO_API_KEY": KEY})
    mail = record("email")

    # within 15 minutes: the same request again, Brevo drops a duplicate by its key
    sink.script(Answer(201, {"messageId": MESSAGE_ID}))
    assert uncertain(provider, mail, time.time() - 60) == Sent(MESSAGE_ID)
    assert [r.method for r in sink.requests] == ["POST"]

    # later: found in Brevo's list of transactional e-mails → sent, no new request
    sink.script(Answer(200, listed(mail["to"], ["thank-you", DELIVERY_ID])))
    assert uncertain(provider, mail, time.time() - 3600) == Sent(MESSAGE_ID)
    ask = sink.last
    assert (ask.method, ask.path) == ("GET", "/v3/smtp/emails")
    assert ask.query["email"] == ["erika.mustermann@example.de"]
    assert ask.headers["api-key"] == KEY
    assert {"startDate", "endDate"} <= set(ask.query)
    assert [r.method for r in sink.requests] == ["POST", "GET"]

    # not listed (another delivery's mail) → sent again
    sink.script(
        Answer(200, listed(mail["to"], ["thank-you", "d_other"])),
        Answer(201, {"messageId": MESSAGE_ID}),
    )
    assert uncertain(provider, mail, time.time() - 3600) == Sent(MESSAGE_ID)
    assert [r.method for r in sink.requests] == ["POST", "GET", "GET", "POST"]

    # the question unanswered → still unknown, nothing sent
    sink.script(Answer(503, "unavailable"))
    assert isinstance(uncertain(provider, mail, time.time() - 3600), Unknown)
    assert [r.method for r in sink.requests][-1] == "GET"


def test_plain_http_only_to_loopback(make_provider):
    with pytest.raises(ConfigError, match="plain http"):
        make_provider(table("http://api.brevo.example"), env={"BREVO_API_KEY": KEY})


CAMPAIGN = """\
channel = "email"
provider = "mail"
template = "danke"

[trigger]
type = "post_purchase"
delay = "1h"
"""


def test_regard_run_sends_through_brevo_and_a_lost_answer_is_sent_again_with_its_key(
    workspace, sink, monkeypatch
):
    monkeypatch.setenv("BREVO_API_KEY", KEY)
    posts: list[Received] = []

    def brevo(request: Received) -> Answer:
        if request.headers.get("api-key") != KEY:
            return Answer(401, error("unauthorized", "Key not found"))
        posts.append(request)
        if len(posts) == 1:
            return Answer(reset=True)  # the answer to the first attempt is lost
        return Answer(201, {"messageId": MESSAGE_ID})

    sink.responder = brevo
    config = workspace.config.read_text(encoding="utf-8")
    workspace.write("regard.toml", config + "\n[providers.mail]\n" + table(sink.url))
    workspace.write("campaigns/danke.toml", CAMPAIGN)
    workspace.write(
        "templates/danke.j2",
        "{% block subject %}Danke, {{ contact.first_name }}!{% endblock %}"
        "{% block text %}Danke für Ihre Bestellung.{% endblock %}",
    )
    contacts = workspace.write(
        "contacts.csv", "id,email,first_name,consent_email\nc1,juergen@example.de,Jürgen,yes\n"
    )
    events = workspace.write(
        "events.csv", "id,contact_id,type,occurred_at\no1,c1,order,2026-05-20T10:00:00\n"
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0

    workspace.cli("run", "--at", "2026-05-20T12:00:00")
    [row] = workspace.cli_json("deliveries")
    assert row["state"] == "pending"
    result = workspace.cli("run", "--at", "2026-05-20T13:00:00")
    assert result.exit_code == 0, result.output + result.stderr
    [row] = workspace.cli_json("deliveries")
    assert row["state"] == "sent"
    first, second = posts
    assert first.json() == second.json()  # the same request, the same idempotency key
    assert second.json()["subject"] == "Danke, Jürgen!"
    assert second.json()["headers"]["idempotencyKey"] == idempotency_key(row["delivery_id"])
