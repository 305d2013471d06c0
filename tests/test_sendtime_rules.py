"""Dispatch re-checks what the tick checked, through the real CLI on real files: consent
withdrawn by an import, a campaign disabled, removed or broken after the tick decided, an
occasion gone stale while it waited (daily limit, Retry-After), and windows kept from the
delivery itself when its campaign file changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acceptance.conftest import Shop
from conftest import Workspace
from faults.rows import add_pending
from httpsink import Answer, Sink
from regard.store import Store, open_store
from regard.store.sendtime import SendContext

WINDOW = "[window]\nhours = [9, 18]\n"
# 20:30 in Berlin: the window (9–18) is closed, the delivery waits for 9:00 tomorrow
EVENING = "2026-03-02T19:30:00Z"
NEXT_MORNING = "2026-03-03T08:30:00Z"  # 9:30 in Berlin


@pytest.fixture
def shop(workspace: Workspace) -> Shop:
    return Shop(workspace)


def waiting_for_the_window(shop: Shop) -> dict[str, Any]:
    shop.campaign("thanks", 'type = "post_purchase"\n', body=WINDOW)
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-02T19:00:00Z")
    shop.tick(EVENING)
    [delivery] = shop.deliveries()
    assert delivery["state"] == "pending"
    assert delivery["next_attempt_at"] == "2026-03-03T08:00:00Z"
    return delivery


def state_and_reason(shop: Shop) -> tuple[str, str | None]:
    [delivery] = shop.deliveries()
    return delivery["state"], delivery["reason"]


def test_consent_withdrawn_by_an_import_stops_the_pending_delivery(shop: Shop) -> None:
    waiting_for_the_window(shop)
    shop.contacts({"id": "c1", "consent_email": False})
    shop.tick(NEXT_MORNING)
    assert state_and_reason(shop) == ("cancelled", "no_consent")
    assert shop.outbox() == []


def test_a_campaign_disabled_after_the_tick_sends_nothing(shop: Shop) -> None:
    waiting_for_the_window(shop)
    shop.campaign("thanks", 'type = "post_purchase"\n', body=WINDOW, enabled=False)
    shop.tick(NEXT_MORNING)
    assert state_and_reason(shop) == ("cancelled", "campaign_disabled")
    assert shop.outbox() == []


def test_a_campaign_file_removed_after_the_tick_sends_nothing(shop: Shop) -> None:
    waiting_for_the_window(shop)
    (shop.root / "campaigns" / "thanks.toml").unlink()
    shop.tick(NEXT_MORNING)
    assert state_and_reason(shop) == ("cancelled", "campaign_removed")
    assert shop.outbox() == []


def test_a_broken_campaign_file_holds_its_deliveries_until_it_is_fixed(shop: Shop) -> None:
    waiting_for_the_window(shop)
    path = shop.root / "campaigns" / "thanks.toml"
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("[trigger]", "[trigger\n"), encoding="utf-8")
    result = shop.tick(NEXT_MORNING, code=1)
    assert "thanks.toml" in result.output
    assert state_and_reason(shop) == ("pending", None)
    assert shop.outbox() == []
    path.write_text(good, encoding="utf-8")
    shop.tick("2026-03-03T08:40:00Z")
    assert state_and_reason(shop) == ("sent", None)
    assert len(shop.outbox()) == 1


def test_the_window_is_the_deliverys_own_when_its_campaign_changed(shop: Shop, sink: Sink) -> None:
    """Tried at 17:58 in Berlin, answered 503; the next attempt is due at 18:00. The
    campaign's file has lost its [window] since: the delivery still keeps 9–18 and waits
    for 9:00 the next day instead of going out at 18:30."""
    shop.configure(
        f'[providers.hooks]\ntype = "webhook"\nurl = "{sink.url}/regard"\nsecret = "s"\n'
        '[delivery]\nbackoff = "1m"\nmax_backoff = "1m"\n'
    )
    shop.campaign("thanks", 'type = "post_purchase"\n', body=WINDOW, provider="hooks")
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-02T16:50:00Z")
    sink.script(Answer(503, {"error": "later"}))
    shop.tick("2026-03-02T16:58:00Z")
    assert state_and_reason(shop) == ("pending", None)
    shop.campaign("thanks", 'type = "post_purchase"\n', provider="hooks")  # no [window]
    shop.tick("2026-03-02T17:30:00Z")  # 18:30 in Berlin
    [delivery] = shop.deliveries()
    assert len(sink.requests) == 1
    assert (delivery["state"], delivery["next_attempt_at"]) == ("pending", "2026-03-03T08:00:00Z")
    shop.tick("2026-03-03T08:05:00Z")
    assert state_and_reason(shop) == ("sent", None)


def test_a_birthday_held_back_by_the_daily_limit_is_not_sent_a_day_late(shop: Shop) -> None:
    """daily_limit = 1, three birthdays on one day, max_lateness 12h: one goes out on the
    day; the other two are too late the next morning and are cancelled, never sent."""
    shop.campaign(
        "birthday",
        'type = "anniversary"\nfield = "birthday"\nat = "09:00"\n',
        max_lateness="12h",
        daily_limit=1,
    )
    shop.contacts(*({"id": f"b{i}", "birthday": "1990-06-01"} for i in range(3)))
    shop.tick("2026-06-01T07:05:00Z")  # 9:05 in Berlin
    assert len(shop.outbox()) == 1
    shop.tick("2026-06-02T07:05:00Z")
    states = sorted((d["state"], d["reason"]) for d in shop.deliveries())
    assert states == [("cancelled", "too_late"), ("cancelled", "too_late"), ("sent", None)]
    assert len(shop.outbox()) == 1
    assert shop.json("report")["campaigns"]["birthday"]["sent"] == 1


def test_a_retry_after_past_the_lateness_is_not_sent(shop: Shop, sink: Sink) -> None:
    shop.configure(
        f'[providers.hooks]\ntype = "webhook"\nurl = "{sink.url}/regard"\nsecret = "s"\n'
    )
    shop.campaign("hook", 'type = "post_purchase"\n', channel="webhook", provider="hooks",
                  max_lateness="1h")  # fmt: skip
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T09:00:00Z")
    sink.script(Answer(429, {}, {"Retry-After": "7200"}))
    shop.tick("2026-03-01T09:10:00Z")
    [delivery] = shop.deliveries()
    assert delivery["next_attempt_at"] == "2026-03-01T11:10:00Z"
    shop.tick("2026-03-01T11:10:00Z")
    assert state_and_reason(shop) == ("cancelled", "too_late")
    assert len(sink.requests) == 1


# -- the rules themselves, on both engines -----------------------------------------------
# Each rule is SQL over the delivery row; on PostgreSQL the rules reading JSON have a
# native form (jsonb operators). The same rows, the same context: the same verdicts.

RULES_AT = 1_780_000_000
RULES_CONTEXT = SendContext(
    {"email": "opt-in", "webhook": "opt-out", "sms": "existing-customer"},
    {"thanks": "enabled", "off": "disabled", "bad": "broken"},
)
# delivery → (channel, message's to, contact's consent_email, attributes, campaign, purpose,
# what the rules make of it: (state, reason))
RULE_CASES: dict[str, tuple[str, Any, int | None, dict[str, Any], str, str, tuple[str, Any]]] = {
    "bounced_address": ("email", "B@Example.org", 1, {}, "thanks", "marketing",
                        ("skipped", "bounced")),
    "unsubscribed_address": ("email", "u@example.org", 1, {}, "thanks", "marketing",
                             ("skipped", "unsubscribed")),
    "unsubscribed_contact": ("email", "x@example.org", 1, {}, "thanks", "marketing",
                             ("skipped", "unsubscribed")),
    "unsubscribed_service": ("email", "x2@example.org", 1, {}, "thanks", "service",
                             ("pending", None)),
    "bounced_no_address": ("webhook", None, None, {}, "thanks", "marketing",
                           ("skipped", "bounced")),
    "to_not_text": ("webhook", 5, None, {}, "thanks", "marketing", ("pending", None)),
    "email_consent_off": ("email", "c@example.org", 0, {}, "thanks", "marketing",
                          ("cancelled", "no_consent")),
    "email_consent_on": ("email", "d@example.org", 1, {}, "thanks", "marketing",
                         ("pending", None)),
    "webhook_false": ("webhook", None, None, {"consent_webhook": False}, "thanks",
                      "marketing", ("cancelled", "no_consent")),
    "webhook_no": ("webhook", None, None, {"consent_webhook": " No "}, "thanks", "marketing",
                   ("cancelled", "no_consent")),
    "webhook_zero": ("webhook", None, None, {"consent_webhook": 0}, "thanks", "marketing",
                     ("cancelled", "no_consent")),
    "webhook_true": ("webhook", None, None, {"consent_webhook": True}, "thanks", "marketing",
                     ("pending", None)),
    "webhook_yes": ("webhook", None, None, {"consent_webhook": "yes"}, "thanks", "marketing",
                    ("pending", None)),
    "webhook_one_point_o": ("webhook", None, None, {"consent_webhook": 1.5}, "thanks",
                            "marketing", ("pending", None)),
    "webhook_unset": ("webhook", None, None, {"other": False}, "thanks", "marketing",
                      ("pending", None)),
    "webhook_service": ("webhook", None, None, {"consent_webhook": False}, "thanks",
                        "service", ("pending", None)),
    "disabled": ("email", "e@example.org", 1, {}, "off", "marketing",
                 ("cancelled", "campaign_disabled")),
    "removed": ("email", "f@example.org", 1, {}, "gone", "marketing",
                ("cancelled", "campaign_removed")),
    "broken": ("email", "g@example.org", 1, {}, "bad", "marketing", ("pending", None)),
}  # fmt: skip


def rule_verdicts(store: Store) -> tuple[dict[str, int], dict[str, tuple[str, Any]]]:
    with store.write() as conn:
        for name, (channel, to, consent, attributes, campaign, purpose, _) in RULE_CASES.items():
            conn.execute(
                "INSERT INTO contacts (id, email, consent_email, attributes, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, 0, 0)",
                (name, to if isinstance(to, str) else None, consent, json.dumps(attributes)),
            )
            add_pending(store, [name], campaign=campaign, channel=channel, purpose=purpose,
                        message=json.dumps({"to": to, "subject": None, "text": "Hallo"}),
                        due_at=RULES_AT - 60)  # fmt: skip
        suppressions = [
            (None, "email", "b@example.org", "bounced"),
            (None, "*", "u@example.org", "unsubscribed"),
            ("unsubscribed_contact", "email", None, "unsubscribed"),
            ("unsubscribed_service", "*", None, "unsubscribed"),
            ("bounced_no_address", "webhook", None, "bounced"),
        ]
        conn.executemany(
            "INSERT INTO suppressions (contact_id, channel, address, kind, reason, created_at)"
            " VALUES (?, ?, ?, ?, 'test', 0)",
            suppressions,
        )
    counts = store.deliveries.stop_due(RULES_AT, RULES_CONTEXT)
    rows = store.conn.execute("SELECT contact_id, state, reason FROM deliveries").fetchall()
    return counts, {str(r[0]): (str(r[1]), r[2]) for r in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store on each engine (PostgreSQL: a database of the test cluster)."""
    if request.param == "sqlite":
        target: str | Path = tmp_path / "regard.db"
    else:
        target = str(request.getfixturevalue("pg_url"))
    with open_store(target) as opened:
        yield opened


def test_the_send_time_rules_decide_the_same_on_both_engines(either_store: Store) -> None:
    counts, verdicts = rule_verdicts(either_store)
    assert verdicts == {name: case[-1] for name, case in RULE_CASES.items()}
    assert counts == {
        "bounced": 2, "unsubscribed": 2, "no_consent": 4, "campaign_disabled": 1,
        "campaign_removed": 1, "campaign_broken": 1,
    }  # fmt: skip
    # what is held or left is what a dispatch would claim (the broken campaign's is held)
    claimed = either_store.deliveries.claim(
        provider="sink", owner="o", at=RULES_AT, now=RULES_AT, lease_seconds=60, limit=100,
        context=RULES_CONTEXT,
    )  # fmt: skip
    left = {n for n, case in RULE_CASES.items() if case[-1] == ("pending", None)} - {"broken"}
    assert {c.contact_id for c in claimed} == left
    assert all(c.attempt == 1 and c.first_attempt_at == RULES_AT for c in claimed)
