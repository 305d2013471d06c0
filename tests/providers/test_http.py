"""What every HTTP adapter shares, over real sockets: a refused connection and Retry-After
become Retry; a timeout or a reset after the request was sent is an unknown outcome, whose
fate is what the service offers (webhook receivers de-duplicate: Retry; Postmark and Twilio
can be asked: Unknown, asked next time; Handwrytten neither: Unconfirmed); plain http:// to a
remote host is a config error; secrets appear in no reason and no log line."""

from __future__ import annotations

import email.utils
import logging
import time

import pytest

from httpsink import Answer
from regard.errors import ConfigError
from regard.providers import Dead, Retry, Unconfirmed, Unknown
from regard.providers.http import check_url

SECRET = "tok_8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a"

ADAPTERS = {
    "webhook": ("webhook", 'url = "{url}/hook"\nsecret = "${{SECRET}}"'),
    "postmark": ("email", 'server_token = "${{SECRET}}"\nbase_url = "{url}"'),
    "twilio": (
        "sms",
        'account_sid = "AC3f9b2c1d4e5f60718293a4b5c6d7e8f9"\nauth_token = "${{SECRET}}"\n'
        'from = "+15005550006"\nbase_url = "{url}"',
    ),
    "handwrytten": (
        "card",
        'api_key = "${{SECRET}}"\nbase_url = "{url}"\ncard_id = 1\nfont = "Casual David"',
    ),
}


# what a timeout after sending becomes, by what the service offers
AFTER_SENDING = {
    "webhook": Retry,
    "postmark": Unknown,
    "twilio": Unknown,
    "handwrytten": Unconfirmed,
}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request, make_provider, sink):
    kind = request.param
    channel, keys = ADAPTERS[kind]

    def make(url: str):
        table = f'type = "{kind}"\n' + keys.format(url=url) + "\n"
        if kind == "handwrytten" and url == sink.url:
            # before its first order of a run it reads the account's mode and the countries
            sink.script(
                Answer(200, {"httpCode": 200, "status": "ok", "test_mode": 0}),
                Answer(200, {"httpCode": 200, "status": "OK", "countries": [
                    {"id": 81, "name": "Germany", "aliases": "DE", "states": []}]}),
            )  # fmt: skip
        return make_provider(table, env={"SECRET": SECRET})

    make.kind = kind  # type: ignore[attr-defined]
    return channel, make


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_secret_kept(outcome, logs):
    assert SECRET not in outcome.reason
    assert SECRET not in logs.text


def test_a_timeout_after_sending_is_an_unknown_outcome(sink, adapter, deliver, record, logs):
    channel, make = adapter
    provider = make(sink.url)
    sink.script(Answer(200, {}, delay=1.0))
    outcome = deliver(provider, record(channel), timeout=0.2)
    assert type(outcome) is AFTER_SENDING[make.kind]
    assert "timeout after sending" in outcome.reason
    assert_secret_kept(outcome, logs)


def test_a_refused_connection_is_retried(closed_port, adapter, deliver, record, logs):
    channel, make = adapter
    outcome = deliver(make(f"http://127.0.0.1:{closed_port}"), record(channel))
    assert isinstance(outcome, Retry) and "connection error" in outcome.reason
    assert_secret_kept(outcome, logs)


def test_a_reset_after_sending_is_an_unknown_outcome(sink, adapter, deliver, record, logs):
    channel, make = adapter
    provider = make(sink.url)
    sink.script(Answer(reset=True))
    outcome = deliver(provider, record(channel))
    assert type(outcome) is AFTER_SENDING[make.kind]
    assert "connection lost after sending" in outcome.reason
    assert_secret_kept(outcome, logs)


def test_retry_after_in_seconds(sink, adapter, deliver, record, logs):
    channel, make = adapter
    provider = make(sink.url)
    sink.script(Answer(429, {"message": f"slow down, {SECRET}"}, {"Retry-After": "7"}))
    outcome = deliver(provider, record(channel))
    assert isinstance(outcome, Retry) and outcome.retry_after == 7.0
    assert "HTTP 429" in outcome.reason
    assert_secret_kept(outcome, logs)


def test_retry_after_as_http_date(sink, adapter, deliver, record, logs):
    channel, make = adapter
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    provider = make(sink.url)
    if make.kind == "handwrytten":  # a 5xx may follow a placed order: ask before the order
        sink._script.popleft()
    sink.script(Answer(503, "maintenance", {"Retry-After": when}))
    outcome = deliver(provider, record(channel))
    assert isinstance(outcome, Retry)
    # an instant: dispatch measures it from the run's T (under --at too), not from now
    assert outcome.retry_after is None
    assert outcome.retry_at is not None and 115 <= outcome.retry_at - time.time() <= 121
    assert_secret_kept(outcome, logs)


def test_plain_http_to_a_remote_host_is_refused(adapter):
    _, make = adapter
    with pytest.raises(ConfigError) as caught:
        make("http://api.example.com")
    message = str(caught.value)
    assert "regard.toml:" in message and "providers.svc." in message
    assert "'http://api.example.com" in message and "use https://" in message
    assert SECRET not in message


def test_loopback_http_and_https_are_accepted(adapter):
    _, make = adapter
    make("http://127.0.0.1:8025")
    make("https://api.example.com")


@pytest.mark.parametrize(
    ("kind", "to"), [("postmark", None), ("twilio", ""), ("twilio", {"city": "x"})]
)
def test_a_record_without_an_address_is_dead_without_a_request(
    sink, make_provider, deliver, record, kind, to
):
    channel, keys = ADAPTERS[kind]
    provider = make_provider(
        f'type = "{kind}"\n' + keys.format(url=sink.url), env={"SECRET": SECRET}
    )
    outcome = deliver(provider, record(channel, to=to))
    assert isinstance(outcome, Dead) and "is not" in outcome.reason
    assert sink.requests == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.example.com/x", True),
        ("http://127.0.0.1:8080/x", True),
        ("http://127.5.6.7/x", True),
        ("http://localhost/x", True),
        ("http://LOCALHOST:1/x", True),
        ("http://[::1]:8080/x", True),
        ("http://127.0.0.1.nip.io/x", False),  # a DNS name, resolvable to anywhere
        ("http://127.evil.example/x", False),
        ("http://localhost.evil.example/x", False),
        ("http://10.0.0.1/x", False),
        ("http://[::ffff:8.8.8.8]/x", False),
        ("https:///no-host", False),
        ("ftp://127.0.0.1/x", False),
        ("127.0.0.1:8080", False),
    ],
)
def test_check_url(url, allowed):
    if allowed:
        assert check_url(url) == url
    else:
        with pytest.raises(ValueError):
            check_url(url)
