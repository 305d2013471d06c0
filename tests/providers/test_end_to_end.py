"""The adapters inside the whole loop: contacts and an order imported, campaigns on each
channel, `regard run` through the real CLI, the services played by a loopback sink that
checks nothing but what the real ones would receive."""

from __future__ import annotations

import base64

from httpsink import Answer, Received

SID = "AC3f9b2c1d4e5f60718293a4b5c6d7e8f9"
TWILIO_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
RUN_AT = "2026-05-20T12:00:00"


def providers(url: str) -> str:
    return f"""
[limits]
contact_max = 0

[providers.mail]
type = "postmark"
server_token = "${{POSTMARK_SERVER_TOKEN}}"
base_url = "{url}"

[providers.sms]
type = "twilio"
account_sid = "{SID}"
auth_token = "${{TWILIO_AUTH_TOKEN}}"
from = "+15005550006"
base_url = "{url}"

[providers.cards]
type = "handwrytten"
api_key = "${{HANDWRYTTEN_API_KEY}}"
base_url = "{url}"
font = "Casual David"
designs = {{ "danke-blumen" = 25019 }}
"""


CAMPAIGN = """\
channel = "{channel}"
provider = "{provider}"
template = "danke-{channel}"

[trigger]
type = "post_purchase"
delay = "1h"
"""

TEMPLATES = {
    "danke-email.j2": "{% block subject %}Danke{% if contact.first_name %}, {{ contact.first_name }}{% endif %}!"
    "{% endblock %}"
    "{% block text %}{{ contact | greeting }}, danke für Ihre Bestellung.{% endblock %}"
    "{% block html %}<p>{{ contact | greeting }}, danke!</p>{% endblock %}",
    "danke-sms.j2": "{% block text %}Danke für Ihre Bestellung"
    "{% if contact.first_name %}, {{ contact.first_name }}{% endif %}!{% endblock %}",
    "danke-card.j2": "{% block card %}{% if contact.first_name %}Liebe {{ contact.first_name }}, "
    "{% endif %}von Herzen danke!{% endblock %}",
}


def services(request: Received) -> Answer:
    if request.path == "/email":
        body = request.json()
        if body["To"] == "bounced@example.de":
            return Answer(
                422,
                {
                    "ErrorCode": 406,
                    "Message": "You tried to send to recipient(s) "
                    "that have been marked as inactive. Found inactive addresses: "
                    "bounced@example.de.",
                },
            )
        return Answer(
            200,
            {
                "To": body["To"],
                "SubmittedAt": "2026-05-20T12:00:01Z",
                "MessageID": "0a129aee-e1cd-480d-b08d-4f48548ff48d",
                "ErrorCode": 0,
                "Message": "OK",
            },
        )
    if request.path == TWILIO_PATH:
        return Answer(201, {"sid": "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0", "status": "queued"})
    if request.path == "/orders/singleStepOrder":
        return Answer(200, {"httpCode": 200, "status": "ok", "order_id": 4711})
    if request.path == "/checkauth/auth":
        return Answer(200, {"httpCode": 200, "status": "ok", "test_mode": 0})
    if request.path == "/countries/list":
        countries = [{"id": 81, "name": "Germany", "aliases": "DE", "states": []}]
        return Answer(200, {"httpCode": 200, "status": "OK", "countries": countries})
    return Answer(404, {"message": "no such endpoint"})


