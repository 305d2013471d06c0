"""Each retention figure and each campaign count against a store built by hand.

The period is 2026-04-01 to 2026-06-30 (UTC), the churn horizon 60 days, so a customer
is active at the start with an order in [01-31, 04-01) and at the end with one in
(05-01, 06-30]. Worked out on paper:

  contact  orders (amount)                                   start  end  new
  A        03-10 (40), 04-15 (60), 06-01 (20)                 yes    yes  no
  B        02-20 (100)                                        yes    no   no
  C        2025-10-01 (50), 05-10 (30)                        no     yes  no
  D        04-05 (80)                                         no     no   yes
  E        05-20 (10), 06-10 (30)                             no     yes  yes
  F        03-25 (25)                                         yes    no   no

  orders in the period: A 2, C 1, D 1, E 2 = 6, by 4 customers, 2 of them twice
  repeat purchase rate 2/4; revenue 230, AOV 230/6; purchase frequency 6/4
  S = 3 (A, B, F), E = 3 (A, C, E), N = 1 (E): retention (3 − 1)/3; churned B, F: 2/3
  customer value 230/6 × 1.5 = 57.5; CLV 57.5 / (2/3) = 86.25
  NPS latest answers in the period: A 6 (after a 9), G 10, C 7, E 0 (D's is before):
  1 promoter, 2 detractors of 4 → −25
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from regard.config import Config
from regard.report import build_report
from regard.report.uplift import difference_interval
from regard.store import Store, open_store
from shop_rows import add_contact, add_delivery, add_event, campaign, moment

SINCE, UNTIL = moment("2026-04-01"), moment("2026-06-30")


@pytest.fixture
def shop(tmp_path: Path) -> Store:
    store = open_store(tmp_path / "shop.db")
    for cid in "ABCDEFG":
        add_contact(store, cid, first_name=f"Kunde {cid}")
    orders = [
        ("A", "2026-03-10", 40), ("A", "2026-04-15", 60), ("A", "2026-06-01", 20),
        ("B", "2026-02-20", 100),
        ("C", "2025-10-01", 50), ("C", "2026-05-10", 30),
        ("D", "2026-04-05", 80),
        ("E", "2026-05-20", 10), ("E", "2026-06-10", 30),
        ("F", "2026-03-25", 25),
    ]  # fmt: skip
    for i, (cid, when, amount) in enumerate(orders):
        add_event(store, f"o{i}", cid, when, amount=amount)
    answers = [
        ("A", "2026-04-20", 9), ("A", "2026-06-02", 6), ("G", "2026-05-01", 10),
        ("C", "2026-05-15", 7), ("D", "2026-03-01", 3), ("E", "2026-06-20", 0),
    ]  # fmt: skip
    for i, (cid, when, score) in enumerate(answers):
        add_event(store, f"n{i}", cid, when, type="nps", amount=score)
    return store


def report(store: Store, config: Config | None = None, **kwargs: object) -> dict[str, object]:
    config = config or Config.model_validate({})
    winback = campaign("winback", holdout=0.3, goal={"event": "order", "within": "30d"})
    plain = campaign("birthday")
    return build_report(
        store,
        config,
        [winback, plain],
        since=SINCE,
        until=UNTIL,
        horizon=timedelta(days=60),
        **kwargs,  # type: ignore[arg-type]
    )


def test_retention_figures(shop: Store) -> None:
    r = report(shop)["retention"]
    assert isinstance(r, dict)
    assert r["customers"] == 4
    assert r["orders"] == 6
    assert r["repeat_purchase_rate"] == pytest.approx(0.5)
    assert r["average_order_value"] == pytest.approx(230 / 6)
    assert r["purchase_frequency"] == pytest.approx(1.5)
    assert (r["customers_at_start"], r["customers_at_end"], r["new_customers"]) == (3, 3, 1)
    assert r["retention_rate"] == pytest.approx(2 / 3)
    assert r["churned"] == 2
    assert r["churn_rate"] == pytest.approx(2 / 3)
    assert r["customer_value"] == pytest.approx(57.5)
    assert r["customer_lifetime_value"] == pytest.approx(86.25)
    assert (r["nps_answers"], r["promoters"], r["detractors"]) == (4, 1, 2)
    assert r["nps"] == pytest.approx(-25.0)


def test_cohort_curve(shop: Store) -> None:
    cohorts = report(shop)["retention"]["cohorts"]  # type: ignore[index]
    # first orders in the period: D in April (nothing after), E in May (again in June)
    assert cohorts == [
        {"cohort": "2026-04", "customers": 1, "active": [1.0, 0.0, 0.0]},
        {"cohort": "2026-05", "customers": 1, "active": [1.0, 1.0]},
    ]


def test_empty_store_has_no_figures_rather_than_zeros(tmp_path: Path) -> None:
    r = report(open_store(tmp_path / "empty.db"))["retention"]
    assert isinstance(r, dict)
    for key in ("repeat_purchase_rate", "churn_rate", "retention_rate", "nps"):
        assert r[key] is None
    assert r["average_order_value"] is None and r["purchase_frequency"] is None


def add_winback_deliveries(store: Store) -> None:
    """Seven more contacts. Contacted on 04-10: w1 orders 04-15 (converts), w2 40 days on
    (too late), w3 never, w4 only before. Held out on 04-10: w5 orders the next day, w6
    exactly 30 days on (still counts), w7 only before. Contacted 1/4, held out 2/3."""
    for i in range(1, 8):
        add_contact(store, f"w{i}")
    for cid in ("w1", "w2", "w3", "w4"):
        add_delivery(store, "winback", cid, "sent", "2026-04-10", sent="2026-04-10")
    for cid in ("w5", "w6", "w7"):
        add_delivery(store, "winback", cid, "held_out", "2026-04-10")
    add_event(store, "x1", "w1", "2026-04-15", amount=5)
    add_event(store, "x2", "w2", "2026-05-20T12:00", amount=5)
    add_event(store, "x4", "w4", "2026-04-05", amount=5)
    add_event(store, "x5", "w5", "2026-04-11", amount=5)
    add_event(store, "x6", "w6", "2026-05-10", amount=5)
    add_event(store, "x7", "w7", "2026-04-09", amount=5)
    add_delivery(store, "winback", "A", "skipped", "2026-05-01", reason="no_consent")
    add_delivery(store, "winback", "B", "skipped", "2026-05-01", reason="no_consent")
    add_delivery(store, "winback", "C", "skipped", "2026-05-01", reason="capped")
    add_delivery(store, "winback", "D", "pending", "2026-06-29")
    add_delivery(store, "winback", "E", "dead", "2026-06-01", reason="422 rejected")
    add_delivery(store, "winback", "F", "sent", "2026-03-01", sent="2026-03-01")  # before


def test_campaign_counts_and_conversion(shop: Store) -> None:
    add_winback_deliveries(shop)
    config = Config.model_validate(
        {"providers": {"outbox": {"type": "file", "path": "o", "cost": "2.50"}}}
    )
    result = report(shop, config)
    campaigns = result["campaigns"]
    assert isinstance(campaigns, dict)
    assert set(campaigns) == {"winback", "birthday"}
    w = campaigns["winback"]
    assert (w["due"], w["sent"], w["held_out"], w["pending"], w["dead"]) == (12, 4, 3, 1, 1)
    assert w["skipped"] == {"capped": 1, "no_consent": 2}
    assert w["cost"] == pytest.approx(10.0)
    assert w["sent_per_week"] == {"2026-04-06": 4}
    c = w["conversion"]
    # A and B (B's 05-20 order is outside 30 days, but A's 04-15 counts) → 1 of 4
    assert (c["contacted"], c["contacted_converted"]) == (4, 1)
    assert (c["held_out"], c["held_out_converted"]) == (3, 2)
    assert c["contacted_rate"] == 0.25
    assert c["holdout_rate"] == pytest.approx(2 / 3)
    d, low, high = difference_interval(1, 4, 2, 3)
    assert (c["uplift"], c["ci_low"], c["ci_high"]) == (d, low, high)
    assert c["too_small"] is True and c["verdict"] == "too_small"
    assert c["cost_per_incremental_conversion"] is None  # no incremental conversions
    assert "conversion" not in campaigns["birthday"]
    assert campaigns["birthday"]["sent"] == 0


def test_campaign_filter_keeps_shop_figures(shop: Store) -> None:
    add_winback_deliveries(shop)
    result = report(shop, campaign="winback")
    assert list(result["campaigns"]) == ["winback"]  # type: ignore[call-overload]
    assert result["retention"]["orders"] == 6 + 6  # type: ignore[index]
