"""The seven.io adapter: its SMS endpoint's wire format (form-encoded, X-Api-Key) against
a real loopback server answering as seven does (JSON with ``success: "100"``, or a bare
status code), its codes read as sent / dead / retry / account paused, and `regard run`."""

from __future__ import annotations

import pytest

from httpsink import Answer, Received
from regard.errors import ConfigError
from regard.providers import Dead, Paused, Retry, Sent, Unconfirmed

KEY = "sevenKEY0123456789abcdefABCDEF"


def sent_answer(to: str = "+4915112345678", debug: str = "false") -> dict[str, object]:
    # seven's SmsResponse (api-schemes openapi: balance, debug, messages, sms_type, success)
    return {
        "success": "100",
        "total_price": 0.075,
        "balance": 42.3,
        "debug": debug,
        "sms_type": "direct",
        "messages": [
            {
                "id": "77229135982",
                "sender": "BlumenRosa",
                "recipient": to.lstrip("+"),
                "text": "Hallo Erika, danke für Ihre erste Bestellung!",
                "encoding": "gsm",
                "label": None,
                "parts": 1,
                "udh": None,
                "is_binary": False,
                "price": 0.075,
                "success": True,
                "error": None,
                "error_text": None,
            }
        ],
    }


def table(url: str, extra: str = "") -> str:
    return f"""\
        type = "seven"
        api_key = "${{SEVEN_API_KEY}}"
        from = "BlumenRosa"
        base_url = "{url}/api"
        {extra}
        """


def test_the_request_is_sevens_sms_endpoint(sink, make_provider, deliver, record):
    sink.script(Answer(200, sent_answer()))
    provider = make_provider(table(sink.url), env={"SEVEN_API_KEY": KEY})
    outcome = deliver(provider, record("sms"))

    assert outcome == Sent("77229135982")
    request = sink.last
    assert (request.method, request.path) == ("POST", "/api/sms")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "to": "+4915112345678",
        "text": "Hallo Erika, danke für Ihre erste Bestellung!",
        "from": "BlumenRosa",
        "foreign_id": "d_3f2a9c1e5b7d4f6a8c0e2b4d6f8a1c3e",
        "label": "thank-you",
    }


def test_sandbox_sends_debug(sink, make_provider, deliver, record):
    sink.script(Answer(200, sent_answer(debug="true")))
    provider = make_provider(table(sink.url, "sandbox = true"), env={"SEVEN_API_KEY": KEY})
    assert isinstance(deliver(provider, record("sms")), Sent)
    assert sink.last.form()["debug"] == "1"


@pytest.mark.parametrize(
    ("answer", "kind", "says"),
    [
        (Answer(200, "900"), Paused, "seven 900 (invalid API key)"),
        (Answer(200, "500"), Paused, "seven 500 (insufficient credits)"),
        (Answer(200, "306"), Paused, "seven 306 (invalid sender)"),
        (Answer(200, "902"), Paused, "seven 902 (API access deactivated)"),
        (Answer(200, "202"), Dead, "seven 202 (invalid recipient number)"),
        (Answer(200, "401"), Dead, "seven 401 (text too long)"),
        (Answer(200, "600"), Retry, "seven 600 (carrier failed)"),
        (Answer(200, "403"), Retry, "seven 403 (daily limit reached"),
        (Answer(200, "402"), Unconfirmed, "seven 402 (reload lock"),
        (Answer(200, b"900\n", {"Content-Type": "application/json"}), Paused, "seven 900"),
        (Answer(503, "busy"), Retry, "HTTP 503"),
        (Answer(429, "slow", {"Retry-After": "7"}), Retry, "HTTP 429"),
    ],
)
def test_sevens_codes(sink, make_provider, deliver, record, answer, kind, says):
    sink.script(answer)
    provider = make_provider(table(sink.url), env={"SEVEN_API_KEY": KEY})
    outcome = deliver(provider, record("sms"))
    assert isinstance(outcome, kind), outcome
    assert says in outcome.reason
    assert KEY not in outcome.reason


def test_a_refused_recipient_inside_a_json_answer(sink, make_provider, deliver, record):
    body = sent_answer()
    body["success"] = "101"
    body["messages"][0].update(success=False, error="202", error_text="Invalid recipient")  # type: ignore[index]
    sink.script(Answer(200, body))
    provider = make_provider(table(sink.url), env={"SEVEN_API_KEY": KEY})
    outcome = deliver(provider, record("sms"))
    assert isinstance(outcome, Dead)
    assert outcome.reason == "seven 202 (invalid recipient number): Invalid recipient"


def test_plain_http_only_to_loopback_and_a_sender_seven_accepts(make_provider):
    with pytest.raises(ConfigError, match="plain http"):
        make_provider(table("http://sms.example.de"), env={"SEVEN_API_KEY": KEY})
    with pytest.raises(ConfigError, match="from"):
        make_provider(
            'type = "seven"\napi_key = "k"\nfrom = "Blumen Rosa GmbH Berlin"\n', name="long"
        )


CAMPAIGN = """\
channel = "sms"
provider = "sms"
template = "danke"

[trigger]
type = "post_purchase"
delay = "1h"
"""


def test_regard_run_sends_through_seven(workspace, sink, monkeypatch):
    monkeypatch.setenv("SEVEN_API_KEY", KEY)

    def seven(request: Received) -> Answer:
        if request.path == "/api/sms" and request.headers.get("x-api-key") == KEY:
            return Answer(200, sent_answer(request.form()["to"]))
        return Answer(200, "900")

    sink.responder = seven
    config = workspace.config.read_text(encoding="utf-8")
    workspace.write("regard.toml", config + "\n[providers.sms]\n" + table(sink.url))
    workspace.write("campaigns/danke.toml", CAMPAIGN)
    workspace.write(
        "templates/danke.j2", "{% block text %}Danke, {{ contact.first_name }}!{% endblock %}"
    )
    contacts = workspace.write(
        "contacts.csv", "id,phone,first_name,consent_sms\nc1,0151 12345678,Jürgen,yes\n"
    )
    events = workspace.write(
        "events.csv", "id,contact_id,type,occurred_at\no1,c1,order,2026-05-20T10:00:00\n"
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0

    result = workspace.cli("run", "--at", "2026-05-20T12:00:00")
    assert result.exit_code == 0, result.output + result.stderr
    [row] = workspace.cli_json("deliveries")
    assert row["state"] == "sent"
    assert sink.last.form()["to"] == "+4915112345678"  # a German number, as E.164
    assert sink.last.form()["text"] == "Danke, Jürgen!"
