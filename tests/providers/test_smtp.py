"""The smtp adapter against a real SMTP server on 127.0.0.1 (aiosmtpd): the message as a
mail client parses it back, how each reply is read, TLS with a self-signed certificate
the config trusts, one connection reused, and `regard run` end to end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from regard.config import Sender
from regard.errors import ConfigError
from regard.providers import Dead, Outcome, Paused, Provider, Retry, Sent, Unconfirmed, Unknown
from smtpsink import SmtpSink, self_signed, server_context

# asyncio may collect a closed TLS connection's transport only after a test has ended (the
# sink's side, on its own loop): an unraisable ResourceWarning then, not a failure
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

DELIVERY_ID = "d_3f2a9c1e5b7d4f6a8c0e2b4d6f8a1c3e"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


def plain(port: int, extra: str = "") -> str:
    return f'type = "smtp"\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n{extra}'


def attempts(provider: Provider, records: list[dict[str, Any]], **kw: Any) -> list[Outcome]:
    """Attempts as dispatch makes them: concurrently, through one adapter, then aclose."""

    async def go() -> list[Outcome]:
        async with httpx.AsyncClient() as client:
            try:
                return list(
                    await asyncio.gather(
                        *(provider.attempt(r, client, **kw) for r in records)  # type: ignore[arg-type]
                    )
                )
            finally:
                await provider.aclose()

    return asyncio.run(go())


def test_the_message_parses_back_with_its_parts_encodings_and_headers(
    smtp_sink, make_provider, record
):
    provider = make_provider(plain(smtp_sink.port, 'from = "Jürgen Müller <hallo@blumen-rosa.de>"'))
    mail = record(
        "email",
        subject="Grüße aus München – Ihr Gutschein",
        headers={
            "List-Unsubscribe": "<https://regard.blumen-rosa.de/u/tok123>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    [outcome] = attempts(provider, [mail])

    assert outcome == Sent(f"<{DELIVERY_ID}@blumen-rosa.de>")
    [got] = smtp_sink.mails
    assert got.mail_from == "hallo@blumen-rosa.de"
    assert got.rcpt_tos == ["erika.mustermann@example.de"]
    raw = got.data.decode("ascii")  # nothing but ASCII on the wire: RFC 2047 and QP
    assert "Subject: =?utf-8?" in raw and "From: =?utf-8?" in raw
    message = got.parsed()
    assert message["Subject"] == "Grüße aus München – Ihr Gutschein"
    assert message["From"].addresses[0].display_name == "Jürgen Müller"
    assert message["From"].addresses[0].addr_spec == "hallo@blumen-rosa.de"
    assert message["To"] == "erika.mustermann@example.de"
    assert message["Message-ID"] == f"<{DELIVERY_ID}@blumen-rosa.de>"
    assert message["Date"].datetime is not None
    assert message["List-Unsubscribe"] == "<https://regard.blumen-rosa.de/u/tok123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert (
        text["Content-Transfer-Encoding"] == html["Content-Transfer-Encoding"] == "quoted-printable"
    )
    assert text.get_content_charset() == "utf-8"
    assert text.get_content().strip() == "Hallo Erika, danke für Ihre erste Bestellung!"
    assert html.get_content().strip() == "<p>Hallo Erika, danke für Ihre erste Bestellung!</p>"


def test_a_text_only_mail_is_one_part_and_the_message_id_is_the_same_on_each_attempt(
    smtp_sink, make_provider, record
):
    provider = make_provider(plain(smtp_sink.port))
    attempts(provider, [record("email", html=None)])
    attempts(provider, [record("email", html=None)])
    first, second = (m.parsed() for m in smtp_sink.mails)
    assert first.get_content_type() == "text/plain"
    assert first["Message-ID"] == second["Message-ID"] == f"<{DELIVERY_ID}@blumen-rosa.de>"
    assert first["From"] == "Blumen Rosa GmbH <hallo@blumen-rosa.de>"  # from [sender]
    assert first["Reply-To"] is None


def test_the_wire_bytes_mean_what_the_email_package_would_write(make_provider, record):
    from email import message_from_bytes, policy

    provider = make_provider(plain(25))
    long_line = "Lieber Jürgen, " + "wir freuen uns sehr über Ihre Treue und Ihre Bestellung. " * 4
    mail = record(
        "email",
        subject="Ihr persönlicher Gutschein über 10 € – nur für treue Kundinnen und Kunden in München",
        text=f"{long_line}\n.Punkt am Anfang\nLeerzeichen am Ende   \n\nGrüße",
        html=f"<p>{long_line}</p>\n<p>=_regard_ und = Zeichen</p>",
        headers={"List-Unsubscribe": "<https://regard.blumen-rosa.de/u/" + "t" * 200 + ">"},
    )
    fast = message_from_bytes(provider.message_bytes(mail), policy=policy.default)
    slow = message_from_bytes(
        provider.message(mail).as_bytes(policy=policy.SMTP), policy=policy.default
    )
    names = ("From", "To", "Subject", "Message-ID", "List-Unsubscribe", "MIME-Version")
    assert [str(fast[n]) for n in names] == [str(slow[n]) for n in names]
    assert fast["Subject"] == mail["subject"]
    assert [p.get_content_type() for p in fast.walk()] == [
        p.get_content_type() for p in slow.walk()
    ]
    fast_parts = [p.get_content() for p in fast.iter_parts()]
    assert fast_parts == [p.get_content() for p in slow.iter_parts()]
    assert fast_parts[0].replace("\r\n", "\n") == mail["text"] + "\n"
    assert max(len(line) for line in provider.message_bytes(mail).split(b"\r\n")) <= 998


def test_an_address_that_is_not_ascii_goes_with_smtputf8(make_provider, record):
    sink = SmtpSink(smtputf8=True).start()
    try:
        [outcome] = attempts(
            make_provider(plain(sink.port)), [record("email", to="jürgen@example.de")]
        )
        assert isinstance(outcome, Sent)
        [mail] = sink.mails
        assert mail.rcpt_tos == ["jürgen@example.de"]
        assert mail.parsed()["To"] == "jürgen@example.de"
    finally:
        sink.stop()


def test_reply_to_comes_from_the_sender(smtp_sink, make_provider, record, workspace):
    if "reply_to" not in Sender.model_fields:
        pytest.skip("[sender] has no reply_to in this build")
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(
        text.replace(
            'email = "hallo@blumen-rosa.de"\n',
            'email = "hallo@blumen-rosa.de"\nreply_to = "service@blumen-rosa.de"\n',
            1,
        ),
        encoding="utf-8",
    )
    attempts(make_provider(plain(smtp_sink.port)), [record("email")])
    assert smtp_sink.mails[0].parsed()["Reply-To"] == "service@blumen-rosa.de"


def test_replies_are_classified(smtp_sink, make_provider, record):
    provider = make_provider(plain(smtp_sink.port))
    busy, unknown, ok = attempts(
        provider,
        [
            record("email", to="busy@example.de"),
            record("email", to="unknown@example.de", delivery_id="d_2"),
            record("email", to="ok@example.de", delivery_id="d_3"),
        ],
    )
    assert isinstance(busy, Retry) and busy.reason.startswith("SMTP 421 to the end of the message")
    assert isinstance(unknown, Dead) and unknown.unsubscribe == "unknown@example.de"
    assert "SMTP 550 to RCPT TO: 5.1.1" in unknown.reason
    assert ok == Sent("<d_3@blumen-rosa.de>")
    assert [m.rcpt_tos for m in smtp_sink.mails] == [["ok@example.de"]]


def test_a_dropped_connection_after_the_message_is_unknown_never_sent_again(
    smtp_sink, make_provider, record
):
    provider = make_provider(plain(smtp_sink.port))
    [outcome] = attempts(provider, [record("email", to="drop@example.de")])
    assert isinstance(outcome, Unconfirmed) and "no reply to the message" in outcome.reason
    # a later attempt of the same delivery, known uncertain, sends nothing
    [again] = attempts(provider, [record("email", to="drop@example.de")], uncertain=True)
    assert isinstance(again, Unconfirmed)
    assert len(smtp_sink.mails) == 1

    resend = make_provider(plain(smtp_sink.port, 'on_unknown = "resend"'), name="resend")
    [first] = attempts(resend, [record("email", to="drop@example.de")])
    assert isinstance(first, Retry) and 'on_unknown = "resend"' in first.reason
    [second] = attempts(resend, [record("email", to="drop@example.de")], uncertain=True)
    assert isinstance(second, Retry)  # sent again, as the user chose
    assert len(smtp_sink.mails) == 3


def test_send_never_answers_unknown_to_a_caller_that_would_retry(smtp_sink, make_provider, record):
    provider = make_provider(plain(smtp_sink.port))

    async def go() -> Outcome:
        async with httpx.AsyncClient() as client:
            try:
                return await provider.send(record("email", to="drop@example.de"), client)  # type: ignore[arg-type]
            finally:
                await provider.aclose()

    assert isinstance(asyncio.run(go()), Unknown)


def test_nothing_listening_is_retried(make_provider, record, closed_port):
    [outcome] = attempts(make_provider(plain(closed_port)), [record("email")])
    assert isinstance(outcome, Retry) and "cannot connect" in outcome.reason


def test_one_connection_serves_a_batch_and_concurrency_bounds_them(
    smtp_sink, make_provider, record, workspace
):
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(text + "\n[delivery]\nconcurrency = 3\n", encoding="utf-8")
    provider = make_provider(plain(smtp_sink.port))
    records = [record("email", to=f"k{i}@example.de", delivery_id=f"d_{i}") for i in range(30)]
    outcomes = attempts(provider, records)
    assert all(isinstance(o, Sent) for o in outcomes)
    assert len(smtp_sink.mails) == 30
    assert 1 <= smtp_sink.connections <= 3


def test_starttls_with_a_self_signed_certificate_the_config_trusts(
    certificate, make_provider, record, workspace
):
    cert, key = certificate
    sink = SmtpSink(tls=server_context(cert, key), login=("shop", "s3cret")).start()
    try:
        table = (
            f'type = "smtp"\nhost = "127.0.0.1"\nport = {sink.port}\ntls = "starttls"\n'
            f'username = "shop"\npassword = "${{SMTP_PASSWORD}}"\n'
        )
        trusted = make_provider(table + f'ca_file = "{cert}"\n', env={"SMTP_PASSWORD": "s3cret"})
        [outcome] = attempts(trusted, [record("email")])
        assert isinstance(outcome, Sent)
        assert len(sink.mails) == 1

        untrusted = make_provider(table, name="untrusted")
        [refused] = attempts(untrusted, [record("email")])
        assert isinstance(refused, Paused) and "not trusted" in refused.reason

        wrong = make_provider(
            table + f'ca_file = "{cert}"\n', env={"SMTP_PASSWORD": "wrong"}, name="wrong"
        )
        [denied] = attempts(wrong, [record("email")])
        assert isinstance(denied, Paused) and "refuses the login 'shop'" in denied.reason
        assert "wrong" not in denied.reason and "s3cret" not in denied.reason
        assert len(sink.mails) == 1
    finally:
        sink.stop()


def test_implicit_tls(certificate, make_provider, record):
    cert, key = certificate
    sink = SmtpSink(implicit_tls=server_context(cert, key)).start()
    try:
        table = (
            f'type = "smtp"\nhost = "127.0.0.1"\nport = {sink.port}\ntls = "implicit"\n'
            f'ca_file = "{cert}"\n'
        )
        [outcome] = attempts(make_provider(table), [record("email")])
        assert isinstance(outcome, Sent) and len(sink.mails) == 1
    finally:
        sink.stop()


def test_plain_smtp_only_to_loopback(make_provider):
    with pytest.raises(ConfigError, match="only to a loopback host"):
        make_provider('type = "smtp"\nhost = "mail.example.de"\ntls = "none"\n')
    with pytest.raises(ConfigError, match="username"):
        make_provider('type = "smtp"\nhost = "mail.example.de"\nusername = "shop"\n', name="half")


CAMPAIGN = """\
channel = "email"
provider = "mail"
template = "danke"

