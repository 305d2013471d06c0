"""Each trigger's due occasions: exact keys and due instants, as of T."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

import pytest

from regard.config import Config
from regard.store import Store
from regard.triggers import (
    AnniversaryTrigger,
    EventTrigger,
    MilestoneTrigger,
    Occasion,
    Span,
    due_occasions,
    trigger_class,
    trigger_types,
)
from shop_rows import add_contact, add_event, campaign, epoch, refresh_facts

CONFIG = Config(timezone="Europe/Berlin")
DAY = 86400


def due(store: Store, trigger: dict, at: str, lateness: int = 2 * DAY, **fields) -> list[Occasion]:
    t = epoch(at)
    c = campaign("c", trigger, **fields)
    return due_occasions(store, CONFIG, c.trigger, Span(t - lateness, t, t))


def test_post_purchase_due_after_delay_with_event_id_as_occasion(store: Store) -> None:
    add_contact(store.conn, "anna")
    add_event(store.conn, "o1", "anna", "2026-03-01T10:00:00Z", amount=49.9)
    trigger = {"type": "post_purchase", "delay": "3d"}
    assert due(store, trigger, "2026-03-04T09:59:59Z") == []
    assert due(store, trigger, "2026-03-04T10:00:00Z") == [
        Occasion(epoch("2026-03-04T10:00:00Z"), "anna", "o1", "o1")
    ]
    assert len(due(store, trigger, "2026-03-06T10:00:00Z")) == 1
    # more than max_lateness overdue: never reached back for
    assert due(store, trigger, "2026-03-06T10:00:01Z") == []


def test_event_in_the_future_of_t_does_not_exist(store: Store) -> None:
    add_contact(store.conn, "anna")
    add_event(store.conn, "n1", "anna", "2026-03-01T10:00:00Z", type="nps", amount=4)
    trigger = {"type": "event", "event": "nps"}
    assert due(store, trigger, "2026-03-01T09:59:59Z") == []
    assert [o.occasion for o in due(store, trigger, "2026-03-01T10:00:00Z")] == ["n1"]


def test_nth_counts_by_time_then_id(store: Store) -> None:
    add_contact(store.conn, "anna")
    add_event(store.conn, "b", "anna", "2026-03-01T10:00:00Z")
    add_event(store.conn, "a", "anna", "2026-03-01T10:00:00Z")  # same instant, smaller id
    add_event(store.conn, "z", "anna", "2026-02-01T10:00:00Z")  # imported later, earlier time
    first = due(store, {"type": "post_purchase", "nth": 1}, "2026-02-01T12:00:00Z")
    assert [o.occasion for o in first] == ["z"]
    second = due(store, {"type": "post_purchase", "nth": 2}, "2026-03-01T12:00:00Z")
    assert [o.occasion for o in second] == ["a"]
    third = due(store, {"type": "post_purchase", "nth": 3}, "2026-03-01T12:00:00Z")
    assert [o.occasion for o in third] == ["b"]


def test_inactivity_one_occasion_per_lapse(store: Store) -> None:
    add_contact(store.conn, "anna")
    add_event(store.conn, "o1", "anna", "2026-01-01T10:00:00Z")
    add_event(store.conn, "s1", "anna", "2026-02-01T10:00:00Z", type="signup")
    trigger = {"type": "inactivity", "after": "90d"}
    found = due(store, trigger, "2026-04-01T10:00:00Z")
    assert found == [
        Occasion(epoch("2026-04-01T10:00:00Z"), "anna", "since:2026-01-01T10:00:00Z", "o1")
    ]
    # a new order starts a new lapse; seen from before it, the old lapse stands
    add_event(store.conn, "o2", "anna", "2026-03-31T10:00:00Z")
    assert due(store, trigger, "2026-04-01T10:00:00Z") == []
    later = due(store, trigger, "2026-06-29T10:00:00Z")
    assert [o.occasion for o in later] == ["since:2026-03-31T10:00:00Z"]
    # other types count when listed
    signup = {"type": "inactivity", "after": "30d", "events": ["signup"]}
    assert [o.occasion for o in due(store, signup, "2026-03-03T10:00:00Z")] == [
        "since:2026-02-01T10:00:00Z"
    ]


def test_inactivity_min_events(store: Store) -> None:
    add_contact(store.conn, "anna")
    add_contact(store.conn, "ben", signup_at="2026-01-01T08:00:00Z")
    add_event(store.conn, "o1", "anna", "2026-01-01T10:00:00Z")
    at = "2026-01-31T10:00:00Z"
    assert due(store, {"type": "inactivity", "after": "30d", "min_events": 2}, at) == []
    assert [o.contact_id for o in due(store, {"type": "inactivity", "after": "30d"}, at)] == [
        "anna"
    ]
    never = due(store, {"type": "inactivity", "after": "30d", "min_events": 0}, at)
    assert [(o.contact_id, o.occasion) for o in never] == [
        ("ben", "since:2026-01-01T08:00:00Z"),
        ("anna", "since:2026-01-01T10:00:00Z"),
    ]


def test_birthday_at_local_time_in_contact_zone(store: Store) -> None:
    add_contact(store.conn, "anna", birthday="1990-05-17", timezone="America/New_York")
    add_contact(store.conn, "ben", birthday="1985-05-17")  # config zone: Berlin
    trigger = {"type": "anniversary", "field": "birthday"}
    found = due(store, trigger, "2026-05-18T00:00:00Z")
    assert found == [
        Occasion(epoch("2026-05-17T07:00:00Z"), "ben", "birthday:2026"),
        Occasion(epoch("2026-05-17T13:00:00Z"), "anna", "birthday:2026"),
    ]


def test_leap_day_birthday_on_28_february_in_common_years(store: Store) -> None:
    add_contact(store.conn, "leo", birthday="2000-02-29", timezone="UTC")
    trigger = {"type": "anniversary", "field": "birthday", "at": "00:00"}
    assert [o.occasion for o in due(store, trigger, "2027-02-28T00:00:00Z")] == ["birthday:2027"]
    assert due(store, trigger, "2028-02-28T12:00:00Z") == []
    leap = due(store, trigger, "2028-02-29T00:00:00Z")
    assert leap == [Occasion(epoch("2028-02-29T00:00:00Z"), "leo", "birthday:2028")]


def test_anniversary_years_offset_and_dst(store: Store) -> None:
    # signed up at 23:30 UTC on 28 March = 00:30 on 29 March in Berlin (summer time begins
    # that day at 02:00): D is the local date
    add_contact(store.conn, "anna", signup_at="2025-03-28T23:30:00Z")
    trigger = {"type": "anniversary", "field": "signup_at", "at": "02:30", "years": [1]}
    # 2026-03-29: 02:30 does not exist in Berlin; read with the winter offset → 01:30Z
    found = due(store, trigger, "2026-03-29T02:00:00Z")
    assert found == [Occasion(epoch("2026-03-29T01:30:00Z"), "anna", "signup_at:2026")]
    assert due(store, trigger, "2027-03-29T12:00:00Z") == []  # year 2 not listed
    week_before = {"type": "anniversary", "field": "signup_at", "offset": "-7d"}
    # the offset is exact: 09:00 summer time on the 29th minus 7 × 24 h is 08:00 winter time
    assert due(store, week_before, "2026-03-22T08:00:00Z") == [
        Occasion(epoch("2026-03-22T07:00:00Z"), "anna", "signup_at:2026")
    ]


def test_anniversary_in_the_repeated_hour_is_the_first_of_the_two(store: Store) -> None:
    add_contact(store.conn, "anna", birthday="1990-10-25")  # Berlin: clocks go back at 03:00
    trigger = {"type": "anniversary", "field": "birthday", "at": "02:30"}
    assert due(store, trigger, "2026-10-25T02:00:00Z") == [
        Occasion(epoch("2026-10-25T00:30:00Z"), "anna", "birthday:2026")  # 02:30 CEST
    ]


def test_first_order_anniversary_as_of_t(store: Store) -> None:
    add_contact(store.conn, "anna", timezone="UTC")
    add_event(store.conn, "o1", "anna", "2025-06-01T10:00:00Z")
    refresh_facts(store.conn)
    trigger = {"type": "anniversary", "field": "first_order_at"}
    found = due(store, trigger, "2026-06-01T09:00:00Z")
    assert found == [Occasion(epoch("2026-06-01T09:00:00Z"), "anna", "first_order_at:2026")]


def test_date_attribute_anniversary(store: Store) -> None:
    add_contact(store.conn, "anna", timezone="UTC", attributes={"wedding_day": "2020-08-08"})
    add_contact(store.conn, "ben", timezone="UTC", attributes={"wedding_day": "soon"})
    trigger = {"type": "anniversary", "field": "wedding_day", "at": "10:00"}
    assert [o.occasion for o in due(store, trigger, "2026-08-08T10:00:00Z")] == ["wedding_day:2026"]


def test_milestone_order_count_and_total_spent(store: Store) -> None:
    add_contact(store.conn, "anna")
    for i, amount in enumerate([100, 150, 300, 20, 80], start=1):
        add_event(store.conn, f"o{i}", "anna", f"2026-0{i}-01T10:00:00Z", amount=amount)
    fifth = due(store, {"type": "milestone", "metric": "order_count", "threshold": 5},
                "2026-05-02T10:00:00Z")  # fmt: skip
    assert fifth == [Occasion(epoch("2026-05-01T10:00:00Z"), "anna", "order_count:5", "o5")]
    spent = {"type": "milestone", "metric": "total_spent", "threshold": "500.00", "delay": "1d"}
    assert due(store, spent, "2026-03-02T10:00:00Z") == [
        Occasion(epoch("2026-03-02T10:00:00Z"), "anna", "total_spent:500", "o3")
    ]
    # only the crossing order: later orders above the threshold are not new occasions
    assert due(store, spent, "2026-04-02T10:00:00Z") == []


@pytest.mark.sqlite_only  # reads SQLite's own query plans
def test_due_queries_never_scan_contacts_or_events(store: Store) -> None:
    """The cost of a tick follows what is due: every trigger query is an index search."""
    # a shop of some size, with statistics, so the planner chooses as it would in production
    start = epoch("2023-01-01T00:00:00Z")
    for i in range(2000):
        day = date(1960 + i % 40, 1 + i % 12, 1 + i % 28).isoformat()
        add_contact(store.conn, f"c{i}", birthday=day, signup_at=start + i * 40_000)
        for n in range(5):
            add_event(store.conn, f"o{i}-{n}", f"c{i}", start + i * 40_000 + n * 86_400 * 30)
    refresh_facts(store.conn)
    store.conn.execute("ANALYZE")
    triggers = [
        {"type": "post_purchase", "nth": 1},
        {"type": "inactivity", "after": "30d", "min_events": 0},
        {"type": "anniversary", "field": "birthday"},
        {"type": "anniversary", "field": "signup_at"},
        {"type": "anniversary", "field": "first_order_at"},
        {"type": "milestone", "metric": "total_spent", "threshold": 10},
    ]
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    for trigger in triggers:
        due(store, trigger, "2026-05-17T12:00:00Z")
    store.conn.set_trace_callback(None)
    for sql in statements:
        plan = " | ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert not re.search(r"SCAN (c|e|p|contacts|events)\b", plan), (sql, plan)


def test_trigger_types_register_by_their_type() -> None:
    assert [t.model_fields["type"].annotation.__args__[0] for t in trigger_types()] == [
        "event", "post_purchase", "inactivity", "anniversary", "milestone", "followup",
    ]  # fmt: skip
    assert trigger_class("anniversary") is AnniversaryTrigger
    with pytest.raises(TypeError, match="two trigger types claim type 'milestone'"):

        class Another(MilestoneTrigger):
            type: Literal["milestone"]


def test_each_trigger_says_what_it_is_and_why_it_finds_nothing() -> None:
    cases = [
        ({"type": "post_purchase", "delay": "2d", "nth": 1}, "post_purchase +2d (#1)",
         "no order matching event of this contact triggers it", "order"),
        ({"type": "event", "event": "nps", "where": {"amount": {"max": 6}}}, "event nps where amount",
         "no nps matching event of this contact triggers it", "nps"),
        ({"type": "inactivity", "after": "90d"}, "inactivity 90d",
         "no lapse: fewer than 1 of order", "order"),
        ({"type": "inactivity", "after": "30d", "min_events": 0, "events": ["visit"]},
         "inactivity 30d", "no lapse: fewer than 1 of visit", None),
        ({"type": "anniversary", "field": "birthday", "offset": "-7d"}, "anniversary birthday -1w",
         "no birthday anniversary for this contact (is birthday set?)", None),
        ({"type": "milestone", "metric": "total_spent", "threshold": "500.00"},
         "milestone total_spent >= 500.00", "total_spent has not reached 500.00 for this contact",
         "order"),
    ]  # fmt: skip
    for table, described, nothing, sample in cases:
        trigger = campaign("c", table).trigger
        assert (trigger.describe(), trigger.no_occasion()) == (described, nothing)
        assert trigger.sample_event_type() == sample


def test_an_anniversary_of_a_field_that_is_no_date_is_a_problem() -> None:
    assert AnniversaryTrigger.problems({"type": "anniversary", "field": "order_count"}) == [
        (("field",), "order_count is not a date; use birthday, signup_at, first_order_at "
                     "or a date attribute"),
    ]  # fmt: skip
    assert AnniversaryTrigger.problems({"type": "anniversary", "field": "wedding_day"}) == []
    assert EventTrigger.problems({"type": "event", "event": "x"}) == []
