"""SPEC "Campaigns", triggers: the occasion key and due instant of each trigger type."""

from __future__ import annotations

from .conftest import Shop


def test_event_trigger_occasion_is_the_event_id_due_after_delay(shop: Shop) -> None:
    shop.campaign("refer", 'type = "event"\nevent = "referral"\ndelay = "2h"\n')
    shop.contacts({"id": "c1"})
    shop.events(
        {"id": "r1", "contact_id": "c1", "type": "referral", "occurred_at": "2026-03-01T10:00:00Z"},
        {"id": "o1", "contact_id": "c1", "occurred_at": "2026-03-01T10:00:00Z"},
    )
    assert shop.plan("2026-03-01T11:59:59Z") == []
    assert shop.decided("2026-03-01T12:00:00Z") == [("c1", "r1", "pending", "2026-03-01T12:00:00Z")]


def test_event_trigger_delay_defaults_to_zero(shop: Shop) -> None:
    shop.campaign("refer", 'type = "event"\nevent = "referral"\n')
    shop.contacts({"id": "c1"})
    shop.events(
        {"id": "r1", "contact_id": "c1", "type": "referral", "occurred_at": "2026-03-01T10:00:00Z"}
    )
    assert shop.decided("2026-03-01T10:00:00Z") == [("c1", "r1", "pending", "2026-03-01T10:00:00Z")]


def test_nth_counts_events_of_that_type_by_time_ties_by_id(shop: Shop) -> None:
    shop.campaign("second", 'type = "event"\nevent = "order"\nnth = 2\n', max_lateness="30d")
    shop.contacts({"id": "c1"}, {"id": "c2"})
    shop.events(
        # c1: the later-listed event is the earlier one in time
        {"id": "a3", "contact_id": "c1", "occurred_at": "2026-03-03T10:00:00Z"},
        {"id": "a1", "contact_id": "c1", "occurred_at": "2026-03-01T10:00:00Z"},
        {"id": "s1", "contact_id": "c1", "type": "signup", "occurred_at": "2026-03-02T10:00:00Z"},
        {"id": "a2", "contact_id": "c1", "occurred_at": "2026-03-02T10:00:00Z"},
        # c2: two orders at the same instant, ties broken by id
        {"id": "b2", "contact_id": "c2", "occurred_at": "2026-03-01T10:00:00Z"},
        {"id": "b1", "contact_id": "c2", "occurred_at": "2026-03-01T10:00:00Z"},
    )
    assert [(c, o) for c, o, _, _ in shop.decided("2026-03-10T00:00:00Z")] == [
        ("c1", "a2"),
        ("c2", "b2"),
    ]