[trigger]
type = "post_purchase"
delay = "1h"
"""


def run_setup(workspace, port: int, email: str, extra: str = "") -> None:
    config = workspace.config.read_text(encoding="utf-8")
    workspace.write(
        "regard.toml",
        config + f"\n[limits]\ncontact_max = 0\n\n[providers.mail]\n{plain(port, extra)}",
    )
    workspace.write("campaigns/danke.toml", CAMPAIGN)
    workspace.write(
        "templates/danke.j2",
        "{% block subject %}Danke, {{ contact.first_name }}!{% endblock %}"
        "{% block text %}{{ contact | greeting }}, danke für Ihre Bestellung.{% endblock %}"
        "{% block html %}<p>{{ contact | greeting }}, danke!</p>{% endblock %}",
    )
    contacts = workspace.write(
        "contacts.csv",
        f"id,email,first_name,last_name,consent_email\nc1,{email},Jürgen,Müller,yes\n",
    )
    events = workspace.write(
        "events.csv",
        "id,contact_id,type,occurred_at,amount\no1,c1,order,2026-05-20T10:00:00,49.90\n",
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0


def test_regard_run_sends_through_smtp(workspace, smtp_sink):
    run_setup(workspace, smtp_sink.port, "juergen@example.de")
    result = workspace.cli("run", "--at", "2026-05-20T12:00:00")
    assert result.exit_code == 0, result.output + result.stderr
    [row] = workspace.cli_json("deliveries")
    assert row["state"] == "sent"
    [mail] = smtp_sink.mails
    assert mail.parsed()["Subject"] == "Danke, Jürgen!"
    assert mail.parsed()["Message-ID"] == f"<{row['delivery_id']}@blumen-rosa.de>"


def test_regard_run_a_bounce_suppresses_the_address(workspace, smtp_sink):
    run_setup(workspace, smtp_sink.port, "unknown@example.de")
    result = workspace.cli("run", "--at", "2026-05-20T12:00:00")
    assert result.exit_code == 3
    [row] = workspace.cli_json("deliveries")
    assert row["state"] == "dead" and "SMTP 550" in row["reason"]
    shown = workspace.cli("contacts", "show", "c1").stdout
    # suppressed for the contact's e-mail (listed as unsubscribed, or bounced where the
    # store tells the two apart)
    assert "  email: provider mail: SMTP 550 to RCPT TO: 5.1.1" in shown


def test_regard_run_a_drop_after_the_message_leaves_it_unconfirmed(workspace, smtp_sink):
    run_setup(workspace, smtp_sink.port, "drop@example.de")
    workspace.cli("run", "--at", "2026-05-20T12:00:00")
    [row] = workspace.cli_json("deliveries")
    assert row["state"] == "unconfirmed"
    # later runs never send it again by themselves
    workspace.cli("run", "--at", "2026-05-21T12:00:00")
    assert workspace.cli_json("deliveries")[0]["state"] == "unconfirmed"
    assert len(smtp_sink.mails) == 1


def test_regard_run_with_on_unknown_resend_sends_it_again(workspace, smtp_sink):
    run_setup(workspace, smtp_sink.port, "drop@example.de", 'on_unknown = "resend"')
    workspace.cli("run", "--at", "2026-05-20T12:00:00")
    [row] = workspace.cli_json("deliveries")
    assert row["state"] == "pending"
    workspace.cli("run", "--at", "2026-05-20T13:00:00")
    assert len(smtp_sink.mails) == 2
