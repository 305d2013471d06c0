"""Dispatch re-checks what the tick checked, through the real CLI on real files: consent
withdrawn by an import, a campaign disabled, removed or broken after the tick decided, an
occasion gone stale while it waited (daily limit, Retry-After), and windows kept from the
delivery itself when its campaign file changed."""

from __future__ import annotations

from typing import Any

import pytest

from acceptance.conftest import Shop
from conftest import Workspace
from httpsink import Answer, Sink

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
