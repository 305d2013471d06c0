"""SPEC "regard report": per-campaign counts and the shop's retention figures."""

from __future__ import annotations

import pytest

from .conftest import Shop


def test_retention_figures(shop: Shop) -> None:
    shop.contacts({"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"})
    shop.order("a1", "a", "2026-03-01T10:00:00Z", 10)
    shop.order("a2", "a", "2026-03-05T10:00:00Z", 30)
    shop.order("b1", "b", "2026-03-02T10:00:00Z", 20)
    shop.order("c1", "c", "2026-03-03T10:00:00Z", 60)
    shop.events(
        *[
            {"id": f"n-{c}", "contact_id": c, "type": "nps", "amount": score,
             "occurred_at": "2026-03-10T10:00:00Z"}
            for c, score in (("a", 10), ("b", 9), ("c", 3), ("d", 7))
        ]
    )  # fmt: skip
    retention = shop.json("report", "--since", "2026-03-01", "--until", "2026-03-31")["retention"]
    assert retention["average_order_value"] == pytest.approx(120 / 4)
    assert retention["repeat_purchase_rate"] == pytest.approx(1 / 3)
    assert retention["purchase_frequency"] == pytest.approx(4 / 3)
    # % promoters (9–10) − % detractors (0–6): 50 − 25
    assert retention["nps"] == pytest.approx(25)


def test_report_period(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.order("o2", "c1", "2026-05-01T10:00:00Z")
    shop.tick("2026-03-01T10:00:00Z")
    shop.tick("2026-05-01T10:00:00Z")
    march = shop.json("report", "--since", "2026-03-01", "--until", "2026-03-31")
    assert march["campaigns"]["thanks"]["sent"] == 1
    both = shop.json("report", "--since", "2026-01-01", "--until", "2026-12-31")
    assert both["campaigns"]["thanks"]["sent"] == 2
    text = shop.cli("report", "--since", "2026-01-01", "--until", "2026-12-31")
    assert text.exit_code == 0
    assert "thanks" in text.output
