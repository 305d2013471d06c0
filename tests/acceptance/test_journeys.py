"""SPEC Part 2 "Journeys: follow-ups and exits", through the CLI: a three-step chain
(win-back e-mail → 7 days → reminder e-mail → 14 days → card) over a quarter of daily
runs, and the exact deliveries each contact ends up with."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from .conftest import Shop

ADDRESS = {"street": "Lindenstraße 5", "postal_code": "10969", "city": "Berlin", "country": "DE"}


def chain(shop: Shop) -> None:
    shop.campaign(
        "winback",
        'type = "inactivity"\nafter = "30d"\n',
        '[goal]\nevent = "order"\nwithin = "30d"\n',
        holdout=0.2,
        once_per_contact=True,
    )
    shop.campaign(
        "winback-reminder",
        'type = "followup"\ncampaign = "winback"\ndelay = "7d"\n',
        '[exit]\nevent = "order"\n',
    )
    shop.campaign(
        "winback-card",
        'type = "followup"\ncampaign = "winback-reminder"\ndelay = "14d"\n',
        '[exit]\nevent = "order"\n\n[window]\ndays = ["mon"]\n',
        channel="card",
    )


def quarter(shop: Shop) -> None:
    """Daily runs at 12:00 in Berlin from 1 January to 31 March 2026."""
    day = datetime(2026, 1, 1, 11, tzinfo=UTC)
    while day <= datetime(2026, 3, 31, 11, tzinfo=UTC):
        shop.tick(day.strftime("%Y-%m-%dT%H:%M:%SZ"))
        day += timedelta(days=1)


def by_contact(rows: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """Each contact's deliveries in the order they were decided."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for r in sorted(rows, key=lambda r: (r["created_at"], r["campaign"])):
        out.setdefault(r["contact_id"], []).append(
            (r["campaign"], r["state"], r["reason"], r["sent_at"])
        )
    return dict(sorted(out.items()))


def test_a_three_step_chain_over_a_quarter(shop: Shop) -> None:
    chain(shop)
    names = ["anna", "bernd", "clara", "dora", "emil"]
    shop.contacts(*({"id": n, **ADDRESS} for n in names))
    # everyone's last order: 10 December; the win-back is due on 9 January
    shop.events(*({"id": f"{n}-o1", "contact_id": n, "occurred_at": "2025-12-10T10:00:00Z"}
                  for n in names))  # fmt: skip
    shop.events(
        # clara orders after the win-back, before the reminder: the reminder is exited
        {"id": "clara-o2", "contact_id": "clara", "occurred_at": "2026-01-12T10:00:00Z"},
        # dora orders after the reminder, before the card is due: the card is exited
        {"id": "dora-o2", "contact_id": "dora", "occurred_at": "2026-01-20T10:00:00Z"},
        # emil orders on the Saturday after his card was decided (Friday, sent on
        # Mondays only): dispatch cancels it on Monday
        {"id": "emil-o2", "contact_id": "emil", "occurred_at": "2026-01-31T10:00:00Z"},
    )
    quarter(shop)
    got = by_contact(shop.deliveries())
    assert got == {
        "anna": [
            ("winback", "sent", None, "2026-01-09T11:00:00Z"),
            ("winback-reminder", "sent", None, "2026-01-16T11:00:00Z"),
            ("winback-card", "sent", None, "2026-02-02T11:00:00Z"),
        ],
        # held out of the first step: no sent delivery, so no follow-up ever
        "bernd": [("winback", "held_out", None, None)],
        "clara": [
            ("winback", "sent", None, "2026-01-09T11:00:00Z"),
            ("winback-reminder", "skipped", "exited", None),
            # the new order started a new lapse; the win-back goes once per contact
            ("winback", "skipped", "capped", None),
        ],
        "dora": [
            ("winback", "sent", None, "2026-01-09T11:00:00Z"),
            ("winback-reminder", "sent", None, "2026-01-16T11:00:00Z"),
            ("winback-card", "skipped", "exited", None),
            ("winback", "skipped", "capped", None),
        ],
        "emil": [
            ("winback", "sent", None, "2026-01-09T11:00:00Z"),
            ("winback-reminder", "sent", None, "2026-01-16T11:00:00Z"),
            ("winback-card", "cancelled", "exited", None),
            ("winback", "skipped", "capped", None),
        ],
    }
    rows = {(r["contact_id"], r["campaign"]): r for r in shop.deliveries()}
    first = rows[("anna", "winback")]["delivery_id"]
    assert rows[("anna", "winback-reminder")]["occasion"] == f"after:{first}"
    reminder = rows[("anna", "winback-reminder")]["delivery_id"]
    assert rows[("anna", "winback-card")]["occasion"] == f"after:{reminder}"
    assert rows[("anna", "winback-card")]["due_at"] == "2026-01-30T11:00:00Z"

    report = shop.json("report", "--since", "2026-01-01", "--until", "2026-03-31")
    assert set(report["campaigns"]) == {"winback", "winback-reminder", "winback-card"}
    journey = report["journeys"]["winback"]
    steps = {s["campaign"]: s for s in journey["steps"]}
    assert [s["campaign"] for s in journey["steps"]] == [
        "winback",
        "winback-reminder",
        "winback-card",
    ]
    assert (steps["winback"]["sent"], steps["winback"]["held_out"]) == (4, 1)
    assert (steps["winback-reminder"]["sent"], steps["winback-reminder"]["exited"]) == (3, 1)
    assert (steps["winback-card"]["sent"], steps["winback-card"]["exited"]) == (1, 2)
    assert (journey["entered"], journey["exited"], journey["exited_share"]) == (4, 3, 0.75)
    conversion = journey["conversion"]
    # the whole journey (30 days after its last step) against the first step's holdout
    assert conversion["goal"] == {"event": "order", "within_days": 51}
    assert (conversion["contacted"], conversion["contacted_converted"]) == (4, 3)
    assert (conversion["held_out"], conversion["held_out_converted"]) == (1, 0)
    text = shop.ok("report", "--since", "2026-01-01", "--until", "2026-03-31").output
    assert "journey winback: winback → winback-reminder → winback-card" in text
    assert "4 entered (first step sent), 3 exited (75.0%)" in text
    shop.ok(
        "report",
        "--since",
        "2026-01-01",
        "--until",
        "2026-03-31",
        "--html",
        str(shop.root / "r.html"),
    )
    page = (shop.root / "r.html").read_text(encoding="utf-8")
    assert "<h2>Journey winback</h2>" in page and "4 entered, 3 exited (75.0%)" in page


