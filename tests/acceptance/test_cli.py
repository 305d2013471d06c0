"""SPEC "CLI": exit statuses, init, check, campaigns, preview, simulate, demo, contacts
unsubscribe/forget, status against a running daemon."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import regard_command, subprocess_env
from httpsink import Sink
from regard.cli import cli

from .conftest import Shop

AT = "2026-03-01T10:00:00Z"


@pytest.mark.parametrize(
    "args",
    [["no-such-command"], ["run", "--no-such-option"], ["preview", "thanks"],
     ["import", "contacts"], ["import", "orders", "x.csv"], ["run", "--at", "gestern"],
     ["simulate", "--from", "2026-03-01"], ["deliveries", "retry"]],
)  # fmt: skip
def test_usage_errors_exit_2(shop: Shop, args: list[str]) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    assert shop.cli(*args).exit_code == 2


def test_init_is_a_working_starter(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["init", str(tmp_path / "laden")])
    assert result.exit_code == 0, result.output
    config = tmp_path / "laden" / "regard.toml"
    assert config.exists()
    assert list((tmp_path / "laden" / "campaigns").glob("*.toml"))
    assert list((tmp_path / "laden" / "templates").glob("*.j2"))
    check = runner.invoke(cli, ["--config", str(config), "check"])
    assert check.exit_code == 0, check.output
    listed = json.loads(runner.invoke(cli, ["--config", str(config), "campaigns", "--json"]).stdout)
    assert len(listed) == len(list((tmp_path / "laden" / "campaigns").glob("*.toml")))


def test_check_names_the_broken_file(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    assert shop.cli("check").exit_code == 0
    shop.ws.write("campaigns/broken.toml", 'channel = "email"\nprovider = "outbox"\n')
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "broken.toml" in result.output
    assert "template" in result.output
    shop.ws.write(
        "campaigns/broken.toml",
        'channel = "fax"\nprovider = "outbox"\ntemplate = "note"\n[trigger]\ntype = "post_purchase"\n',
    )
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "channel" in result.output
    shop.ws.write(
        "campaigns/broken.toml",
        'channel = "email"\nprovider = "nowhere"\ntemplate = "note"\n[trigger]\ntype = "post_purchase"\n',
    )
    assert "nowhere" in shop.cli("check").output
    shop.ws.write(
        "campaigns/broken.toml",
        'channel = "email"\nprovider = "outbox"\ntemplate = "missing"\n[trigger]\ntype = "post_purchase"\n',
    )
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "missing" in result.output


def test_check_renders_against_sample_contacts(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}{{ event.amount | money }}{% endblock %}",
    )
    assert shop.cli("check").exit_code == 0
    shop.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}{{ event.amount | money }{% endblock %}",
    )
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "note.j2" in result.output


def test_campaigns_lists_trigger_channel_state_counts(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.campaign("paused", 'type = "inactivity"\nafter = "90d"\n', enabled=False, channel="sms")
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", AT)
    shop.tick(AT)
    listed = shop.cli("campaigns")
    assert listed.exit_code == 0
    for word in ("thanks", "paused", "post_purchase", "inactivity", "email", "sms"):
        assert word in listed.output
    assert not [d for d in shop.deliveries() if d["campaign"] == "paused"]


def test_disabled_campaign_is_not_run(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', enabled=False)
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", AT)
    assert shop.plan(AT) == []


def test_preview_the_message_or_why_not(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\ndelay = "1h"\n')
    shop.contacts({"id": "c1"}, {"id": "c2", "consent_email": False})
    shop.order("o1", "c1", AT)
    shop.order("o2", "c1", "2026-03-05T10:00:00Z")
    shop.order("o3", "c2", AT)
    shown = shop.cli("preview", "thanks", "c1", "--at", "2026-03-01T11:00:00Z")
    assert shown.exit_code == 0
    assert "Hallo Anna, danke! (o1)" in shown.output
    assert "c1@example.com" in shown.output
    event = shop.json("preview", "thanks", "c1", "--event", "o2", "--at", "2026-03-05T11:00:00Z")
    text, footer = event["message"]["text"].split("\n\n")
    assert text == "Hallo Anna, danke! (o2)"
    assert footer.startswith("Keine Werbung mehr von Blumen Rosa GmbH? Hier abmelden: http")
    refused = shop.json("preview", "thanks", "c2", "--at", "2026-03-01T11:00:00Z")
    assert (refused["decision"], refused["reason"], refused["message"]) == (
        "skipped",
        "no_consent",
        None,
    )
    early = shop.cli("preview", "thanks", "c2", "--at", "2026-03-01T10:30:00Z")
    assert early.exit_code == 0
    assert early.output.strip()
    # preview writes nothing
    assert shop.deliveries() == []


def test_contacts_forget_erases_personal_data(shop: Shop) -> None:
    shop.configure("[limits]\ncontact_max = 5\n")
    shop.campaign("mail", 'type = "post_purchase"\n')
    shop.campaign("card", 'type = "post_purchase"\n', channel="card")
    shop.campaign("later", 'type = "post_purchase"\ndelay = "1d"\n')
    secret = {"id": "c1", "email": "zelda.zwiebel@example.org", "first_name": "Zeldörte",
              "last_name": "Zwiebelmann", "street": "Geheimweg 77", "postal_code": "99999",
              "city": "Quedlinburg", "country": "DE", "phone": "+4915199988877",
              "lieblingsfarbe": "ultramarinviolett"}  # fmt: skip
    shop.contacts(secret, {"id": "c2", "first_name": "Bleibt"})
    shop.order("o1", "c1", AT)
    shop.order("o2", "c2", AT)
    shop.tick(AT)
    assert b"Zwiebelmann" in (shop.root / "outbox" / "messages.jsonl").read_bytes()
    result = shop.cli("contacts", "forget", "c1")
    assert result.exit_code == 0, result.output
    assert shop.cli("contacts", "show", "c1").exit_code == 1
    data = shop.db_bytes() + (shop.root / "outbox" / "messages.jsonl").read_bytes()
    for key in ("email", "first_name", "last_name", "street", "city", "phone", "lieblingsfarbe"):
        assert str(secret[key]).encode() not in data, key
    assert b"Bleibt" in data  # others are untouched
    assert [m["contact_id"] for m in shop.outbox()] == ["c2"]  # c2 has no postal address
    # only anonymous counts remain: the report still counts the sent messages
    report = shop.json("report", "--since", "2026-01-01", "--until", "2026-12-31")
    assert report["campaigns"]["mail"]["sent"] == 2
    # the pending one never goes out
    shop.tick("2026-03-02T10:00:00Z")
    assert [m["contact_id"] for m in shop.outbox()].count("c1") == 0


def test_simulate_sends_nothing_and_changes_nothing(shop: Shop, sink: Sink) -> None:
    shop.configure(
        f'[providers.hooks]\ntype = "webhook"\nurl = "{sink.url}/x"\nsecret = "k"\ncost = 1.5\n'
    )
    shop.campaign("hook", 'type = "post_purchase"\n', channel="webhook", provider="hooks")
    shop.campaign(
        "mail", 'type = "post_purchase"\n', body="[audience]\norder_count = { min = 2 }\n"
    )
    shop.contacts({"id": "c1"}, {"id": "c2"}, {"id": "c3", "consent_email": False})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.order("o2", "c2", "2026-03-02T10:00:00Z")
    shop.order("o3", "c3", "2026-03-02T11:00:00Z")
    shop.order("o4", "c3", "2026-03-03T11:00:00Z")
    before = [shop.json("contacts", "show", c) for c in ("c1", "c2", "c3")]
    result = shop.json("simulate", "--from", "2026-03-01", "--to", "2026-03-05", "--every", "12h")
    text = json.dumps(result)
    assert "hook" in text and "mail" in text
    hook = result["campaigns"]["hook"]
    assert hook["sent"] == 4
    assert hook["cost"] == pytest.approx(6.0)
    # c3's two orders: in the audience (two orders) from the tick that sees the second one
    assert result["campaigns"]["mail"]["skipped"] == {"no_consent": 2}
    assert sink.requests == []
    assert shop.outbox() == []
    assert shop.deliveries() == []
    assert [shop.json("contacts", "show", c) for c in ("c1", "c2", "c3")] == before
    human = shop.cli("simulate", "--from", "2026-03-01", "--to", "2026-03-05")
    assert human.exit_code == 0
    assert "no_consent" in human.output


def test_demo_shows_the_whole_loop(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = subprocess.run(
        [*regard_command("demo", str(folder), "--customers", "60", "--days", "20")],
        capture_output=True, text=True, timeout=600, env=subprocess_env(), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outbox = folder / "outbox" / "messages.jsonl"
    assert outbox.exists()
    assert outbox.read_text(encoding="utf-8").strip()
    assert (folder / "regard.toml").exists()
    report = CliRunner().invoke(cli, ["--config", str(folder / "regard.toml"), "report", "--json"])
    assert report.exit_code == 0
    assert json.loads(report.stdout)["campaigns"]


def wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_status_follows_the_daemon(shop: Shop) -> None:
    shop.configure('[scheduler]\ninterval = "1s"\n')
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    daemon = subprocess.Popen(
        [*regard_command("--config", str(shop.ws.config), "daemon")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(),
        cwd=shop.root,
    )  # fmt: skip
    try:
        wait_for(lambda: len(shop.outbox()) == 1)
        status = shop.cli("status")
        assert status.exit_code == 0, status.output
        document = shop.json("status")
        assert document
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert (out + err).strip()  # one line per tick
    time.sleep(4.5)  # more than three intervals without a tick (times are whole seconds)
    stale = shop.cli("status", "--json")
    assert stale.exit_code == 1, stale.output


@pytest.mark.sqlite_only  # reads the store's files (on PostgreSQL: tests/test_migrate_store.py)
def test_simulate_leaves_the_store_file_alone(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.ok("deliveries")  # the store exists and is settled
    before = {p.name: p.read_bytes() for p in shop.root.glob("regard.db*")}
    shop.ok("simulate", "--from", "2026-02-25", "--to", "2026-03-05")
    shop.ok("plan", "--at", "2026-03-01T10:00:00Z")
    after = {p.name: p.read_bytes() for p in shop.root.glob("regard.db*")}
    assert after["regard.db"] == before["regard.db"]
    assert after.get("regard.db-wal", b"") == before.get("regard.db-wal", b"")
    assert shop.deliveries() == []


def test_check_covers_every_locale_file(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    assert shop.cli("check").exit_code == 0
    shop.ws.write(
        "templates/note.fr.j2",
        "{% block subject %}x{% endblock %}{% block text %}{{ x }{% endblock %}",
    )
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "note.fr.j2" in result.output
