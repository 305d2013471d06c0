"""The webhook adapter against a real server: the record as JSON, signed per Standard
Webhooks, verified both with the standardwebhooks library and by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from httpsink import Answer
from regard.errors import ConfigError
from regard.providers import Dead, Retry, Sent

B64_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
RAW_SECRET = "s3cr3t-with_punctuation!"


def table(url: str, extra: str = "") -> str:
    return f"""\
        type = "webhook"
        url = "{url}"
        secret = "${{REGARD_WEBHOOK_SECRET}}"
        {extra}
        """


def hand_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize(
    ("secret", "key", "library_secret"),
    [
        (B64_SECRET, b"0123456789abcdef0123456789abcdef", B64_SECRET),
        (RAW_SECRET, RAW_SECRET.encode(), RAW_SECRET.encode()),
    ],
    ids=["whsec-base64", "raw"],
)
def test_posts_the_signed_record(sink, make_provider, deliver, record, secret, key, library_secret):
    provider = make_provider(
        table(f"{sink.url}/hooks/regard", 'headers = { "X-Tenant" = "blumen-rosa" }'),
        env={"REGARD_WEBHOOK_SECRET": secret},
    )
    sink.script(Answer(202, {"received": True}))
    sent = record("webhook")
    before = int(time.time())

    assert deliver(provider, sent) == Sent(None)

    got = sink.last
    assert (got.method, got.path) == ("POST", "/hooks/regard")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-tenant"] == "blumen-rosa"
    assert got.headers["idempotency-key"] == sent["delivery_id"]
    assert got.headers["webhook-id"] == sent["delivery_id"]
    assert before <= int(got.headers["webhook-timestamp"]) <= int(time.time())
    assert got.json() == sent  # the delivery record itself, umlauts intact
    assert "Bestellung" in got.body.decode("utf-8")
    # the receiver's two ways to check: the maintained library, and the HMAC by hand
    assert Webhook(library_secret).verify(got.body, got.headers) == sent
    expected = hand_signature(
        key, got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body
    )
    assert got.headers["webhook-signature"] == expected


def test_a_changed_body_fails_verification(sink, make_provider, deliver, record):
    provider = make_provider(table(sink.url), env={"REGARD_WEBHOOK_SECRET": B64_SECRET})
    deliver(provider, record("webhook"))
    tampered = sink.last.body.replace(b"Erika", b"Mallory")
    with pytest.raises(Exception, match="signature"):
        Webhook(B64_SECRET).verify(tampered, sink.last.headers)


def test_every_attempt_keeps_the_id_and_signs_afresh(sink, make_provider, deliver, record):
    provider = make_provider(table(sink.url), env={"REGARD_WEBHOOK_SECRET": B64_SECRET})
    sink.script(Answer(503, "busy"))
    sent = record("webhook")
    assert isinstance(deliver(provider, sent), Retry)
    assert deliver(provider, sent) == Sent(None)
    first, second = sink.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == sent["delivery_id"]
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    for got in (first, second):
        Webhook(B64_SECRET).verify(got.body, got.headers)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(200), Sent),
        (Answer(204), Sent),
        (Answer(400, {"error": "bad payload"}), Dead),
        (Answer(401, "unauthorized"), Dead),
        (Answer(403, "forbidden"), Dead),
        (Answer(410, "gone"), Dead),
        (Answer(404, "no such path"), Dead),
        (Answer(408), Retry),
        (Answer(425), Retry),
        (Answer(429, headers={"Retry-After": "7"}), Retry),
        (Answer(500, "oops"), Retry),
        (Answer(503), Retry),
    ],
)
def test_status_decides(sink, make_provider, deliver, record, answer, expected):
    provider = make_provider(table(sink.url), env={"REGARD_WEBHOOK_SECRET": B64_SECRET})
    sink.script(answer)
    outcome = deliver(provider, record("webhook"))
    assert type(outcome) is expected
    if expected is Dead:
        assert f"HTTP {answer.status}" in outcome.reason


@pytest.mark.parametrize(
    ("extra", "secret", "problem"),
    [
        (
            'url = "http://crm.example.com/hook"',
            B64_SECRET,
            "plain http:// is only allowed to loopback",
        ),
        ('url = "ftp://127.0.0.1/hook"', B64_SECRET, "not an http(s) URL"),
        ('url = "https://crm.example.com/hook"', "whsec_not*base64", "must continue in base64"),
        ('url = "https://crm.example.com/hook"', "", "secret is empty"),
        (
            'url = "https://crm.example.com/hook"\nheaders = { "Webhook-Signature" = "x" }',
            B64_SECRET,
            "set by regard itself",
        ),
        (
            'url = "https://crm.example.com/hook"\nsecrett = "x"',
            B64_SECRET,
            "did you mean 'secret'",
        ),
    ],
)
def test_config_errors_name_the_key(make_provider, extra, secret, problem):
    with pytest.raises(ConfigError) as caught:
        make_provider(
            f'type = "webhook"\n{extra}\nsecret = "${{REGARD_WEBHOOK_SECRET}}"\n',
            env={"REGARD_WEBHOOK_SECRET": secret},
        )
    message = str(caught.value)
    assert "regard.toml:" in message and "providers.svc." in message
    assert problem in message
    assert not secret or secret not in message


def test_a_missing_secret_is_a_config_error(make_provider):
    with pytest.raises(ConfigError, match=r"providers\.svc\.secret: required key is missing"):
        make_provider('type = "webhook"\nurl = "https://crm.example.com/hook"\n')


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/h", "http://localhost:9/h", "http://[::1]:9/h"]
)
def test_plain_http_to_loopback_is_allowed(make_provider, url):
    provider = make_provider(table(url), env={"REGARD_WEBHOOK_SECRET": B64_SECRET})
    assert provider.options.url == url


def test_the_secret_stays_out_of_repr_and_reasons(sink, make_provider, deliver, record):
    provider = make_provider(
        table(sink.url, 'headers = { "Authorization" = "Bearer crm-token-42" }'),
        env={"REGARD_WEBHOOK_SECRET": RAW_SECRET},
    )
    sink.script(Answer(400, f"rejected: secret {RAW_SECRET} with Bearer crm-token-42 is wrong"))
    outcome = deliver(provider, record("webhook"))
    assert sink.last.headers["authorization"] == "Bearer crm-token-42"
    assert isinstance(outcome, Dead)
    assert RAW_SECRET not in outcome.reason and "crm-token-42" not in outcome.reason
    assert "secret *** with *** is wrong" in outcome.reason
    assert "crm-token-42" not in repr(provider.options)
    assert RAW_SECRET not in repr(provider.options) and RAW_SECRET not in str(vars(provider))
    assert RAW_SECRET not in json.dumps(sink.last.json())


def doc_examples() -> list[str]:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "providers.md").read_text("utf-8")
    return re.findall(r"```python\n(.*?)```", doc, re.DOTALL)


def test_the_documented_receivers_verify_a_real_request(sink, make_provider, deliver, record):
    provider = make_provider(table(sink.url), env={"REGARD_WEBHOOK_SECRET": RAW_SECRET})
    deliver(provider, record("webhook"))
    got = sink.last
    library_example, hand_example = doc_examples()

    namespace: dict = {}
    exec(hand_example, namespace)
    assert namespace["verify"](got.body, got.headers, RAW_SECRET.encode())
    assert not namespace["verify"](got.body + b" ", got.headers, RAW_SECRET.encode())

    exec(library_example.replace('"whsec_..."', repr(B64_SECRET)), namespace)
    with pytest.raises(PermissionError):  # signed with the raw secret, checked with another
        namespace["handle"](got.body, got.headers)
    signed_with_b64 = make_provider(table(sink.url), env={"REGARD_WEBHOOK_SECRET": B64_SECRET})
    deliver(signed_with_b64, record("webhook"))
    namespace["handle"](sink.last.body, sink.last.headers)  # accepted: no exception


def test_a_redirect_is_not_followed(sink, make_provider, deliver, record):
    provider = make_provider(table(sink.url), env={"REGARD_WEBHOOK_SECRET": B64_SECRET})
    sink.script(Answer(308, headers={"Location": "http://crm.example.com/elsewhere"}))
    outcome = deliver(provider, record("webhook"))
    assert isinstance(outcome, Dead) and outcome.reason.startswith("HTTP 308")
    assert len(sink.requests) == 1


def test_a_gone_endpoint_says_what_to_fix(sink, make_provider, deliver, record):
    provider = make_provider(table(sink.url), env={"REGARD_WEBHOOK_SECRET": B64_SECRET})
    sink.script(Answer(410, "gone"))
    outcome = deliver(provider, record("webhook"))
    assert isinstance(outcome, Dead) and "HTTP 410" in outcome.reason  # the contract: dead
    assert outcome.pause and "410 Gone" in outcome.pause and "providers.svc.url" in outcome.pause
    sink.script(Answer(404, "no such path"))
    assert deliver(provider, record("webhook")).pause is None


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("", None),
        ('retry_schedule = "standard"', (5, 300, 1800, 7200, 18000, 36000, 36000)),
        ('retry_schedule = ["1m", "1h", "1d", "3d"]', (60, 3600, 86400, 259200)),
    ],
)
def test_the_retry_schedule(make_provider, setting, expected):
    provider = make_provider(
        table("https://crm.example.com/hook", setting), env={"REGARD_WEBHOOK_SECRET": B64_SECRET}
    )
    assert provider.retry_schedule() == expected


def test_a_bad_retry_schedule_is_a_config_error(make_provider):
    with pytest.raises(ConfigError) as caught:
        make_provider(
            table("https://crm.example.com/hook", 'retry_schedule = ["soon"]'),
            env={"REGARD_WEBHOOK_SECRET": B64_SECRET},
        )
    assert "providers.svc.retry_schedule" in str(caught.value)
