"""Voided events (a cancelled or refunded order): a tick at T sees an event only while
occurred_at ≤ T and (no voided_at or voided_at > T) — in plan, simulate and the report, and
in the derived facts; a pending delivery whose event is voided by dispatch is cancelled
with reason ``event_voided`` and never sent."""

from __future__ import annotations

import json

import pytest

from conftest import Workspace

THANKS = """\
name = "Danke"
channel = "email"
provider = "outbox"
template = "thanks"
{extra}
[trigger]
type = "post_purchase"
delay = "1d"
"""
TEMPLATE = """\
{% block subject %}Danke{% endblock %}
{% block text %}Danke, {{ contact | greeting }}!{% endblock %}
"""
CONTACTS = """\
id,first_name,last_name,email,consent_email
1,Jürgen,Müller,j@example.de,true
2,Käthe,Schäfer,k@example.de,true
3,Zoë,Brown,z@example.com,true
"""
# e1 is voided before its thank-you is due, e2 only after it, e3 never
EVENTS = """\
id,contact_id,type,occurred_at,amount,currency,voided_at
e1,1,order,2026-03-02T10:00:00,40,EUR,2026-03-02T18:00:00
e2,2,order,2026-03-02T11:00:00,25,EUR,2026-03-10T09:00:00
e3,3,order,2026-03-02T12:00:00,60,CHF,
"""


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    workspace.write("campaigns/thanks.toml", THANKS.format(extra=""))
    workspace.write("templates/thanks.j2", TEMPLATE)
    workspace.write("contacts.csv", CONTACTS)
    workspace.write("events.csv", EVENTS)
    for kind in ("contacts", "events"):
        result = workspace.cli("import", kind, str(workspace.root / f"{kind}.csv"))
        assert result.exit_code == 0, result.output
    return workspace


def test_plan_sees_an_event_only_while_it_is_not_voided(shop: Workspace) -> None:
    planned = shop.cli_json("plan", "--at", "2026-03-03T13:00:00")
    assert sorted(p["occasion"] for p in planned) == ["e2", "e3"]
    # before e1 was voided, its thank-you was due (a plan of the past is honest about it)
    early = shop.cli_json("plan", "--at", "2026-03-02T17:00:00")
    assert early == []  # not due yet (delay 1d) …
    shop.write("campaigns/thanks.toml", THANKS.format(extra="").replace('"1d"', '"1h"'))
    early = shop.cli_json("plan", "--at", "2026-03-02T17:00:00")
    assert sorted(p["occasion"] for p in early) == ["e1", "e2", "e3"]


def test_derived_facts_leave_voided_orders_out(shop: Workspace) -> None:
    # the stored facts are as of now, long after both voids
    assert [shop.cli_json("contacts", "show", c)["order_count"] for c in "123"] == [0, 0, 1]
    assert shop.cli_json("contacts", "show", "3")["total_spent"] == 60
    shop.write(
        "campaigns/thanks.toml",
        THANKS.format(extra="[audience]\norder_count = { min = 1 }\n").replace('"1d"', '"1h"'),
    )
    # as of T = 2026-03-02 17:00 all three had an order; at 19:00 e1 was voided
    early = shop.cli_json("plan", "--at", "2026-03-02T17:00:00")
    assert sorted(p["contact_id"] for p in early) == ["1", "2", "3"]
    later = shop.cli_json("plan", "--at", "2026-03-02T19:00:00")
    assert sorted(p["contact_id"] for p in later) == ["2", "3"]


def test_simulate_skips_the_voided_order(shop: Workspace) -> None:
    data = shop.cli_json("simulate", "--from", "2026-03-01", "--to", "2026-03-15")
    thanks = data["campaigns"]["thanks"]
    assert thanks["sent"] == 2  # e2 and e3; e1 was voided before its thank-you was due
    assert shop.cli_json("deliveries") == []


def test_report_counts_orders_as_of_its_end(shop: Workspace) -> None:
    march = shop.cli_json("report", "--since", "2026-03-01", "--until", "2026-03-31")
    # only e3 (60) is an order as of the end of March: e1 and e2 were voided by then
    assert march["retention"]["average_order_value"] == pytest.approx(60)
    early = shop.cli_json("report", "--since", "2026-03-01", "--until", "2026-03-05")
    # as of 5 March e2 (25) still stood
    assert early["retention"]["average_order_value"] == pytest.approx((25 + 60) / 2)


def test_a_pending_delivery_whose_order_is_voided_is_cancelled_at_dispatch(
    shop: Workspace,
) -> None:
    shop.write("campaigns/thanks.toml", THANKS.format(extra="") + "\n[window]\nhours = [9, 18]\n")
    shop.write(
        "late.csv",
        "id,contact_id,type,occurred_at,amount\ne9,3,order,2026-04-01T05:00:00,80\n",
    )
    assert shop.cli("import", "events", str(shop.root / "late.csv")).exit_code == 0
    # due 2 April 05:00; at 06:00 the window (9 to 18) is closed: it waits, pending
    assert shop.cli("run", "--at", "2026-04-02T06:00:00").exit_code == 0
    [waiting] = [d for d in shop.cli_json("deliveries") if d["occasion"] == "e9"]
    assert waiting["state"] == "pending"
    # the shop cancels the order at 07:00
    shop.write(
        "late.csv",
        "id,contact_id,type,occurred_at,amount,voided_at\n"
        "e9,3,order,2026-04-01T05:00:00,80,2026-04-02T07:00:00\n",
    )
    assert shop.cli("import", "events", str(shop.root / "late.csv")).exit_code == 0
    assert shop.cli("run", "--at", "2026-04-02T10:00:00").exit_code == 0
    [cancelled] = [d for d in shop.cli_json("deliveries") if d["occasion"] == "e9"]
    assert (cancelled["state"], cancelled["reason"]) == ("cancelled", "event_voided")
    assert cancelled["sent_at"] is None
    outbox = shop.root / "outbox" / "messages.jsonl"
    sent = [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.exists() else []
    assert "e9" not in [m["occasion"] for m in sent]