def test_post_purchase_is_an_order_event_trigger(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\ndelay = "3d"\nnth = 1\n')
    shop.contacts({"id": "c1"})
    shop.events(
        {"id": "o1", "contact_id": "c1", "occurred_at": "2026-03-01T10:00:00Z"},
        {"id": "o2", "contact_id": "c1", "occurred_at": "2026-03-02T10:00:00Z"},
        {"id": "n1", "contact_id": "c1", "type": "nps", "amount": 9,
         "occurred_at": "2026-03-01T10:00:00Z"},
    )  # fmt: skip
    assert shop.decided("2026-03-05T00:00:00Z") == [("c1", "o1", "pending", "2026-03-04T10:00:00Z")]


def test_where_filters_on_amount_and_properties(shop: Shop) -> None:
    shop.campaign(
        "sorry",
        'type = "event"\nevent = "nps"\nwhere = { amount = { max = 6 }, kanal = ["app"] }\n',
    )
    shop.contacts({"id": "c1"})
    rows = [("n1", 3, "app"), ("n2", 9, "app"), ("n3", 2, "web"), ("n4", 6, "app")]
    shop.events(
        *[
            {"id": i, "contact_id": "c1", "type": "nps", "amount": a, "kanal": k,
             "occurred_at": "2026-03-01T10:00:00Z"}
            for i, a, k in rows
        ]
    )  # fmt: skip
    assert [o for _, o, _, _ in shop.decided("2026-03-01T10:00:00Z")] == ["n1", "n4"]


def test_inactivity_one_delivery_per_lapse(shop: Shop) -> None:
    shop.campaign("winback", 'type = "inactivity"\nafter = "30d"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-01-01T10:00:00Z")
    assert shop.plan("2026-01-31T09:59:59Z") == []
    assert shop.decided("2026-01-31T10:00:00Z") == [
        ("c1", "since:2026-01-01T10:00:00Z", "pending", "2026-01-31T10:00:00Z")
    ]
    shop.tick("2026-01-31T10:00:00Z")
    shop.tick("2026-02-01T10:00:00Z")
    assert [m["occasion"] for m in shop.outbox()] == ["since:2026-01-01T10:00:00Z"]
    # a new order starts a new lapse
    shop.order("o2", "c1", "2026-02-10T08:30:00Z")
    assert shop.plan("2026-03-12T08:00:00Z") == []
    assert shop.decided("2026-03-12T08:30:00Z") == [
        ("c1", "since:2026-02-10T08:30:00Z", "pending", "2026-03-12T08:30:00Z")
    ]


def test_inactivity_counts_only_its_event_types(shop: Shop) -> None:
    shop.campaign("winback", 'type = "inactivity"\nafter = "30d"\nevents = ["order", "signup"]\n')
    shop.contacts({"id": "c1"}, {"id": "c2"})
    shop.order("o1", "c1", "2026-01-01T10:00:00Z")
    shop.events(
        {"id": "s1", "contact_id": "c1", "type": "signup", "occurred_at": "2026-01-05T10:00:00Z"},
        {"id": "n1", "contact_id": "c1", "type": "nps", "amount": 1,
         "occurred_at": "2026-01-20T10:00:00Z"},
        {"id": "s2", "contact_id": "c2", "type": "signup", "occurred_at": "2026-01-05T10:00:00Z"},
    )  # fmt: skip
    assert shop.decided("2026-02-04T10:00:00Z") == [
        ("c1", "since:2026-01-05T10:00:00Z", "pending", "2026-02-04T10:00:00Z"),
        ("c2", "since:2026-01-05T10:00:00Z", "pending", "2026-02-04T10:00:00Z"),
    ]


def test_inactivity_min_events(shop: Shop) -> None:
    shop.campaign("winback", 'type = "inactivity"\nafter = "30d"\n')
    shop.campaign("regulars", 'type = "inactivity"\nafter = "30d"\nmin_events = 2\n')
    shop.contacts({"id": "once"}, {"id": "twice"}, {"id": "never"})
    shop.order("o1", "once", "2026-01-01T10:00:00Z")
    shop.order("o2", "twice", "2025-12-01T10:00:00Z")
    shop.order("o3", "twice", "2026-01-01T10:00:00Z")
    planned = {(d["campaign"], d["contact_id"]) for d in shop.plan("2026-01-31T10:00:00Z")}
    assert planned == {("winback", "once"), ("winback", "twice"), ("regulars", "twice")}


def test_anniversary_birthday_at_local_time(shop: Shop) -> None:
    shop.campaign("birthday", 'type = "anniversary"\nfield = "birthday"\n')
    shop.contacts(
        {"id": "berlin", "birthday": "1990-06-15"},
        {"id": "newyork", "birthday": "1990-06-15", "timezone": "America/New_York"},
    )
    # default at 09:00 in the contact's time zone (config's for contacts without one)
    assert shop.decided("2026-06-15T14:00:00Z") == [
        ("berlin", "birthday:2026", "pending", "2026-06-15T07:00:00Z"),
        ("newyork", "birthday:2026", "pending", "2026-06-15T13:00:00Z"),
    ]


def test_anniversary_29_february_in_common_years(shop: Shop) -> None:
    shop.campaign("birthday", 'type = "anniversary"\nfield = "birthday"\nat = "10:30"\n')
    shop.contacts({"id": "c1", "birthday": "1992-02-29", "timezone": "UTC"})
    assert shop.decided("2027-02-28T11:00:00Z") == [
        ("c1", "birthday:2027", "pending", "2027-02-28T10:30:00Z")
    ]
    assert shop.decided("2028-02-29T11:00:00Z") == [
        ("c1", "birthday:2028", "pending", "2028-02-29T10:30:00Z")
    ]
    assert shop.plan("2028-02-28T11:00:00Z") == []


def test_anniversary_offset_keeps_the_anniversary_year(shop: Shop) -> None:
    shop.campaign("birthday", 'type = "anniversary"\nfield = "birthday"\noffset = "-7d"\n')
    shop.contacts({"id": "c1", "birthday": "1990-01-03", "timezone": "UTC"})
    assert shop.decided("2025-12-27T09:00:00Z") == [
        ("c1", "birthday:2026", "pending", "2025-12-27T09:00:00Z")
    ]


def test_anniversary_years_and_n_at_least_one(shop: Shop) -> None:
    shop.campaign("jubilee", 'type = "anniversary"\nfield = "signup_at"\nyears = [1, 5]\n')
    shop.contacts(
        {"id": "five", "signup_at": "2021-04-10T15:00:00Z", "timezone": "UTC"},
        {"id": "three", "signup_at": "2023-04-10T15:00:00Z", "timezone": "UTC"},
        {"id": "one", "signup_at": "2025-04-10T15:00:00Z", "timezone": "UTC"},
        {"id": "zero", "signup_at": "2026-04-10T08:00:00Z", "timezone": "UTC"},
    )
    assert shop.decided("2026-04-10T09:00:00Z") == [
        ("five", "signup_at:2026", "pending", "2026-04-10T09:00:00Z"),
        ("one", "signup_at:2026", "pending", "2026-04-10T09:00:00Z"),
    ]


def test_anniversary_of_a_time_field_uses_the_local_date(shop: Shop) -> None:
    shop.campaign("loyal", 'type = "anniversary"\nfield = "first_order_at"\n')
    shop.contacts({"id": "c1", "timezone": "Europe/Berlin"})
    # 23:30 UTC on 1 March is already 2 March in Berlin
    shop.order("o1", "c1", "2025-03-01T23:30:00Z")
    assert shop.decided("2026-03-02T08:00:00Z") == [
        ("c1", "first_order_at:2026", "pending", "2026-03-02T08:00:00Z")
    ]


def test_anniversary_of_a_date_attribute(shop: Shop) -> None:
    shop.campaign("wedding", 'type = "anniversary"\nfield = "hochzeitstag"\nat = "12:00"\n')
    shop.contacts({"id": "c1", "hochzeitstag": "2020-05-05", "timezone": "UTC"})
    assert shop.decided("2026-05-05T12:00:00Z") == [
        ("c1", "hochzeitstag:2026", "pending", "2026-05-05T12:00:00Z")
    ]


def test_milestone_order_count(shop: Shop) -> None:
    shop.campaign(
        "third", 'type = "milestone"\nmetric = "order_count"\nthreshold = 3\ndelay = "1d"\n'
    )
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.order("o2", "c1", "2026-03-05T10:00:00Z")
    shop.order("o3", "c1", "2026-03-10T10:00:00Z")
    shop.order("o4", "c1", "2026-03-10T12:00:00Z")
    assert shop.decided("2026-03-11T10:00:00Z") == [
        ("c1", "order_count:3", "pending", "2026-03-11T10:00:00Z")
    ]


def test_milestone_total_spent(shop: Shop) -> None:
    shop.campaign("vip", 'type = "milestone"\nmetric = "total_spent"\nthreshold = 100\n')
    shop.contacts({"id": "c1"}, {"id": "c2"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z", 60)
    shop.order("o2", "c1", "2026-03-02T10:00:00Z", 40)
    shop.order("o3", "c2", "2026-03-02T10:00:00Z", 99.99)
    assert shop.decided("2026-03-02T11:00:00Z") == [
        ("c1", "total_spent:100", "pending", "2026-03-02T10:00:00Z")
    ]


def test_anniversary_offset_is_an_exact_length_across_daylight_saving(shop: Shop) -> None:
    # 09:00 on 30 March 2026 in Berlin is 07:00 UTC (summer time since 29 March);
    # seven days of 24 hours before it is 07:00 UTC on 23 March (08:00 winter time)
    shop.campaign("birthday", 'type = "anniversary"\nfield = "birthday"\noffset = "-7d"\n')
    shop.contacts({"id": "c1", "birthday": "1990-03-30"})
    assert shop.decided("2026-03-23T07:00:00Z") == [
        ("c1", "birthday:2026", "pending", "2026-03-23T07:00:00Z")
    ]


def test_event_delay_is_an_exact_length_across_daylight_saving(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\ndelay = "2d"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-10-24T10:00:00Z")  # Berlin leaves summer time on 25 October
    assert shop.decided("2026-10-26T10:00:00Z") == [("c1", "o1", "pending", "2026-10-26T10:00:00Z")]
