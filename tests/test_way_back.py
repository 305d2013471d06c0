"""The way back, through a real ``regard serve`` on 127.0.0.1: unsubscribe links, the undo,
Postmark and Twilio callbacks, and what forged requests get (nothing changes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from conftest import Workspace
from regard.store import open_store

T1 = "2026-03-01T12:00:00Z"
T2 = "2026-03-10T12:00:00Z"
PROVIDERS = """
[providers.pm]
type = "postmark"
server_token = "POSTMARK_API_TEST"
callback_secret = "pm-callback-secret"

[providers.tw]
type = "twilio"
account_sid = "AC0123456789abcdef"
auth_token = "tw-auth-token"
from = "+15005550006"
"""
TEMPLATE = (
    "{% block subject %}Hallo{% endblock %}"
    "{% block text %}Danke, {{ contact.first_name }}! ({{ occasion }}){% endblock %}"
)


def campaign(workspace: Workspace, name: str, purpose: str, channel: str = "email") -> None:
    workspace.write(
        f"campaigns/{name}.toml",
        f'channel = "{channel}"\nprovider = "outbox"\ntemplate = "note"\n'
        f'purpose = "{purpose}"\nmax_lateness = "30d"\n[trigger]\ntype = "post_purchase"\n',
    )


def jsonl(workspace: Workspace, kind: str, *rows: dict[str, Any]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    result = workspace.cli("import", kind, "-", input=text)
    assert result.exit_code == 0, result.output


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    """Anna (de, e-mail and SMS consent), a marketing and a service e-mail campaign, and an
    SMS marketing campaign, all to the outbox; Postmark and Twilio tables for callbacks."""
    workspace.config.write_text(workspace.config.read_text() + PROVIDERS, encoding="utf-8")
    workspace.write("templates/note.j2", TEMPLATE)
    campaign(workspace, "offer", "marketing")
    campaign(workspace, "receipt", "service")
    campaign(workspace, "texts", "marketing", channel="sms")
    jsonl(
        workspace,
        "contacts",
        {"id": "c1", "email": "anna@example.com", "phone": "+4915112345678",
         "first_name": "Anna", "locale": "de", "consent_email": True, "consent_sms": True},
    )  # fmt: skip
    return workspace


def order(shop: Workspace, event_id: str, when: str) -> None:
    jsonl(shop, "events", {"id": event_id, "contact_id": "c1", "occurred_at": when})


def run(shop: Workspace, at: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    result = shop.cli("run", "--at", at)
    assert result.exit_code == 0, result.output
    return {
        (d["campaign"], d["occasion"]): (d["state"], d["reason"])
        for d in shop.cli_json("deliveries")
    }


def shown(shop: Workspace) -> dict[str, Any]:
    data: dict[str, Any] = shop.cli_json("contacts", "show", "c1")
    return {"unsubscribed": data["unsubscribed"], "bounced": data["bounced"]}


NOTHING = {"unsubscribed": {}, "bounced": {}}


def link_of(shop: Workspace, campaign_id: str) -> str:
    [record] = [r for r in shop.outbox() if r["campaign"] == campaign_id]
    header = record["headers"]["List-Unsubscribe"]
    assert header.startswith("<") and header.endswith(">")
    url: str = header[1:-1]
    assert url in record["text"]  # the footer shows the same link
    return url


def test_get_shows_post_unsubscribes_and_only_marketing_stops(shop: Workspace, served: Any) -> None:
    server = served(shop.config)
    order(shop, "o1", "2026-03-01T10:00:00Z")
    assert run(shop, T1)[("offer", "o1")] == ("sent", None)
    url = link_of(shop, "offer")
    assert url.startswith(server.url + "/u/")
    [receipt] = [r for r in shop.outbox() if r["campaign"] == "receipt"]
    assert receipt["headers"] == {} and "/u/" not in receipt["text"]  # service: no link

    page = httpx.get(url)
    assert page.status_code == 200
    assert 'lang="de"' in page.text and "Blumen Rosa GmbH" in page.text
    assert "E-Mail" in page.text and '<form method="post" action="/u/' in page.text
    assert shown(shop) == NOTHING  # looking changes nothing (link scanners)

    done = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "abgemeldet" in done.text and "/resubscribe" in done.text
    after = shown(shop)
    assert list(after["unsubscribed"]) == ["email"] and after["bounced"] == {}
    assert httpx.post(url).status_code == 200
    assert shown(shop) == after  # repeating changes nothing

    order(shop, "o2", "2026-03-10T10:00:00Z")
    states = run(shop, T2)
    assert states[("offer", "o2")] == ("skipped", "unsubscribed")
    assert states[("receipt", "o2")] == ("sent", None)  # service still goes
    assert states[("texts", "o2")] == ("sent", None)  # only the link's channel

    undo = httpx.post(url + "/resubscribe")
    assert undo.status_code == 200 and "wieder angemeldet" in undo.text
    assert shown(shop) == NOTHING

    server.stop()
    log = server.log()
    assert "Traceback" not in log and "anna@example.com" not in log
    assert url.rsplit("/", 1)[1] not in log  # tokens stay out of the log
    routes = {line["route"] for line in server.requests()}
    assert {"/u/{token}", "/u/{token}/resubscribe", "/healthz"} <= routes


def test_forged_truncated_and_forgotten_tokens_change_nothing(shop: Workspace, served: Any) -> None:
    server = served(shop.config)
    order(shop, "o1", "2026-03-01T10:00:00Z")
    run(shop, T1)
    url = link_of(shop, "offer")
    token = url.rsplit("/", 1)[1]
    delivery_id, signature = token.split(".")
    forged = [
        url[:-1] + ("A" if url[-1] != "A" else "B"),  # one character of the signature
        url[: -len(signature) // 2],  # truncated
        f"{server.url}/u/{delivery_id}",  # no signature at all
        f"{server.url}/u/d_{'0' * 32}.{signature}",  # another delivery, the same signature
    ]
    for bad in forged:
        assert httpx.get(bad).status_code == 404, bad
        assert httpx.post(bad).status_code == 404, bad
        assert httpx.post(bad + "/resubscribe").status_code == 404, bad
    assert shown(shop) == NOTHING

    # a contact forgotten since: the link leads nowhere, and nothing is recorded
    assert shop.cli("contacts", "forget", "c1").exit_code == 0
    gone = httpx.post(url)
    assert gone.status_code == 404 and "Anna" not in gone.text

    # a store that fails under the server: a plain 500, never a traceback
    with open_store(shop.store_target) as store, store.write() as conn:
        conn.execute("ALTER TABLE deliveries RENAME TO deliveries_elsewhere")
    broken = httpx.post(url)
    assert broken.status_code == 500
    assert broken.json() == {"error": "internal error"}
    assert httpx.get(server.url + "/healthz").status_code == 200  # still serving
    server.stop()
    assert "Traceback" not in server.log()
    failed = [r for r in server.requests() if r["status"] == 500]
    # the engine's own error type, and where in regard it came from: never its message
    assert [r["error"] for r in failed] in (["OperationalError"], ["UndefinedTable"])
    assert all(r["at"].startswith("regard/store/") for r in failed), failed


def postmark(server: Any, record: dict[str, Any], password: str = "pm-callback-secret") -> Any:
    return httpx.post(server.url + "/hooks/pm", json=record, auth=("postmark", password))


def test_a_postmark_bounce_stops_the_next_email_of_any_purpose(
    shop: Workspace, served: Any
) -> None:
    server = served(shop.config)
    bounce = {"RecordType": "Bounce", "Type": "HardBounce", "Email": "Anna@Example.com",
              "Inactive": True, "MessageStream": "outbound"}  # fmt: skip
    # wrong or missing credentials, a body that is not JSON: nothing changes
    assert postmark(server, bounce, password="guess").status_code == 401
    assert httpx.post(server.url + "/hooks/pm", json=bounce).status_code == 401
    not_json = httpx.post(
        server.url + "/hooks/pm", content=b"{nope", auth=("postmark", "pm-callback-secret")
    )
    assert not_json.status_code == 400
    assert httpx.post(server.url + "/hooks/nobody", json=bounce).status_code == 404
    assert httpx.post(server.url + "/hooks/outbox", json=bounce).status_code == 404
    assert shown(shop) == NOTHING
    # a record that changes nothing, and an address nobody has
    assert postmark(server, {"RecordType": "Delivery", "Recipient": "anna@example.com"}).json() == {
        "ok": True, "changed": False,
    }  # fmt: skip
    unknown = postmark(server, {**bounce, "Email": "nobody@example.com"})
    assert unknown.status_code == 200 and unknown.json()["changed"] is False
    soft = postmark(server, {**bounce, "Type": "SoftBounce", "Inactive": False})
    assert soft.json()["changed"] is False
    assert shown(shop) == NOTHING

    answer = postmark(server, bounce)
    assert answer.status_code == 200 and answer.json() == {"ok": True, "changed": True}
    assert list(shown(shop)["bounced"]) == ["email"]
    order(shop, "o1", "2026-03-01T10:00:00Z")
    states = run(shop, T1)
    assert states[("offer", "o1")] == ("skipped", "bounced")
    assert states[("receipt", "o1")] == ("skipped", "bounced")  # every purpose
    assert states[("texts", "o1")] == ("sent", None)  # another channel


def test_postmark_complaints_and_subscription_changes(shop: Workspace, served: Any) -> None:
    server = served(shop.config)
    complaint = {
        "RecordType": "SpamComplaint",
        "Email": "anna@example.com",
        "Type": "SpamComplaint",
    }
    assert postmark(server, complaint).json()["changed"] is True
    assert list(shown(shop)["unsubscribed"]) == ["email"]
    change = {"RecordType": "SubscriptionChange", "Recipient": "anna@example.com",
              "SuppressSending": False, "SuppressionReason": None}  # fmt: skip
    assert postmark(server, change).json()["changed"] is True
    assert shown(shop) == NOTHING
    assert postmark(server, {**change, "SuppressSending": True}).json()["changed"] is True
    assert list(shown(shop)["unsubscribed"]) == ["email"]


def twilio_post(server: Any, params: dict[str, str], token: str = "tw-auth-token") -> Any:
    """A form POST signed as Twilio signs it: base64 HMAC-SHA1 over the URL and the sorted
    parameters, each name then value."""
    url = server.url + "/hooks/tw"
    data = url + "".join(k + v for k, v in sorted(params.items()))
    signature = base64.b64encode(
        hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    ).decode()
    return httpx.post(
        url,
        content=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-Twilio-Signature": signature},
    )  # fmt: skip


def test_twilio_stop_start_and_status_callbacks(shop: Workspace, served: Any) -> None:
    server = served(shop.config)
    inbound = {"MessageSid": "SM1", "AccountSid": "AC0123456789abcdef", "From": "+4915112345678",
               "To": "+15005550006", "Body": "  stopp ", "SmsStatus": "received"}  # fmt: skip
    # a forged signature, or none: 403 and nothing changes
    assert twilio_post(server, inbound, token="not-the-token").status_code == 403
    unsigned = httpx.post(server.url + "/hooks/tw", data=inbound)
    assert unsigned.status_code == 403
    assert shown(shop) == NOTHING

    answer = twilio_post(server, inbound)
    assert answer.status_code == 200 and "<Response>" in answer.text
    assert list(shown(shop)["unsubscribed"]) == ["sms"]
    order(shop, "o1", "2026-03-01T10:00:00Z")
    states = run(shop, T1)
    assert states[("texts", "o1")] == ("skipped", "unsubscribed")
    assert states[("offer", "o1")] == ("sent", None)

    assert twilio_post(server, {**inbound, "Body": "Start"}).status_code == 200
    assert shown(shop) == NOTHING
    assert twilio_post(server, {**inbound, "Body": "stop the music"}).status_code == 200
    assert shown(shop) == NOTHING  # only the words themselves

    status = {"MessageSid": "SM2", "MessageStatus": "undelivered", "ErrorCode": "30005",
              "To": "+4915112345678", "From": "+15005550006"}  # fmt: skip
    assert twilio_post(server, {**status, "MessageStatus": "delivered"}).status_code == 200
    assert shown(shop) == NOTHING
    assert twilio_post(server, status).status_code == 200
    assert list(shown(shop)["bounced"]) == ["sms"]
    server.stop()
    assert "Traceback" not in server.log() and "+4915112345678" not in server.log()


def test_contacts_unsubscribe_and_resubscribe_by_address(shop: Workspace) -> None:
    first = shop.cli("contacts", "unsubscribe", "ANNA@example.com", "--channel", "email")
    assert first.exit_code == 0 and first.stdout.strip() == "c1 unsubscribed from the email channel"
    assert list(shown(shop)["unsubscribed"]) == ["email"]
    again = shop.cli("contacts", "resubscribe", "+49 151 12345678")
    assert again.exit_code == 0 and again.stdout.strip() == "c1 resubscribed to all channels"
    assert shown(shop) == NOTHING
    assert shop.cli("contacts", "unsubscribe", "c1").exit_code == 0
    assert shown(shop)["unsubscribed"].keys() == {"*"}
    # resubscribing one channel keeps the others unsubscribed
    assert shop.cli("contacts", "resubscribe", "c1", "--channel", "sms").exit_code == 0
    assert set(shown(shop)["unsubscribed"]) == {"email", "card", "webhook"}
    missing = shop.cli("contacts", "unsubscribe", "nobody@example.com")
    assert missing.exit_code == 1 and "nobody@example.com" in missing.stderr
