"""``regard run`` end to end: contacts and orders imported, a campaign evaluated by the
engine, its deliveries dispatched to the file provider; windows; broken campaigns."""

from __future__ import annotations

import json
from typing import Any

import pytest

THANKS = """\
channel = "email"
provider = "outbox"
template = "thanks"
max_lateness = "30d"

[trigger]
type = "post_purchase"
delay = "1d"
"""
TEMPLATE = """\
{% block subject %}Danke, {{ contact.first_name }}{% endblock %}
{% block text %}{{ contact | greeting }}, danke für Ihre Bestellung.{% endblock %}
"""


@pytest.fixture
def shop(workspace: Any) -> Any:
    workspace.write("campaigns/thanks.toml", THANKS)
    workspace.write("templates/thanks.j2", TEMPLATE)
    workspace.write(
        "contacts.csv",
        "id,email,first_name,consent_email\n"
        "anna,anna@example.org,Anna,yes\n"
        "jörg,joerg@example.org,Jörg,yes\n"
        "nope,nope@example.org,Nope,no\n",
    )
    workspace.write(
        "events.csv",
        "id,contact_id,type,occurred_at,amount\n"
        "o1,anna,order,2026-03-02T10:00:00,49.90\n"
        "o2,jörg,order,2026-03-02T11:00:00,19.00\n"
        "o3,nope,order,2026-03-02T12:00:00,5.00\n",
    )
    for kind in ("contacts", "events"):
        result = workspace.cli("import", kind, str(workspace.root / f"{kind}.csv"))
        assert result.exit_code == 0, result.output
    return workspace


def test_run_ticks_then_sends_each_occasion_once(shop: Any) -> None:
    summary = shop.cli_json("run", "--at", "2026-03-03T12:00:00")
    assert summary["enqueued"] == {"pending": 2, "held_out": 0, "skipped": 1}
    assert (summary["sent"], summary["failed"]) == (2, 0)
    records = {r["contact_id"]: r for r in shop.outbox()}
    assert set(records) == {"anna", "jörg"}
    assert records["jörg"]["subject"] == "Danke, Jörg"
    assert records["anna"]["to"] == "anna@example.org"
    again = shop.cli_json("run", "--at", "2026-03-03T13:00:00")
    assert again["enqueued"] == {"pending": 0, "held_out": 0, "skipped": 0}
    assert again["sent"] == 0
    assert len(shop.outbox()) == 2
    states = {r["contact_id"]: (r["state"], r["reason"]) for r in shop.cli_json("deliveries")}
    assert states == {
        "anna": ("sent", None),
        "jörg": ("sent", None),
        "nope": ("skipped", "no_consent"),
    }


def test_run_dry_run_shows_decisions_and_writes_nothing(shop: Any) -> None:
    summary = shop.cli_json("run", "--dry-run", "--at", "2026-03-03T12:00:00")
    assert sorted((d["contact_id"], d["decision"]) for d in summary["decisions"]) == [
        ("anna", "pending"),
        ("jörg", "pending"),
        ("nope", "skipped"),
    ]
    assert sorted(d["contact_id"] for d in summary["would_dispatch"]) == ["anna", "jörg"]
    assert shop.cli_json("deliveries") == []
    assert shop.outbox() == []
    human = shop.cli("run", "--dry-run", "--at", "2026-03-03T12:00:00")
    assert "would dispatch 2 deliveries" in human.stdout


def test_a_delivery_outside_its_window_waits_for_the_next_opening(shop: Any) -> None:
    shop.write("campaigns/thanks.toml", THANKS + "\n[window]\nhours = [9, 18]\n")
    late = shop.cli("run", "--at", "2026-03-03T20:00:00")  # Berlin time
    assert "0 sent" in late.stdout
    assert "2 pending for later" in late.stdout
    waiting = shop.cli_json("deliveries", "--state", "pending")
    assert {r["next_attempt_at"] for r in waiting} == {"2026-03-04T08:00:00Z"}  # 9:00 in Berlin
    assert shop.cli_json("run", "--at", "2026-03-04T08:59:00")["sent"] == 0
    assert shop.cli_json("run", "--at", "2026-03-04T09:00:00")["sent"] == 2


def test_a_broken_campaign_is_reported_and_the_others_still_run(shop: Any) -> None:
    shop.write("campaigns/broken.toml", 'channel = "email"\nprovider = "outbox"\ntemplat = "x"\n')
    result = shop.cli("run", "--at", "2026-03-03T12:00:00", "--json")
    assert result.exit_code == 1
    assert "broken.toml" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["sent"] == 2
    assert any("broken.toml" in e for e in summary["campaign_errors"])