def test_check_states_the_journey_and_its_holdout(shop: Shop) -> None:
    chain(shop)
    out = shop.ok("check").output
    assert (
        "journey winback → winback-reminder (+1w) → winback-card (+2w): a contact held out "
        "of winback gets no follow-up (it has no sent delivery), so the journey's uplift is "
        "measured against winback's control group"
    ) in out
    (journey,) = shop.json("check")["journeys"]
    assert journey["steps"] == ["winback", "winback-reminder", "winback-card"]
    assert journey["holdout"].startswith("a contact held out of winback gets no follow-up")
    listed = shop.json("campaigns")
    assert [c["id"] for c in listed] == ["winback", "winback-reminder", "winback-card"]
    assert [c["journey"]["step"] for c in listed] == [1, 2, 3]
    assert listed[1]["trigger"] == "followup of winback +1w"
    assert listed[2]["journey"] == {
        "first": "winback", "step": 3, "steps": 3, "follows": "winback-reminder"
    }  # fmt: skip


def dump(shop: Shop) -> list[str]:
    conn = sqlite3.connect(shop.root / "regard.db")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def bad(shop: Shop) -> list[str]:
    shop.contacts({"id": "anna"})
    before = dump(shop)
    result = shop.cli("check")
    assert result.exit_code == 1, result.output
    assert dump(shop) == before  # the store is untouched
    return [line for line in result.output.splitlines() if ".toml:" in line]


def test_a_followup_of_a_campaign_that_does_not_exist(shop: Shop) -> None:
    shop.campaign("winback", 'type = "inactivity"\nafter = "30d"\n')
    shop.campaign("card", 'type = "followup"\ncampaign = "winbak"\ndelay = "7d"\n')
    (line,) = bad(shop)
    assert line.endswith(
        "campaigns/card.toml:7: trigger.campaign: no campaign 'winbak' to follow "
        "(did you mean 'winback'?)"
    )


def test_a_cycle_is_named_in_each_of_its_files(shop: Shop) -> None:
    shop.campaign("a", 'type = "followup"\ncampaign = "b"\ndelay = "1d"\n')
    shop.campaign("b", 'type = "followup"\ncampaign = "a"\ndelay = "1d"\n')
    lines = bad(shop)
    assert [line.split("campaigns/")[1] for line in lines] == [
        "a.toml:7: trigger.campaign: a cycle: a follows b follows a",
        "b.toml:7: trigger.campaign: a cycle: b follows a follows b",
    ]


