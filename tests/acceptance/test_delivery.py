"""SPEC "Providers" and delivery states: the file provider's records, the webhook's
signature and idempotency key over a real socket, answer classification, retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import subprocess
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from conftest import regard_command, subprocess_env
from httpsink import Answer, Sink

from .conftest import Shop

AT = "2026-03-01T10:00:00Z"
SECRET = "s3cret-for-the-crm"
RECORD_FIELDS = {"delivery_id", "campaign", "contact_id", "occasion", "channel", "to", "headers",
                 "subject", "text", "html", "card", "created_at"}  # fmt: skip
ADDRESS = {"first_name": "Jörg", "last_name": "Müller", "company": "Blumen GmbH",
           "street": "Lindenstraße 5", "postal_code": "10969", "city": "Berlin", "country": "DE"}  # fmt: skip


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_file_provider_records_per_channel(shop: Shop) -> None:
    shop.template(
        "note",
        "{% block subject %}Hallo {{ contact.first_name }}{% endblock %}"
        "{% block text %}Danke!{% endblock %}{% block html %}<p>Danke!</p>{% endblock %}"
        "{% block card %}Liebe Grüße{% endblock %}",
    )
    shop.configure("[limits]\ncontact_max = 4\n")
    shop.campaign("mail", 'type = "post_purchase"\n')
    shop.campaign("sms", 'type = "post_purchase"\n', channel="sms")
    shop.campaign("card", 'type = "post_purchase"\n', channel="card",
                  body='[card]\ndesign = "floral"\nfont = "hand-1"\n')  # fmt: skip
    shop.campaign("hook", 'type = "post_purchase"\n', channel="webhook")
    shop.contacts({"id": "c1", "phone": "030 1234567", "consent_sms": True, **ADDRESS})
    shop.order("o1", "c1", "2026-03-01T09:00:00Z")
    shop.tick(AT)
    records = {r["campaign"]: r for r in shop.outbox()}
    assert set(records) == {"mail", "sms", "card", "hook"}
    ids = {d["campaign"]: d["delivery_id"] for d in shop.deliveries()}
    for campaign, record in records.items():
        assert set(record) == RECORD_FIELDS, campaign
        assert record["delivery_id"] == ids[campaign]
        assert (record["contact_id"], record["occasion"], record["channel"]) == (
            "c1", "o1", campaign if campaign in ("sms", "card") else
            {"mail": "email", "hook": "webhook"}[campaign],
        )  # fmt: skip
        assert record["created_at"].endswith("Z")
        instant(record["created_at"])
    mail = records["mail"]
    assert (mail["to"], mail["subject"]) == ("c1@example.com", "Hallo Jörg")
    # a marketing e-mail: the template does not show the link, regard appends it, and the
    # record carries the one-click headers (RFC 8058)
    url = mail["headers"]["List-Unsubscribe"].strip("<>")
    assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url.startswith("http://127.0.0.1:8787/u/")
    assert (
        mail["text"] == f"Danke!\n\nKeine Werbung mehr von Blumen Rosa GmbH? Hier abmelden: {url}"
    )
    assert mail["html"].startswith("<p>Danke!</p>") and f'href="{url}"' in mail["html"]
    assert [records[c]["headers"] for c in ("sms", "card", "hook")] == [{}, {}, {}]
    assert records["sms"]["to"] == "+49301234567"
    assert records["sms"]["text"] == "Danke!"
    card = records["card"]
    assert card["to"] == {"name": "Jörg Müller", "company": "Blumen GmbH",
                          "street": "Lindenstraße 5", "postal_code": "10969",
                          "city": "Berlin", "country": "DE"}  # fmt: skip
    assert card["card"]["design"] == "floral"
    assert card["card"]["font"] == "hand-1"
    assert card["card"]["sender"]["name"] == "Blumen Rosa GmbH"
    assert records["hook"]["text"] == "Danke!"


def hooked(shop: Shop, sink: Sink, timeout: str = "20s") -> None:
    shop.configure(
        f'[providers.hooks]\ntype = "webhook"\nurl = "{sink.url}/regard"\nsecret = "{SECRET}"\n'
        f'[delivery]\nattempts = 3\nbackoff = "1m"\nmax_backoff = "6h"\ntimeout = "{timeout}"\n'
    )
    shop.campaign("hook", 'type = "post_purchase"\n', channel="webhook", provider="hooks")
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T09:00:00Z")


def verify(request: Any) -> dict[str, Any]:
    msg_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    signed = f"{msg_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest())
    assert request.headers["webhook-signature"].split(" ")[0] == "v1," + expected.decode()
    return json.loads(request.body)  # type: ignore[no-any-return]


def test_webhook_signed_per_standard_webhooks(shop: Shop, sink: Sink) -> None:
    hooked(shop, sink)
    shop.tick(AT)
    assert len(sink.requests) == 1
    request = sink.last
    assert request.method == "POST"
    assert request.path == "/regard"
    body = verify(request)
    [delivery] = shop.deliveries()
    assert request.headers["webhook-id"] == delivery["delivery_id"]
    assert request.headers["idempotency-key"] == delivery["delivery_id"]
    assert request.headers["webhook-timestamp"].isdigit()
    # the signature's time is the real one (receivers reject old timestamps), --at or not
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 120
    assert set(body) == RECORD_FIELDS
    assert body["delivery_id"] == delivery["delivery_id"]
    assert delivery["state"] == "sent"
    assert delivery["sent_at"] is not None


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503])
def test_retryable_answers_leave_it_pending(shop: Shop, sink: Sink, status: int) -> None:
    hooked(shop, sink)
    sink.script(Answer(status, {"error": "later"}))
    shop.tick(AT)
    [delivery] = shop.deliveries()
    assert (delivery["state"], delivery["reason"], delivery["attempts"]) == ("pending", None, 1)
    next_at = instant(delivery["next_attempt_at"])
    # backoff × 2^0 = 1 minute after the attempt (the run's instant)
    assert instant(AT) + timedelta(minutes=1) <= next_at <= instant(AT) + timedelta(minutes=2)
    # retried with the same idempotency key at the next tick after that
    shop.tick("2026-03-01T10:05:00Z")
    assert [r.headers["idempotency-key"] for r in sink.requests] == [delivery["delivery_id"]] * 2
    assert shop.deliveries()[0]["state"] == "sent"


def test_retry_after_is_honoured(shop: Shop, sink: Sink) -> None:
    hooked(shop, sink)
    sink.script(Answer(429, {}, {"Retry-After": "3600"}))
    shop.tick(AT)
    [delivery] = shop.deliveries()
    assert instant(delivery["next_attempt_at"]) >= instant(AT) + timedelta(hours=1)
    shop.tick("2026-03-01T10:30:00Z")
    assert len(sink.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_other_answers_are_dead_at_once(shop: Shop, sink: Sink, status: int) -> None:
    hooked(shop, sink)
    sink.script(Answer(status, {"error": "Kein Empfänger xyz-answer"}))
    result = shop.tick(AT, code=3)
    assert "fail" in result.output
    [delivery] = shop.deliveries()
    assert delivery["state"] == "dead"
    assert delivery["reason"]
    assert delivery["attempts"] == 1
    assert delivery["next_attempt_at"] is None
    shown = json.dumps(delivery, ensure_ascii=False)
    assert str(status) in shown
    assert "xyz-answer" in shown  # the provider's answer is kept
    shop.tick("2026-03-02T10:00:00Z")
    assert len(sink.requests) == 1


def test_attempts_exhausted_is_dead(shop: Shop, sink: Sink) -> None:
    hooked(shop, sink)
    sink.default = Answer(503, {})
    shop.tick(AT)
    shop.tick("2026-03-01T11:00:00Z")
    shop.tick("2026-03-01T12:00:00Z", code=3)
    [delivery] = shop.deliveries()
    assert (delivery["state"], delivery["attempts"]) == ("dead", 3)
    assert delivery["reason"]
    assert len(sink.requests) == 3


def test_connection_error_is_retryable(shop: Shop) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    shop.configure(
        f'[providers.hooks]\ntype = "webhook"\nurl = "http://127.0.0.1:{port}/x"\nsecret = "k"\n'
    )
    shop.campaign("hook", 'type = "post_purchase"\n', channel="webhook", provider="hooks")
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T09:00:00Z")
    shop.tick(AT)
    [delivery] = shop.deliveries()
    assert (delivery["state"], delivery["attempts"], delivery["reason"]) == ("pending", 1, None)


def test_timeout_is_retryable(shop: Shop, sink: Sink) -> None:
    hooked(shop, sink, timeout="1s")
    sink.script(Answer(200, {}, delay=2.5))
    shop.tick(AT)
    [delivery] = shop.deliveries()
    assert (delivery["state"], delivery["attempts"]) == ("pending", 1)


@pytest.mark.parametrize(
    "url, ok",
    [("http://crm.example.com/hook", False), ("http://127.0.0.1:9/hook", True),
     ("http://localhost:9/hook", True), ("http://[::1]:9/hook", True),
     ("https://crm.example.com/hook", True), ("http://127.0.0.1.example.com/hook", False)],
)  # fmt: skip
def test_plain_http_only_to_loopback(shop: Shop, url: str, ok: bool) -> None:
    shop.configure(f'[providers.hooks]\ntype = "webhook"\nurl = "{url}"\nsecret = "k"\n')
    shop.campaign("hook", 'type = "post_purchase"\n', channel="webhook", provider="hooks")
    result = shop.cli("check")
    assert result.exit_code == (0 if ok else 1), result.output
    if not ok:
        assert "url" in result.output


def test_retry_and_cancel_deliveries(shop: Shop, sink: Sink) -> None:
    hooked(shop, sink)
    shop.contacts({"id": "c2"})
    shop.order("o2", "c2", "2026-03-01T09:30:00Z")
    # by recipient, not by arrival: the two are sent concurrently
    first = {"c1": Answer(400, {}), "c2": Answer(503, {})}
    sink.responder = lambda request: first.pop(request.json()["contact_id"], Answer(200, {}))
    shop.tick(AT, code=3)
    states = {d["contact_id"]: d for d in shop.deliveries()}
    assert {c: d["state"] for c, d in states.items()} == {"c1": "dead", "c2": "pending"}
    shop.ok("deliveries", "cancel", states["c2"]["delivery_id"])
    shop.ok("deliveries", "retry", states["c1"]["delivery_id"])
    after = {d["contact_id"]: d for d in shop.deliveries()}
    assert (after["c2"]["state"], after["c2"]["reason"]) == ("cancelled", None)
    assert after["c1"]["state"] == "pending"
    assert after["c1"]["reason"] is None
    shop.ok("run")  # now: the retried one is due again
    final = {d["contact_id"]: d["state"] for d in shop.deliveries()}
    assert final == {"c1": "sent", "c2": "cancelled"}
    assert len(sink.requests) == 3
    # a sent delivery cannot be cancelled, an unknown id is an error
    assert shop.cli("deliveries", "cancel", states["c1"]["delivery_id"]).exit_code == 1
    assert shop.cli("deliveries", "retry", "d_nope").exit_code == 1


def test_deliveries_filters(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.campaign("other", 'type = "post_purchase"\n')
    shop.contacts({"id": "c1"}, {"id": "c2", "consent_email": False})
    shop.order("o1", "c1", AT)
    shop.order("o2", "c2", AT)
    shop.tick(AT)
    assert len(shop.deliveries()) == 4
    assert {d["contact_id"] for d in shop.deliveries("--state", "skipped")} == {"c2"}
    assert {d["campaign"] for d in shop.deliveries("--campaign", "other")} == {"other"}
    assert {d["state"] for d in shop.deliveries("--contact", "c1")} == {"sent"}


@pytest.mark.slow
def test_two_processes_never_send_one_delivery_twice(shop: Shop, sink: Sink) -> None:
    hooked(shop, sink)
    ids = [f"c{n}" for n in range(2, 12)]
    shop.contacts(*[{"id": i} for i in ids])
    shop.events(
        *[{"id": f"o-{i}", "contact_id": i, "occurred_at": "2026-03-01T09:00:00Z"} for i in ids]
    )
    sink.default = Answer(200, {}, delay=0.1)
    runs = [
        subprocess.Popen(
            [*regard_command("--config", str(shop.ws.config), "run", "--at", AT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=subprocess_env(),
            cwd=shop.root,
        )
        for _ in range(2)
    ]
    for run in runs:
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, (out, err)
    sent = [r.headers["webhook-id"] for r in sink.requests]
    assert len(sent) == len(set(sent)) == 11
    assert {d["state"] for d in shop.deliveries()} == {"sent"}


def test_secrets_stay_in_the_config(
    shop: Shop, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "whsec_" + base64.b64encode(b"a-very-secret-signing-key-1234").decode()
    monkeypatch.setenv("HOOK_SECRET", secret)
    shop.configure(
        f'[providers.hooks]\ntype = "webhook"\nurl = "{sink.url}/regard"\nsecret = "${{HOOK_SECRET}}"\n'
    )
    shop.campaign("hook", 'type = "post_purchase"\n', channel="webhook", provider="hooks")
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T09:00:00Z")
    sink.script(Answer(400, {"error": f"signature does not match {secret}"}))
    outputs = [
        shop.cli("check").output,
        shop.cli("run", "--at", AT, "--json").output,
        shop.cli("deliveries", "--json").output,
        shop.cli("status", "--json").output,
        shop.cli("report", "--json").output,
    ]
    assert len(sink.requests) == 1
    assert "does not match" in outputs[2]
    for output in outputs:
        assert secret not in output
        assert secret.removeprefix("whsec_") not in output
    assert secret.encode() not in shop.db_bytes()


@pytest.mark.slow
def test_a_delivery_caught_in_sending_by_a_crash_is_retried_with_the_same_key(
    shop: Shop, sink: Sink
) -> None:
    hooked(shop, sink, timeout="1s")
    # the claim's lease (a documented [delivery] key, at least twice the timeout)
    shop.ws.config.write_text(shop.ws.config.read_text() + 'lease = "2s"\n', encoding="utf-8")
    sink.script(Answer(200, {}, delay=3))
    run = subprocess.Popen(
        [*regard_command("--config", str(shop.ws.config), "run", "--at", AT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env(),
        cwd=shop.root,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not sink.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.requests, "the run never sent"
    finally:
        run.kill()
        run.wait()
    [caught] = shop.deliveries()
    assert caught["state"] == "sending"
    time.sleep(3.2)  # the lease (whole seconds) runs on the wall clock
    shop.tick("2026-03-01T11:00:00Z")
    keys = [r.headers["idempotency-key"] for r in sink.requests]
    assert keys == [caught["delivery_id"]] * 2
    assert shop.deliveries()[0]["state"] == "sent"


def test_backoff_doubles_and_is_capped(shop: Shop, sink: Sink) -> None:
    shop.configure(
        f'[providers.hooks]\ntype = "webhook"\nurl = "{sink.url}/regard"\nsecret = "{SECRET}"\n'
        '[delivery]\nattempts = 8\nbackoff = "1h"\nmax_backoff = "90m"\n'
    )
    shop.campaign("hook", 'type = "post_purchase"\n', channel="webhook", provider="hooks")
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T09:00:00Z")
    sink.default = Answer(503, {})
    shop.tick(AT)
    first = instant(shop.deliveries()[0]["next_attempt_at"])
    assert instant(AT) + timedelta(hours=1) <= first <= instant(AT) + timedelta(hours=2)
    shop.tick("2026-03-01T12:00:00Z")
    [second] = shop.deliveries()
    assert second["attempts"] == 2
    # backoff × 2 = 2 h, capped by max_backoff at 90 minutes
    assert instant(second["next_attempt_at"]) == instant("2026-03-01T13:30:00Z")


def test_concurrency_limits_requests_in_flight(shop: Shop, sink: Sink) -> None:
    hooked(shop, sink)
    shop.ws.config.write_text(shop.ws.config.read_text() + "concurrency = 2\n", encoding="utf-8")
    ids = [f"c{n}" for n in range(2, 7)]
    shop.contacts(*[{"id": i} for i in ids])
    shop.events(
        *[{"id": f"o-{i}", "contact_id": i, "occurred_at": "2026-03-01T09:00:00Z"} for i in ids]
    )
    sink.default = Answer(200, {}, delay=0.4)
    shop.tick(AT)
    arrivals = sorted(r.at for r in sink.requests)
    assert len(arrivals) == 6
    # a third request only starts when one of the two in flight has been answered
    assert all(
        later - earlier >= 0.3 for earlier, later in zip(arrivals, arrivals[2:], strict=False)
    )
