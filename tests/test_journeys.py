"""Journeys on a real store: follow-ups found from sent deliveries only, the exit at the
tick with and without a ``where``, the exit at dispatch (the send-time rule reading the
exit each delivery carries), and the exit of a milestone counted from its order."""

from __future__ import annotations

import json

from conftest import Workspace
from regard.engine import tick
from regard.store import Store, open_store
from regard.store.occasions import Started
from regard.triggers import Span
from regard.workspace import load_config
from shop_rows import add_contact, add_delivery, add_event, campaign, deliveries, epoch, instant

TEMPLATE = "{% block subject %}Hallo{% endblock %}{% block text %}{{ occasion }}{% endblock %}"


def shop(workspace: Workspace) -> Store:
    workspace.write("templates/thank-you.j2", TEMPLATE)
    store = open_store(workspace.store_target)
    with store.write() as conn:
        for name in ("anna", "ben", "cem"):
            add_contact(conn, name)
    return store


def test_follow_ups_start_from_sent_deliveries_only(workspace: Workspace) -> None:
    store = shop(workspace)
    config = load_config(workspace.config)
    add_delivery(
        store, "first", "anna", "sent", "2026-03-01T10:00:00Z", sent="2026-03-01T12:00:00Z"
    )
    add_delivery(store, "first", "ben", "held_out", "2026-03-01T10:00:00Z")
    add_delivery(store, "first", "cem", "pending", "2026-03-01T10:00:00Z")
    add_delivery(store, "other", "cem", "sent", "2026-03-01T10:00:00Z", sent="2026-03-01T12:00:00Z")
    second = campaign("second", {"type": "followup", "campaign": "first", "delay": "2d"})
    assert tick(store, config, [second], instant("2026-03-03T11:59:59Z")).decisions == []
    made = tick(store, config, [second], instant("2026-03-03T12:00:00Z")).decisions
    first_id = "d_first_anna_o:anna:2026-03-01T10:00:00Z"
    assert [(d.contact_id, d.occasion, d.due_at, d.decision) for d in made] == [
        ("anna", f"after:{first_id}", epoch("2026-03-03T12:00:00Z"), "pending")
    ]
    found = store.occasions.sent_between(
        "first", epoch("2026-03-01T00:00:00Z"), epoch("2026-03-02T00:00:00Z")
    )
    assert [(s.contact_id, s.delivery_id) for s in found] == [("anna", first_id)]
    assert second.trigger.due(store, config, Span(instant("2026-03-03T12:00:00Z"),
                              instant("2026-03-03T12:00:00Z"), instant("2026-03-03T12:00:00Z"),
                              ["ben"])) == []  # fmt: skip


def test_exit_at_the_tick_counts_from_the_triggering_event(workspace: Workspace) -> None:
    store = shop(workspace)
    config = load_config(workspace.config)
    thanks = campaign(
        "thanks",
        {"type": "post_purchase", "delay": "3d", "nth": 1},
        exit={"event": "order", "where": {"amount": {"min": 40}}},
    )
    for name in ("anna", "ben", "cem"):
        add_event(store, f"{name}-1", name, "2026-03-01T10:00:00Z", amount=30.0)
    add_event(store, "anna-2", "anna", "2026-03-02T10:00:00Z", amount=50.0)  # ends it
    add_event(store, "ben-2", "ben", "2026-03-02T10:00:00Z", amount=20.0)  # too small
    add_event(store, "cem-2", "cem", "2026-03-04T10:00:01Z", amount=90.0)  # after the tick
    made = tick(store, config, [thanks], instant("2026-03-04T10:00:00Z")).decisions
    assert sorted((d.contact_id, d.decision, d.reason) for d in made) == [
        ("anna", "skipped", "exited"), ("ben", "pending", None), ("cem", "pending", None),
    ]  # fmt: skip
    row = store.conn.execute(
        "SELECT exit_event, exit_from, exit_where FROM deliveries WHERE contact_id = 'cem'"
    ).fetchone()
    assert (row[0], row[1]) == ("order", epoch("2026-03-01T10:00:00Z"))
    assert json.loads(row[2]) == {"where": {"amount": {"min": 40}}, "tz": "Europe/Berlin"}
    # at dispatch, cem's order has come: cancelled; ben's small one is no exit
    assert store.deliveries.stop_due(instant("2026-03-04T10:00:00Z")) == {}
    assert store.deliveries.stop_due(instant("2026-03-04T10:05:00Z")) == {"exited": 1}
    states = {d["contact_id"]: (d["state"], d["reason"]) for d in deliveries(store)}
    assert states == {
        "anna": ("skipped", "exited"), "ben": ("pending", None), "cem": ("cancelled", "exited"),
    }  # fmt: skip
    assert [r["state"] for r in store.deliveries.listing(state="cancelled")] == ["cancelled"]


def test_exit_of_a_milestone_counts_from_the_order_that_reached_it(workspace: Workspace) -> None:
    store = shop(workspace)
    config = load_config(workspace.config)
    vip = campaign(
        "vip",
        {"type": "milestone", "metric": "order_count", "threshold": 2, "delay": "2d"},
        exit={"event": "nps"},
    )
    add_event(store, "a1", "anna", "2026-03-01T10:00:00Z")
    add_event(store, "a2", "anna", "2026-03-02T10:00:00Z")
    add_event(store, "n-before", "anna", "2026-03-02T09:00:00Z", type="nps", amount=3)
    assert [d.decision for d in tick(store, config, [vip], instant("2026-03-04T10:00:00Z"))
            .decisions] == ["pending"]  # fmt: skip
    started = [Started("anna", "order_count:2", epoch("2026-03-02T10:00:00Z"))]
    at = epoch("2026-03-05T00:00:00Z")
    assert store.occasions.exited("nps", None, started, at) == set()
    add_event(store, "n-after", "anna", "2026-03-04T11:00:00Z", type="nps", amount=9)
    assert store.occasions.exited("nps", None, started, at) == {("anna", "order_count:2")}
    assert store.occasions.exited("nps", {"amount": {"max": 6}}, started, at) == set()


def test_two_exit_filters_pending_at_once_are_each_compiled(workspace: Workspace) -> None:
    store = shop(workspace)
    config = load_config(workspace.config)
    big = campaign("big", {"type": "post_purchase", "delay": "1d"},
                   exit={"event": "order", "where": {"amount": {"min": 100}}})  # fmt: skip
    web = campaign("web", {"type": "post_purchase", "delay": "1d"},
                   exit={"event": "order", "where": {"channel": "web"}})  # fmt: skip
    add_event(store, "a1", "anna", "2026-03-01T10:00:00Z", amount=10.0)
    tick(store, config, [big, web], instant("2026-03-02T10:00:00Z"))
    add_event(store, "a2", "anna", "2026-03-02T11:00:00Z", amount=20.0, channel="web")
    assert store.deliveries.stop_due(instant("2026-03-02T12:00:00Z")) == {"exited": 1}
    states = {d["campaign"]: (d["state"], d["reason"]) for d in deliveries(store)}
    assert states == {"big": ("pending", None), "web": ("cancelled", "exited")}
    due = store.deliveries.due(instant("2026-03-02T12:00:00Z"), instant("2026-03-02T12:00:00Z"))
    assert [d["campaign"] for d in due] == ["big"]
