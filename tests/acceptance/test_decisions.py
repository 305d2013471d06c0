"""SPEC "Campaigns": which occasions a tick considers, the decisions in their order,
holdout, caps, recorded states, windows, daily limits, and what ``--at`` sees."""

from __future__ import annotations

import hashlib

import pytest

from .conftest import Shop

ADDRESS = {"first_name": "Anna", "street": "Lindenstraße 5", "postal_code": "10969",
           "city": "Berlin", "country": "DE"}  # fmt: skip


def decisions(shop: Shop, at: str) -> dict[str, tuple[str, str | None]]:
    return {d["contact_id"]: (d["decision"], d["reason"]) for d in shop.plan(at)}


def test_max_lateness_default_two_days(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    assert len(shop.plan("2026-03-03T10:00:00Z")) == 1
    assert shop.plan("2026-03-03T10:00:01Z") == []


def test_enabling_a_campaign_never_reaches_back(shop: Shop) -> None:
    shop.contacts({"id": "c1"}, {"id": "c2"})
    shop.order("o1", "c1", "2025-01-01T10:00:00Z")
    shop.order("o2", "c2", "2026-03-01T09:30:00Z")
    shop.campaign("thanks", 'type = "post_purchase"\n', max_lateness="1h")
    shop.tick("2026-03-01T10:00:00Z")
    assert [(d["contact_id"], d["state"]) for d in shop.deliveries()] == [("c2", "sent")]
    assert [m["occasion"] for m in shop.outbox()] == ["o2"]


def test_starts_at_and_ends_at(shop: Shop) -> None:
    shop.campaign(
        "thanks", 'type = "post_purchase"\n', starts_at="2026-03-05", ends_at="2026-03-10",
        max_lateness="10d",
    )  # fmt: skip
    shop.contacts({"id": "early"}, {"id": "inside"}, {"id": "late"})
    shop.order("o1", "early", "2026-03-04T10:00:00Z")
    shop.order("o2", "inside", "2026-03-06T10:00:00Z")
    shop.order("o3", "late", "2026-03-11T10:00:00Z")
    assert decisions(shop, "2026-03-06T12:00:00Z") == {"inside": ("pending", None)}
    assert decisions(shop, "2026-03-11T12:00:00Z") == {"inside": ("pending", None)}


def test_outside_the_audience_is_not_considered(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', body='[audience]\ncountry = ["AT"]\n')
    shop.contacts({"id": "de", "country": "DE"}, {"id": "at", "country": "AT"})
    shop.order("o1", "de", "2026-03-01T10:00:00Z")
    shop.order("o2", "at", "2026-03-01T10:00:00Z")
    assert decisions(shop, "2026-03-01T10:00:00Z") == {"at": ("pending", None)}


def test_skip_reasons_for_email(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts(
        {"id": "ok"},
        {"id": "absent", "consent_email": None},
        {"id": "refused", "consent_email": False},
        {"id": "gone"},
        {"id": "nomail", "email": None},
        {"id": "all", "email": None, "consent_email": False},
        {"id": "gone-nomail", "email": None},
    )
    shop.ok("contacts", "unsubscribe", "gone")
    shop.ok("contacts", "unsubscribe", "gone-nomail")
    for contact in ("ok", "absent", "refused", "gone", "nomail", "all", "gone-nomail"):
        shop.order(f"o-{contact}", contact, "2026-03-01T10:00:00Z")
    assert decisions(shop, "2026-03-01T10:00:00Z") == {
        "ok": ("pending", None),
        "absent": ("skipped", "no_consent"),
        "refused": ("skipped", "no_consent"),
        "gone": ("skipped", "unsubscribed"),
        "nomail": ("skipped", "no_address"),
        # Part 2's order: no address first, then (marketing) consent, then unsubscribed
        "all": ("skipped", "no_address"),
        "gone-nomail": ("skipped", "no_address"),
    }


def test_unsubscribe_from_one_channel(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.campaign("sms", 'type = "post_purchase"\n', channel="sms")
    shop.contacts({"id": "c1", "phone": "+4915112345678", "consent_sms": True})
    shop.ok("contacts", "unsubscribe", "c1", "--channel", "email")
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    planned = {
        (d["campaign"], d["decision"], d["reason"]) for d in shop.plan("2026-03-01T10:00:00Z")
    }
    assert planned == {("thanks", "skipped", "unsubscribed"), ("sms", "pending", None)}


def test_sms_needs_opt_in_and_a_phone(shop: Shop) -> None:
    shop.campaign("sms", 'type = "post_purchase"\n', channel="sms")
    shop.contacts(
        {"id": "ok", "phone": "+4915112345678", "consent_sms": True},
        {"id": "noconsent", "phone": "+4915112345679"},
        {"id": "nophone", "consent_sms": True},
    )
    for contact in ("ok", "noconsent", "nophone"):
        shop.order(f"o-{contact}", contact, "2026-03-01T10:00:00Z")
    assert decisions(shop, "2026-03-01T10:00:00Z") == {
        "ok": ("pending", None),
        "noconsent": ("skipped", "no_consent"),
        "nophone": ("skipped", "no_address"),
    }


def test_card_needs_a_full_postal_address_and_is_opt_out(shop: Shop) -> None:
    shop.campaign("card", 'type = "post_purchase"\n', channel="card")
    shop.template("note", "{% block card %}{{ contact | greeting }}, danke!{% endblock %}")
    rows = {
        "named": ADDRESS,
        "firm": {**ADDRESS, "first_name": None, "company": "Blumen GmbH"},
        "lastname": {**ADDRESS, "first_name": None, "last_name": "Müller"},
        "nameless": {**ADDRESS, "first_name": None},
        "nostreet": {**ADDRESS, "street": None},
        "nozip": {**ADDRESS, "postal_code": None},
        "nocity": {**ADDRESS, "city": None},
        "nocountry": {**ADDRESS, "country": None},
        "refused": {**ADDRESS, "consent_card": False},
    }
    shop.contacts(*[{"id": c, "email": None, "consent_email": None, **a} for c, a in rows.items()])
    for contact in rows:
        shop.order(f"o-{contact}", contact, "2026-03-01T10:00:00Z")
    got = decisions(shop, "2026-03-01T10:00:00Z")
    assert got == {
        "named": ("pending", None),
        "firm": ("pending", None),
        "lastname": ("pending", None),
        "nameless": ("skipped", "no_address"),
        "nostreet": ("skipped", "no_address"),
        "nozip": ("skipped", "no_address"),
        "nocity": ("skipped", "no_address"),
        "nocountry": ("skipped", "no_address"),
        "refused": ("skipped", "no_consent"),
    }


def test_webhook_needs_no_address(shop: Shop) -> None:
    shop.campaign("hook", 'type = "post_purchase"\n', channel="webhook")
    shop.contacts({"id": "c1", "email": None, "consent_email": None, "first_name": None})
    shop.template("note", "{% block text %}{{ contact.id }}{% endblock %}")
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    assert decisions(shop, "2026-03-01T10:00:00Z") == {"c1": ("pending", None)}


def test_once_per_contact_counts_pending_of_this_tick_and_sent(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', once_per_contact=True)
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.order("o2", "c1", "2026-03-01T11:00:00Z")
    planned = sorted((d["decision"], d["reason"]) for d in shop.plan("2026-03-01T12:00:00Z"))
    assert planned == [("pending", None), ("skipped", "capped")]
    shop.tick("2026-03-01T12:00:00Z")
    shop.order("o3", "c1", "2027-03-01T10:00:00Z")
    assert decisions(shop, "2027-03-01T10:00:00Z") == {"c1": ("skipped", "capped")}


def test_cooldown(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', cooldown="30d")
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.tick("2026-03-01T10:00:00Z")
    shop.order("o2", "c1", "2026-03-11T10:00:00Z")
    shop.order("o3", "c1", "2026-04-11T10:00:00Z")
    assert decisions(shop, "2026-03-11T10:00:00Z") == {"c1": ("skipped", "capped")}
    assert decisions(shop, "2026-04-11T10:00:00Z") == {"c1": ("pending", None)}


def test_contact_cap_across_campaigns_by_priority(shop: Shop) -> None:
    shop.configure('[limits]\ncontact_max = 2\ncontact_window = "7d"\n')
    for name, priority in (("low", 1), ("high", 3), ("mid", 2)):
        shop.campaign(name, 'type = "post_purchase"\n', priority=priority)
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    planned = {
        d["campaign"]: (d["decision"], d["reason"]) for d in shop.plan("2026-03-01T10:00:00Z")
    }
    assert planned == {
        "high": ("pending", None),
        "mid": ("pending", None),
        "low": ("skipped", "capped"),
    }


def in_holdout(campaign: str, contact: str, share: float) -> bool:
    digest = hashlib.sha256(f"{campaign}:{contact}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def test_holdout_is_the_specified_hash(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', holdout=0.3)
    ids = [f"kunde-{n}" for n in range(40)]
    shop.contacts(*[{"id": i} for i in ids])
    shop.events(
        *[{"id": f"o-{i}", "contact_id": i, "occurred_at": "2026-03-01T10:00:00Z"} for i in ids]
    )
    got = decisions(shop, "2026-03-01T10:00:00Z")
    expected = {
        i: ("held_out", None) if in_holdout("thanks", i, 0.3) else ("pending", None) for i in ids
    }
    assert got == expected
    assert 0 < sum(v[0] == "held_out" for v in got.values()) < 40
    shop.tick("2026-03-01T10:00:00Z")
    sent = {m["contact_id"] for m in shop.outbox()}
    assert sent == {i for i in ids if not in_holdout("thanks", i, 0.3)}


@pytest.mark.parametrize("share", [0.6, -0.1])
def test_holdout_range(shop: Shop, share: float) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', holdout=share)
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "holdout" in result.output


def held_out_contact(campaign: str) -> str:
    return next(f"k{n}" for n in range(1000) if in_holdout(campaign, f"k{n}", 0.5))


def test_held_out_does_not_count_for_once_per_contact(shop: Shop) -> None:
    contact = held_out_contact("thanks")
    shop.campaign("thanks", 'type = "post_purchase"\n', holdout=0.5, once_per_contact=True)
    shop.contacts({"id": contact})
    shop.order("o1", contact, "2026-03-01T10:00:00Z")
    shop.tick("2026-03-01T10:00:00Z")
    shop.order("o2", contact, "2026-03-05T10:00:00Z")
    assert decisions(shop, "2026-03-05T10:00:00Z") == {contact: ("held_out", None)}


def test_held_out_does_not_count_for_cooldown(shop: Shop) -> None:
    contact = held_out_contact("thanks")
    shop.campaign("thanks", 'type = "post_purchase"\n', holdout=0.5, cooldown="30d")
    shop.contacts({"id": contact})
    shop.order("o1", contact, "2026-03-01T10:00:00Z")
    shop.tick("2026-03-01T10:00:00Z")
    shop.order("o2", contact, "2026-03-05T10:00:00Z")
    assert decisions(shop, "2026-03-05T10:00:00Z") == {contact: ("held_out", None)}


def test_held_out_and_skipped_do_not_count_for_the_contact_cap(shop: Shop) -> None:
    shop.configure('[limits]\ncontact_max = 1\ncontact_window = "7d"\n')
    contact = held_out_contact("control")
    shop.campaign("control", 'type = "post_purchase"\n', holdout=0.5, priority=9)
    shop.campaign("sms", 'type = "post_purchase"\n', channel="sms", priority=5)
    shop.campaign("thanks", 'type = "post_purchase"\n', priority=1)
    shop.contacts({"id": contact, "phone": "+4915112345678"})  # a number, without consent
    shop.order("o1", contact, "2026-03-01T10:00:00Z")
    planned = {
        d["campaign"]: (d["decision"], d["reason"]) for d in shop.plan("2026-03-01T10:00:00Z")
    }
    assert planned == {
        "control": ("held_out", None),
        "sms": ("skipped", "no_consent"),
        "thanks": ("pending", None),
    }


def test_recorded_states_are_final(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', max_lateness="10d")
    shop.contacts({"id": "c1", "consent_email": False}, {"id": "c2"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.order("o2", "c2", "2026-03-01T10:00:00Z")
    shop.tick("2026-03-01T10:00:00Z")
    first = shop.deliveries()
    assert sorted((d["contact_id"], d["state"], d["reason"]) for d in first) == [
        ("c1", "skipped", "no_consent"),
        ("c2", "sent", None),
    ]
    shop.contacts({"id": "c1", "consent_email": True})
    shop.tick("2026-03-02T10:00:00Z")
    assert shop.plan("2026-03-03T10:00:00Z") == []
    assert shop.deliveries() == first
    assert len(shop.outbox()) == 1


def test_window_defers_to_the_next_opening(shop: Shop) -> None:
    shop.campaign(
        "thanks", 'type = "post_purchase"\n',
        body='[window]\ndays = ["mon", "tue", "wed", "thu", "fri"]\nhours = [9, 18]\n',
    )  # fmt: skip
    shop.contacts({"id": "c1"})
    # Friday 6 March 2026, 19:00 in Berlin
    shop.order("o1", "c1", "2026-03-06T18:00:00Z")
    shop.tick("2026-03-06T18:00:00Z")
    assert [d["state"] for d in shop.deliveries()] == ["pending"]
    shop.tick("2026-03-07T10:00:00Z")  # Saturday
    shop.tick("2026-03-09T07:59:00Z")  # Monday 08:59 in Berlin
    assert shop.outbox() == []
    shop.tick("2026-03-09T08:00:00Z")  # Monday 09:00 in Berlin
    assert [m["occasion"] for m in shop.outbox()] == ["o1"]
    assert [d["state"] for d in shop.deliveries()] == ["sent"]


def test_daily_limit_highest_total_spent_first(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', daily_limit=1)
    shop.contacts({"id": "poor"}, {"id": "rich"})
    shop.order("old", "rich", "2025-01-01T10:00:00Z", 500)
    shop.order("o1", "poor", "2026-03-01T09:00:00Z", 20)
    shop.order("o2", "rich", "2026-03-01T09:00:00Z", 20)
    shop.tick("2026-03-01T10:00:00Z")
    assert [m["contact_id"] for m in shop.outbox()] == ["rich"]
    shop.tick("2026-03-01T20:00:00Z")
    assert [m["contact_id"] for m in shop.outbox()] == ["rich"]
    shop.tick("2026-03-02T10:00:00Z")
    assert [m["contact_id"] for m in shop.outbox()] == ["rich", "poor"]


def test_a_tick_at_t_sees_the_store_as_of_t(shop: Shop) -> None:
    shop.campaign(
        "second", 'type = "post_purchase"\n', body="[audience]\norder_count = { min = 2 }\n",
        max_lateness="30d",
    )  # fmt: skip
    shop.campaign("winback", 'type = "inactivity"\nafter = "30d"\n', purpose="service")
    shop.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}"
        "{{ contact.order_count }} {{ contact.last_order_at.date() }}{% endblock %}",
    )
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-01-01T10:00:00Z")
    shop.order("o2", "c1", "2026-01-20T10:00:00Z")
    shop.order("o3", "c1", "2026-03-01T10:00:00Z")
    # at 31 January the March order does not exist yet: c1 lapsed since 1 January? No: since 20 January
    assert shop.plan("2026-02-01T10:00:00Z", "winback") == []
    assert [
        (d["occasion"], d["decision"]) for d in shop.plan("2026-02-19T10:00:00Z", "winback")
    ] == [("since:2026-01-20T10:00:00Z", "pending")]
    # at 10 January c1 has one order: not in the audience of "second" for o1
    assert shop.plan("2026-01-10T10:00:00Z", "second") == []
    answer = shop.json("preview", "winback", "c1", "--at", "2026-02-19T10:00:00Z")
    assert answer["message"]["text"] == "2 2026-01-20"


def test_plan_and_dry_run_write_nothing(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    assert len(shop.plan("2026-03-01T10:00:00Z")) == 1
    shop.ok("run", "--at", "2026-03-01T10:00:00Z", "--dry-run")
    assert shop.deliveries() == []
    assert shop.outbox() == []
    assert len(shop.plan("2026-03-01T10:00:00Z")) == 1


def test_contact_cap_window_slides(shop: Shop) -> None:
    shop.configure('[limits]\ncontact_max = 1\ncontact_window = "7d"\n')
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.tick("2026-03-01T10:00:00Z")
    shop.order("o2", "c1", "2026-03-07T10:00:00Z")
    shop.order("o3", "c1", "2026-03-10T10:00:00Z")
    assert decisions(shop, "2026-03-07T10:00:00Z") == {"c1": ("skipped", "capped")}
    assert decisions(shop, "2026-03-10T10:00:00Z") == {"c1": ("pending", None)}


def test_opt_out_email_sends_unless_refused(shop: Shop) -> None:
    text = shop.ws.config.read_text(encoding="utf-8")
    shop.ws.config.write_text(
        text.replace('email = "opt-in"', 'email = "opt-out"'), encoding="utf-8"
    )
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts(
        {"id": "silent", "consent_email": None}, {"id": "refused", "consent_email": False}
    )
    shop.order("o1", "silent", AT_MARCH)
    shop.order("o2", "refused", AT_MARCH)
    assert decisions(shop, AT_MARCH) == {
        "silent": ("pending", None),
        "refused": ("skipped", "no_consent"),
    }


AT_MARCH = "2026-03-01T10:00:00Z"


def test_naive_at_is_in_the_config_timezone(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    assert shop.plan("2026-03-01T10:59") == []  # 09:59 UTC
    assert len(shop.plan("2026-03-01T11:00")) == 1


def test_window_hours_end_before_the_last_hour(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', body="[window]\nhours = [9, 18]\n")
    shop.contacts({"id": "early"}, {"id": "late"})
    shop.order("o1", "early", "2026-03-02T16:59:00Z")  # 17:59 in Berlin
    shop.order("o2", "late", "2026-03-02T17:00:00Z")  # 18:00 in Berlin
    shop.tick("2026-03-02T16:59:00Z")
    shop.tick("2026-03-02T17:00:00Z")
    assert [m["contact_id"] for m in shop.outbox()] == ["early"]
    shop.tick("2026-03-03T08:00:00Z")  # 09:00 in Berlin
    assert [m["contact_id"] for m in shop.outbox()] == ["early", "late"]


@pytest.mark.parametrize(
    "trigger, missing",
    [('type = "event"\n', "event"), ('type = "inactivity"\n', "after"),
     ('type = "anniversary"\n', "field"), ('type = "milestone"\nthreshold = 3\n', "metric"),
     ('type = "milestone"\nmetric = "order_count"\n', "threshold"), ('type = "weekly"\n', "type")],
)  # fmt: skip
def test_required_trigger_keys(shop: Shop, trigger: str, missing: str) -> None:
    shop.campaign("broken", trigger)
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "broken.toml" in result.output
    assert missing in result.output


def test_only_four_keys_are_required_and_name_defaults_to_the_id(shop: Shop) -> None:
    shop.ws.write(
        "campaigns/danke.toml",
        'channel = "email"\nprovider = "outbox"\ntemplate = "note"\n[trigger]\ntype = "post_purchase"\n',
    )
    assert shop.cli("check").exit_code == 0
    [listed] = shop.json("campaigns")
    assert listed["name"] == "danke"
    for key in ("channel", "provider", "template"):
        text = {"channel": "email", "provider": "outbox", "template": "note"}
        del text[key]
        body = (
            "".join(f'{k} = "{v}"\n' for k, v in text.items())
            + '[trigger]\ntype = "post_purchase"\n'
        )
        shop.ws.write("campaigns/danke.toml", body)
        result = shop.cli("check")
        assert result.exit_code == 1
        assert key in result.output


def test_audience_grammar(shop: Shop) -> None:
    shop.campaign(
        "picky", 'type = "post_purchase"\n',
        body='[audience]\ntags = { any = ["vip", "gold"] }\nphone = { exists = true }\n'
             'birthday = { exists = false }\ncountry = { not = ["CH"] }\n'
             'total_spent = { min = 10, max = 100 }\n',
    )  # fmt: skip
    phone = "+4915112345678"
    shop.contacts(
        {"id": "ok", "tags": ["gold"], "phone": phone, "country": "DE"},
        {"id": "notag", "tags": ["b2b"], "phone": phone},
        {"id": "nophone", "tags": ["vip"]},
        {"id": "birthday", "tags": ["vip"], "phone": phone, "birthday": "1990-01-01"},
        {"id": "swiss", "tags": ["vip"], "phone": phone, "country": "CH"},
        {"id": "rich", "tags": ["vip"], "phone": phone},
    )
    for contact in ("ok", "notag", "nophone", "birthday", "swiss"):
        shop.order(f"o-{contact}", contact, AT_MARCH, 50)
    shop.order("o-rich", "rich", AT_MARCH, 500)
    assert list(decisions(shop, AT_MARCH)) == ["ok"]


def test_starts_and_ends_are_days_in_the_config_timezone(shop: Shop) -> None:
    shop.campaign(
        "thanks", 'type = "post_purchase"\n', starts_at="2026-03-05", ends_at="2026-03-10"
    )
    shop.contacts({"id": "first"}, {"id": "last"})
    # 00:30 on 5 March and 23:30 on 10 March in Berlin
    shop.order("o1", "first", "2026-03-04T23:30:00Z")
    shop.order("o2", "last", "2026-03-10T22:30:00Z")
    assert decisions(shop, "2026-03-05T00:00:00Z") == {"first": ("pending", None)}
    assert decisions(shop, "2026-03-10T22:45:00Z") == {"last": ("pending", None)}


@pytest.mark.parametrize(
    "body, key",
    [('[window]\nhour = [9, 18]\n', "hour"), ('[goal]\nevent = "order"\nwithin_days = 3\n', "within_days"),
     ('[card]\ndesing = "x"\n', "desing"), ('[audience]\ncountry = { oneof = ["DE"] }\n', "oneof")],
)  # fmt: skip
def test_unknown_keys_in_campaign_tables(shop: Shop, body: str, key: str) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', body=body)
    result = shop.cli("check")
    assert result.exit_code == 1
    assert key in result.output
    assert "thanks.toml" in result.output


def test_unknown_trigger_key(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\ndealy = "3d"\n')
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "dealy" in result.output


def test_consent_before_cap_before_holdout(shop: Shop) -> None:
    shop.configure('[limits]\ncontact_max = 1\ncontact_window = "7d"\n')
    contact = held_out_contact("control")
    shop.campaign("first", 'type = "post_purchase"\n', priority=9)
    shop.campaign("control", 'type = "post_purchase"\n', holdout=0.5, priority=5)
    shop.campaign("sms", 'type = "post_purchase"\n', channel="sms", priority=1)
    shop.contacts({"id": contact, "phone": "+4915112345678"})  # a number, without consent
    shop.order("o1", contact, AT_MARCH)
    planned = {d["campaign"]: (d["decision"], d["reason"]) for d in shop.plan(AT_MARCH)}
    assert planned == {
        "first": ("pending", None),
        "control": ("skipped", "capped"),  # the cap is checked before the holdout
        "sms": ("skipped", "no_consent"),  # consent before the cap
    }


def test_run_with_a_broken_campaign_runs_the_others_and_exits_1(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.ws.write("campaigns/broken.toml", 'channel = "email"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", AT_MARCH)
    result = shop.cli("run", "--at", AT_MARCH)
    assert result.exit_code == 1
    assert "broken.toml" in result.output
    assert [m["campaign"] for m in shop.outbox()] == ["thanks"]


def test_window_hours_in_the_contacts_timezone(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', body="[window]\nhours = [9, 18]\n")
    shop.contacts({"id": "berlin"}, {"id": "newyork", "timezone": "America/New_York"})
    shop.order("o1", "berlin", "2026-03-02T13:00:00Z")
    shop.order("o2", "newyork", "2026-03-02T13:00:00Z")
    shop.tick("2026-03-02T13:00:00Z")  # 14:00 in Berlin, 08:00 in New York
    assert [m["contact_id"] for m in shop.outbox()] == ["berlin"]
    shop.tick("2026-03-02T14:00:00Z")  # 09:00 in New York
    assert [m["contact_id"] for m in shop.outbox()] == ["berlin", "newyork"]


def test_plan_and_preview_match_what_run_does(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', holdout=0.3)
    shop.template(
        "note",
        "{% block subject %}{{ contact | greeting }}{% endblock %}"
        "{% block text %}{{ event.amount | money }} – {{ now.date() }}{% endblock %}"
        "{% block html %}<b>{{ contact.first_name }}</b>{% endblock %}",
    )
    ids = [f"k{n}" for n in range(12)]
    shop.contacts(*[{"id": i, "consent_email": n % 4 != 0} for n, i in enumerate(ids)])
    shop.events(
        *[{"id": f"o-{i}", "contact_id": i, "occurred_at": AT_MARCH, "amount": 12.5} for i in ids]
    )
    planned = sorted(
        (d["contact_id"], d["occasion"], d["decision"], d["reason"]) for d in shop.plan(AT_MARCH)
    )
    previews = {i: shop.json("preview", "thanks", i, "--at", AT_MARCH) for i in ids}
    shop.tick(AT_MARCH)
    recorded = sorted(
        (
            d["contact_id"],
            d["occasion"],
            "pending" if d["state"] == "sent" else d["state"],
            d["reason"],
        )
        for d in shop.deliveries()
    )
    assert planned == recorded
    for record in shop.outbox():
        message = previews[record["contact_id"]]["message"]
        for key in ("to", "subject", "text", "html"):
            assert record[key] == message[key], key


def test_unsubscribe_after_enqueue_stops_the_waiting_message(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', body="[window]\nhours = [9, 18]\n")
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-02T20:00:00Z")  # 21:00 in Berlin: waits for the morning
    shop.tick("2026-03-02T20:00:00Z")
    assert [d["state"] for d in shop.deliveries()] == ["pending"]
    shop.ok("contacts", "unsubscribe", "c1")
    shop.tick("2026-03-03T08:00:00Z")
    assert shop.outbox() == []
    assert [d["state"] for d in shop.deliveries()] != ["sent"]


def test_daily_limit_counts_the_contacts_local_day(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', daily_limit=1)
    shop.contacts({"id": "tokyo1", "timezone": "Asia/Tokyo"},
                  {"id": "tokyo2", "timezone": "Asia/Tokyo"}, {"id": "berlin"})  # fmt: skip
    shop.order("o1", "tokyo1", "2026-03-01T14:00:00Z")  # 23:00 on 1 March in Tokyo
    shop.tick("2026-03-01T14:00:00Z")
    shop.order("o2", "tokyo2", "2026-03-01T16:00:00Z")  # 01:00 on 2 March in Tokyo: a new day
    shop.tick("2026-03-01T16:00:00Z")
    assert [m["contact_id"] for m in shop.outbox()] == ["tokyo1", "tokyo2"]
    shop.order("o3", "berlin", "2026-03-01T17:00:00Z")  # 18:00 on 1 March in Berlin: spent
    shop.tick("2026-03-01T17:00:00Z")
    assert [m["contact_id"] for m in shop.outbox()] == ["tokyo1", "tokyo2"]
    shop.tick("2026-03-01T23:00:00Z")  # midnight in Berlin
    assert [m["contact_id"] for m in shop.outbox()] == ["tokyo1", "tokyo2", "berlin"]