def setup(workspace, sink, monkeypatch, email: str) -> None:
    for name in ("POSTMARK_SERVER_TOKEN", "TWILIO_AUTH_TOKEN", "HANDWRYTTEN_API_KEY"):
        monkeypatch.setenv(name, f"secret-{name.lower()}")
    config = workspace.config.read_text(encoding="utf-8")
    workspace.write("regard.toml", config + providers(sink.url))
    for channel, provider in (("email", "mail"), ("sms", "sms"), ("card", "cards")):
        campaign = CAMPAIGN.format(channel=channel, provider=provider)
        if channel == "card":
            campaign += '\n[card]\ndesign = "danke-blumen"\n'
        workspace.write(f"campaigns/danke-{channel}.toml", campaign)
    for name, text in TEMPLATES.items():
        workspace.write(f"templates/{name}", text)
    contacts = workspace.write(
        "contacts.csv",
        "id,email,phone,first_name,last_name,street,postal_code,city,country,consent_email,consent_sms\n"
        f"c1,{email},+49 151 12345678,Jürgen,Müller,Königstraße 3,70173,Stuttgart,DE,yes,yes\n",
    )
    events = workspace.write(
        "events.csv",
        "id,contact_id,type,occurred_at,amount\no1,c1,order,2026-05-20T10:00:00,49.90\n",
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0
    sink.responder = services


def test_one_order_reaches_postmark_twilio_and_handwrytten(workspace, sink, monkeypatch):
    setup(workspace, sink, monkeypatch, "juergen@example.de")

    result = workspace.cli("run", "--at", RUN_AT)
    assert result.exit_code == 0, result.output + result.stderr

    by_path = {r.path: r for r in sink.requests}
    assert set(by_path) == {
        "/email", TWILIO_PATH, "/orders/singleStepOrder", "/checkauth/auth", "/countries/list"
    }  # fmt: skip
    mail = by_path["/email"]
    assert mail.headers["x-postmark-server-token"] == "secret-postmark_server_token"
    assert mail.json()["To"] == "juergen@example.de"
    assert mail.json()["Subject"] == "Danke, Jürgen!"
    assert mail.json()["Tag"] == "danke-email"
    assert mail.json()["Metadata"]["delivery_id"] == mail.headers["idempotency-key"]
    sms = by_path[TWILIO_PATH]
    login = base64.b64encode(f"{SID}:secret-twilio_auth_token".encode()).decode()
    assert sms.headers["authorization"] == f"Basic {login}"
    assert sms.form() == {
        "To": "+4915112345678",
        "From": "+15005550006",
        "Body": "Danke für Ihre Bestellung, Jürgen!",
    }
    card = by_path["/orders/singleStepOrder"].json()
    assert card["card_id"] == 25019 and card["font_label"] == "Casual David"
    assert card["message"] == "Liebe Jürgen, von Herzen danke!"
    assert (card["recipient_first_name"], card["recipient_last_name"]) == ("Jürgen", "Müller")
    assert card["recipient_address1"] == "Königstraße 3"
    assert (card["recipient_zip"], card["recipient_city"], card["recipient_country_id"]) == (
        "70173",
        "Stuttgart",
        81,
    )
    assert (card["sender_last_name"], card["sender_city"]) == ("GmbH", "Berlin")
    assert card["client_metadata"] == by_path["/orders/singleStepOrder"].headers["idempotency-key"]

    rows = workspace.cli_json("deliveries")
    assert {r["campaign"]: r["state"] for r in rows} == {
        "danke-email": "sent",
        "danke-sms": "sent",
        "danke-card": "sent",
    }
    dump = (
        workspace.cli("deliveries", "--json").stdout
        + workspace.cli("contacts", "show", "c1", "--json").stdout
    )
    assert "secret-" not in dump


def test_an_inactive_recipient_is_dead_and_unsubscribed(workspace, sink, monkeypatch):
    setup(workspace, sink, monkeypatch, "bounced@example.de")

    result = workspace.cli("run", "--at", RUN_AT)
    assert result.exit_code == 3  # the run finished, a delivery failed

    rows = {r["campaign"]: r for r in workspace.cli_json("deliveries")}
    assert rows["danke-email"]["state"] == "dead"
    assert "Postmark 406 (inactive recipient)" in rows["danke-email"]["reason"]
    assert rows["danke-sms"]["state"] == rows["danke-card"]["state"] == "sent"
    shown = workspace.cli("contacts", "show", "c1").stdout
    assert "\nunsubscribed\n  email: provider mail: HTTP 422: Postmark 406" in shown
    assert "secret-" not in shown + result.stdout + result.stderr

    # the address is suppressed: the next e-mail campaign skips the contact
    later = CAMPAIGN.format(channel="email", provider="mail").replace('"1h"', '"3h"')
    workspace.write("campaigns/danke-later.toml", later)
    assert workspace.cli("run", "--at", "2026-05-20T13:30:00").exit_code == 0
    [row] = [r for r in workspace.cli_json("deliveries") if r["campaign"] == "danke-later"]
    assert (row["state"], row["reason"]) == ("skipped", "unsubscribed")
    assert [r.path for r in sink.requests].count("/email") == 1


def test_a_card_text_over_320_characters_fails_check(workspace, sink, monkeypatch):
    setup(workspace, sink, monkeypatch, "juergen@example.de")
    workspace.write(
        "templates/danke-card.j2", "{% block card %}" + "Danke! " * 50 + "{% endblock %}"
    )
    result = workspace.cli("check")
    assert result.exit_code == 1
    problems = [line for line in (result.stdout + result.stderr).splitlines() if ".j2" in line]
    assert len(problems) == 1, problems
    assert (
        "danke-card.j2: the card text is 349 characters long; provider 'cards' takes at most 320"
        in problems[0]
    )
    workspace.write("templates/danke-card.j2", "{% block card %}" + "x" * 320 + "{% endblock %}")
    assert workspace.cli("check").exit_code == 0
