"""Ticks on a real workspace: rendered messages stored at enqueue, caps across campaigns,
windows and daily limits, two ticks at once, and the plan and preview commands."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from conftest import SRC, Workspace, subprocess_env
from regard.engine import release_due, tick
from regard.store import Store, open_store
from regard.workspace import load_config
from shop_rows import add_contact, add_event, campaign, deliveries, epoch, instant

THANKS = """\
{% block subject %}Danke, {{ contact.first_name }}{% endblock %}
{% block text %}Danke für {{ event.amount | money }}, {{ contact.first_name }}!{% endblock %}
{% block card %}Liebe {{ contact.first_name }}, danke für Ihre Treue.{% endblock %}
"""
ADDRESS = {"street": "Lindenstraße 5", "postal_code": "10969", "city": "Berlin", "country": "DE"}


def shop(workspace: Workspace) -> Store:
    workspace.write("templates/thanks.j2", THANKS)
    store = open_store(workspace.store_target)
    with store.write() as conn:
        add_contact(conn, "anna", first_name="Anna", locale="de", timezone="Europe/Berlin",
                    **ADDRESS)  # fmt: skip
        add_event(conn, "o1", "anna", "2026-03-02T10:00:00Z", amount=49.9)
    return store


def stored(store: Store, campaign_id: str) -> dict[str, Any]:
    row = store.conn.execute(
        "SELECT * FROM deliveries WHERE campaign = ?", (campaign_id,)
    ).fetchone()
    return dict(row)


def test_pending_delivery_stores_the_rendered_message(workspace: Workspace) -> None:
    store = shop(workspace)
    config = load_config(workspace.config)
    thanks = campaign("thanks", {"type": "post_purchase", "delay": "1d"}, template="thanks")
    result = tick(store, config, [thanks], instant("2026-03-03T11:00:00Z"))
    assert [(d.decision, d.reason) for d in result.decisions] == [("pending", None)]
    row = stored(store, "thanks")
    assert row["state"] == "pending"
    assert row["id"] == result.decisions[0].delivery_id
    assert row["event_id"] == "o1"
    assert row["due_at"] == epoch("2026-03-03T10:00:00Z")
    assert row["not_before"] == row["created_at"] == epoch("2026-03-03T11:00:00Z")
    message = json.loads(row["message"])
    # a marketing e-mail: the link the template did not show is a footer, and a header
    url = message["headers"]["List-Unsubscribe"].strip("<>")
    assert url.startswith("http://127.0.0.1:8787/u/" + row["id"] + ".")
    assert message == {
        "to": "anna@example.com",
        "subject": "Danke, Anna",
        "text": f"Danke für 49,90 €, Anna!\n\nKeine Werbung mehr von Blumen Rosa GmbH? Hier abmelden: {url}",
        "html": None,
        "card": None,
        "headers": {
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }


def test_card_message_has_postal_address_and_card_details(workspace: Workspace) -> None:
    store = shop(workspace)
    config = load_config(workspace.config)
    cards = campaign("cards", {"type": "post_purchase"}, channel="card", template="thanks",
                     card={"design": "floral", "font": "hand-1"})  # fmt: skip
    tick(store, config, [cards], instant("2026-03-02T12:00:00Z"))
    message = json.loads(stored(store, "cards")["message"])
    assert message["to"] == {"name": "Anna", "company": "", **ADDRESS}
    assert message["text"] == "Liebe Anna, danke für Ihre Treue."
    assert message["card"]["design"] == "floral"
    assert message["card"]["font"] == "hand-1"
    assert message["card"]["sender"]["street"] == "Lindenstraße 5"


def test_render_error_is_skipped_with_the_error_never_half_a_message(workspace: Workspace) -> None:
    store = shop(workspace)
    workspace.write("templates/broken.j2", "{% block subject %}Hi{% endblock %}"
                    "{% block text %}{{ contact.nickname }}{% endblock %}")  # fmt: skip
    config = load_config(workspace.config)
    broken = campaign("broken", {"type": "post_purchase"}, template="broken")
    result = tick(store, config, [broken], instant("2026-03-02T12:00:00Z"))
    assert [(d.decision, d.reason) for d in result.decisions] == [("skipped", "render_error")]
    row = stored(store, "broken")
    assert row["message"] is None
    assert "nickname" in row["last_error"]


def test_contact_cap_counts_this_ticks_deliveries_in_priority_order(workspace: Workspace) -> None:
    workspace.write("regard.toml", workspace.config.read_text() + "\n[limits]\ncontact_max = 1\n")
    store = shop(workspace)
    config = load_config(workspace.config)
    low = campaign("a-low", {"type": "post_purchase"}, template="thanks", priority=0)
    high = campaign("z-high", {"type": "post_purchase"}, template="thanks", priority=5)
    result = tick(store, config, [low, high], instant("2026-03-02T12:00:00Z"))
    assert [(d.campaign, d.decision, d.reason) for d in result.decisions] == [
        ("z-high", "pending", None),
        ("a-low", "skipped", "capped"),
    ]


def test_once_per_contact_and_cooldown(workspace: Workspace) -> None:
    workspace.write("regard.toml", workspace.config.read_text() + "\n[limits]\ncontact_max = 0\n")
    store = shop(workspace)
    with store.write() as conn:
        add_event(conn, "o2", "anna", "2026-03-02T18:00:00Z", amount=20)
        add_event(conn, "o3", "anna", "2026-03-06T18:00:00Z", amount=20)
    config = load_config(workspace.config)
    once = campaign("once", {"type": "post_purchase"}, template="thanks", once_per_contact=True)
    cool = campaign("cool", {"type": "post_purchase"}, template="thanks", cooldown="3d")
    tick(store, config, [once, cool], instant("2026-03-02T20:00:00Z"))
    tick(store, config, [once, cool], instant("2026-03-06T20:00:00Z"))
    got = [(r["campaign"], r["occasion"], r["state"], r["reason"]) for r in deliveries(store.conn)]
    assert got == [
        ("cool", "o1", "pending", None),
        ("cool", "o2", "skipped", "capped"),  # within 3 days of o1's delivery
        ("cool", "o3", "pending", None),
        ("once", "o1", "pending", None),
        ("once", "o2", "skipped", "capped"),
        ("once", "o3", "skipped", "capped"),
    ]


def test_window_defers_to_the_next_opening_in_local_time(workspace: Workspace) -> None:
    store = shop(workspace)
    with store.write() as conn:
        conn.execute("UPDATE contacts SET timezone = 'America/New_York'")
    config = load_config(workspace.config)
    weekdays = campaign("weekdays", {"type": "post_purchase"}, template="thanks",
                        window={"days": ["mon", "tue", "wed", "thu", "fri"], "hours": [9, 18]})  # fmt: skip
    # Friday 2026-03-06 19:00 in New York (EST): next opening Monday 09:00, after the
    # change to summer time on Sunday 8 March: 13:00Z
    with store.write() as conn:
        add_event(conn, "o9", "anna", "2026-03-07T00:00:00Z", amount=10)
    tick(store, config, [weekdays], instant("2026-03-07T00:00:00Z"))
    assert stored(store, "weekdays")["not_before"] == epoch("2026-03-09T13:00:00Z")


def test_daily_limit_lets_the_best_customers_go_first(workspace: Workspace) -> None:
    workspace.write("templates/thanks.j2", THANKS)
    store = open_store(workspace.store_target)
    with store.write() as conn:
        for name, spent in (("low", 10.0), ("top", 900.0), ("mid", 300.0)):
            add_contact(conn, name, first_name=name, timezone="UTC", total_spent=spent)
            add_event(conn, f"o-{name}", name, "2026-03-02T10:00:00Z", amount=spent)
    config = load_config(workspace.config)
    limited = campaign("limited", {"type": "post_purchase"}, template="thanks", daily_limit=2)
    result = tick(store, config, [limited], instant("2026-03-02T12:00:00Z"))
    assert result.deferred == 1
    when = {r["contact_id"]: r["not_before"] for r in deliveries(store.conn)}
    assert when == {
        "top": epoch("2026-03-02T12:00:00Z"),
        "mid": epoch("2026-03-02T12:00:00Z"),
        "low": epoch("2026-03-03T00:00:00Z"),
    }
    # two sent today: nothing more today, and asking again changes nothing
    with store.write() as conn:
        conn.execute("UPDATE deliveries SET state = 'sent', sent_at = ? WHERE contact_id != 'low'",
                     (epoch("2026-03-02T12:00:00Z"),))  # fmt: skip
        assert release_due(store, config, [limited], epoch("2026-03-02T23:00:00Z")) == 0
        assert release_due(store, config, [limited], epoch("2026-03-03T00:00:00Z")) == 0


CONCURRENT = """
import sys
sys.path.insert(0, {tests!r})
from shop_rows import campaign, instant
from regard.workspace import load_config
from regard.engine import tick
from regard.store import open_store
config = load_config({config!r})
store = open_store(config.store_target)
thanks = campaign("thanks", {{"type": "post_purchase"}}, template="thanks")
sys.stdin.readline()  # both start together
result = tick(store, config, [thanks], instant("2026-03-02T12:00:00Z"))
print(len(result.decisions))
"""


@pytest.mark.slow
def test_two_ticks_at_once_record_each_occasion_once(workspace: Workspace) -> None:
    workspace.write("templates/thanks.j2", THANKS)
    store = open_store(workspace.store_target)
    with store.write() as conn:
        for i in range(300):
            add_contact(conn, f"c{i}", first_name="Eva")
            add_event(conn, f"o{i}", f"c{i}", "2026-03-02T10:00:00Z", amount=5)
    store.close()
    script = CONCURRENT.format(tests=str(SRC.parent / "tests"), config=str(workspace.config))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    counts = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert sorted(counts) == [0, 300]
    again = open_store(workspace.store_target)
    assert again.conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 300
    assert (
        again.conn.execute("SELECT count(DISTINCT delivery_id) FROM delivery_log").fetchone()[0]
        == 300
    )


def cli_shop(workspace: Workspace) -> None:
    workspace.write("templates/thanks.j2", THANKS)
    workspace.write("campaigns/thanks.toml", textwrap.dedent("""\
        channel = "email"
        provider = "outbox"
        template = "thanks"
        [trigger]
        type = "post_purchase"
        delay = "1d"
        [audience]
        country = "DE"
        """))  # fmt: skip
    store = open_store(workspace.store_target)
    with store.write() as conn:
        add_contact(conn, "anna", first_name="Anna", locale="de", **ADDRESS)
        add_contact(conn, "bob", first_name="Bob", country="AT")
        add_contact(conn, "carl", first_name="Carl", country="DE", consent_email=0)
        for name in ("anna", "bob", "carl"):
            add_event(conn, f"o-{name}", name, "2026-03-02T10:00:00Z", amount=49.9)
    store.close()


def test_plan_command_json_and_table(workspace: Workspace) -> None:
    cli_shop(workspace)
    planned = workspace.cli_json("plan", "--at", "2026-03-03T12:00:00Z")
    assert planned == [
        {
            "campaign": "thanks",
            "contact_id": "anna",
            "occasion": "o-anna",
            "due_at": "2026-03-03T10:00:00Z",
            "decision": "pending",
            "reason": None,
        },
        {
            "campaign": "thanks",
            "contact_id": "carl",
            "occasion": "o-carl",
            "due_at": "2026-03-03T10:00:00Z",
            "decision": "skipped",
            "reason": "no_consent",
        },
    ]
    table = workspace.cli("plan", "--at", "2026-03-03T12:00:00Z")
    assert table.exit_code == 0
    assert "anna" in table.output and "no_consent" in table.output
    assert workspace.cli_json("plan", "--at", "2026-03-01T12:00:00Z") == []
    unknown = workspace.cli("plan", "--campaign", "nope")
    assert unknown.exit_code == 1
    # nothing was written
    store = open_store(workspace.store_target)
    assert store.conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0


def test_preview_shows_the_message_or_why_not(workspace: Workspace) -> None:
    cli_shop(workspace)
    shown = workspace.cli("preview", "thanks", "anna", "--at", "2026-03-03T12:00:00Z")
    assert shown.exit_code == 0, shown.output
    assert "Subject: Danke, Anna" in shown.output
    assert "Danke für 49,90 €, Anna!" in shown.output
    answer = workspace.cli_json("preview", "thanks", "bob", "--at", "2026-03-03T12:00:00Z")
    assert answer["reason"] == "not_in_audience"
    answer = workspace.cli_json("preview", "thanks", "carl", "--at", "2026-03-03T12:00:00Z")
    assert (answer["decision"], answer["reason"]) == ("skipped", "no_consent")
    early = workspace.cli_json("preview", "thanks", "anna", "--at", "2026-03-02T12:00:00Z")
    assert early["reason"] == "not_due"
    assert early["due_at"] == "2026-03-03T10:00:00Z"
    told = workspace.cli("preview", "thanks", "anna", "--at", "2026-03-02T12:00:00Z").output
    hint = "regard preview thanks anna --at 2026-03-03T10:00:00Z --event o-anna"
    assert hint in told  # the next step, ready to copy
    followed = workspace.cli(*hint.split()[1:])
    assert followed.exit_code == 0 and "Subject: Danke, Anna" in followed.output
    late = workspace.cli_json("preview", "thanks", "anna", "--at", "2026-03-09T12:00:00Z")
    assert late["reason"] == "too_late"
    assert workspace.cli("preview", "nope", "anna").exit_code == 1
    assert workspace.cli("preview", "thanks", "nobody").exit_code == 1
    assert workspace.cli("preview", "thanks", "anna", "--event", "o-bob").exit_code == 1
    by_event = workspace.cli_json(
        "preview", "thanks", "anna", "--event", "o-anna", "--at", "2026-03-03T12:00:00Z"
    )
    assert (by_event["decision"], by_event["occasion"]) == ("pending", "o-anna")
    assert by_event["message"]["subject"] == "Danke, Anna"
    workspace.cli("run", "--at", "2026-03-03T12:00:00Z")
    decided = workspace.cli_json("preview", "thanks", "anna", "--at", "2026-03-04T12:00:00Z")
    assert decided["reason"] == "already_decided"


def test_preview_of_a_broken_template_is_exit_1_naming_the_file(workspace: Workspace) -> None:
    cli_shop(workspace)
    workspace.write("templates/thanks.j2", "{% block subject %}Hi{% endblock %}"
                    "{% block text %}{{ contact.nickname }}{% endblock %}")  # fmt: skip
    result = workspace.cli("preview", "thanks", "anna", "--at", "2026-03-03T12:00:00Z")
    assert result.exit_code == 1
    assert "thanks.j2" in result.stderr and "nickname" in result.stderr