def test_a_negative_or_missing_delay(shop: Shop) -> None:
    shop.campaign("winback", 'type = "inactivity"\nafter = "30d"\n')
    shop.campaign("card", 'type = "followup"\ncampaign = "winback"\ndelay = "-7d"\n')
    shop.campaign("late", 'type = "followup"\ncampaign = "winback"\n')
    lines = bad(shop)
    assert len(lines) == 2
    assert "campaigns/card.toml:8: trigger.delay:" in lines[0]
    assert "campaigns/late.toml:" in lines[1] and "trigger.delay: required" in lines[1]


def test_exit_only_where_the_trigger_has_a_start(shop: Shop) -> None:
    shop.campaign(
        "birthday", 'type = "anniversary"\nfield = "birthday"\n', '[exit]\nevent = "order"\n'
    )
    shop.campaign(
        "thanks",
        'type = "post_purchase"\n',
        '[exit]\nevent = "order"\nwhere = { amount = { above = 3 } }\n',
    )
    lines = bad(shop)
    assert lines[0].split("campaigns/")[1] == (
        "birthday.toml:4: exit: [exit] is only for event, post_purchase, milestone, followup "
        "triggers, not anniversary (its occasion has no start an exit could count from)"
    )
    assert "thanks.toml:" in lines[1] and "exit.where.amount" in lines[1]


def test_plan_and_preview_show_follow_ups_of_simulated_sends(shop: Shop) -> None:
    chain(shop)
    shop.contacts(*({"id": n, **ADDRESS} for n in ["anna", "bernd", "clara"]))
    shop.events(*({"id": f"{n}-o1", "contact_id": n, "occurred_at": "2025-12-10T10:00:00Z"}
                  for n in ["anna", "bernd", "clara"]))  # fmt: skip
    shop.events({"id": "clara-o2", "contact_id": "clara", "occurred_at": "2026-01-12T10:00:00Z"})
    # nothing was ever run: the win-back (due 9 January) is not in the store
    assert shop.deliveries() == []
    # a week after it: the reminder a backtest would have produced from its send
    planned = shop.plan("2026-01-16T10:00:00Z")
    assert planned == [
        {"campaign": "winback-reminder", "contact_id": "anna",
         "occasion": planned[0]["occasion"], "due_at": "2026-01-16T10:00:00Z",
         "decision": "pending", "reason": None, "simulated": True},
        {"campaign": "winback-reminder", "contact_id": "clara",
         "occasion": planned[1]["occasion"], "due_at": "2026-01-16T10:00:00Z",
         "decision": "skipped", "reason": "exited", "simulated": True},
    ]  # fmt: skip
    assert planned[0]["occasion"].startswith("after:d_")
    # three weeks after it: the card, after the reminder (simulated too)
    cards = shop.plan("2026-01-30T10:00:00Z", "winback-card")
    assert [(c["contact_id"], c["decision"], c["simulated"]) for c in cards] == [
        ("anna", "pending", True)
    ]
    preview = shop.json("preview", "winback-card", "anna", "--at", "2026-01-30T10:00:00Z")
    assert preview["decision"] == "pending" and preview["simulated"] is True
    held = shop.json("preview", "winback-card", "bernd", "--at", "2026-01-30T10:00:00Z")
    assert held["decision"] is None  # held out of the first step: no follow-up
    # the plan at the first step's own due time is what it always was
    assert [(d["campaign"], d["contact_id"], d["decision"]) for d in
            shop.plan("2026-01-09T10:00:00Z")] == [
        ("winback", "anna", "pending"), ("winback", "bernd", "held_out"),
        ("winback", "clara", "pending"),
    ]  # fmt: skip
    assert shop.deliveries() == []  # nothing was written


def test_simulate_follows_the_simulated_sends(shop: Shop) -> None:
    chain(shop)
    names = ["anna", "bernd", "clara"]
    shop.contacts(*({"id": n, **ADDRESS} for n in names))
    shop.events(*({"id": f"{n}-o1", "contact_id": n, "occurred_at": "2025-12-10T10:00:00Z"}
                  for n in names))  # fmt: skip
    shop.events({"id": "clara-o2", "contact_id": "clara", "occurred_at": "2026-01-12T10:00:00Z"})
    result = shop.json("simulate", "--from", "2026-01-01", "--to", "2026-03-31")
    got = {cid: (c["sent"], c["held_out"], c["skipped"]) for cid, c in result["campaigns"].items()}
    assert got == {
        "winback": (2, 1, {"capped": 1}),
        "winback-reminder": (1, 0, {"exited": 1}),
        "winback-card": (1, 0, {}),
    }
    # a follow-up alone: the steps before it are replayed with it
    alone = shop.json("simulate", "--from", "2026-01-01", "--to", "2026-03-31",
                      "--campaign", "winback-card")  # fmt: skip
    assert alone["campaigns"]["winback-card"]["sent"] == 1
    assert shop.deliveries() == []  # nothing was written
