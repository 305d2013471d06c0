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


def _share(campaign: str, contact: str) -> float:
    import hashlib

    digest = hashlib.sha256(f"{campaign}:{contact}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def test_conversion_sent_against_held_out(shop: Shop) -> None:
    ids = [f"k{n}" for n in range(60)]
    held = [i for i in ids if _share("thanks", i) < 0.5][:4]
    sent = [i for i in ids if _share("thanks", i) >= 0.5][:4]
    shop.campaign("thanks", 'type = "post_purchase"\n', holdout=0.5,
                  body='[goal]\nevent = "order"\nwithin = "30d"\n')  # fmt: skip
    shop.contacts(*[{"id": i} for i in held + sent])
    shop.events(*[{"id": f"o-{i}", "contact_id": i, "occurred_at": "2026-03-01T10:00:00Z"}
                  for i in held + sent])  # fmt: skip
    shop.tick("2026-03-01T10:00:00Z")
    # three of four contacted order again within 30 days, one of four held out does
    converts = [*sent[:3], held[0]]
    shop.events(*[{"id": f"again-{i}", "contact_id": i, "occurred_at": "2026-03-10T10:00:00Z"}
                  for i in converts])  # fmt: skip
    shop.order("late", sent[3], "2026-05-10T10:00:00Z")  # outside the goal's 30 days
    report = shop.json("report", "--since", "2026-02-01", "--until", "2026-06-30")
    thanks = report["campaigns"]["thanks"]
    assert (thanks["sent"], thanks["held_out"]) == (4, 4)
    conversion = thanks["conversion"]
    assert conversion["contacted_rate"] == pytest.approx(0.75)
    assert conversion["holdout_rate"] == pytest.approx(0.25)
    assert conversion["uplift"] == pytest.approx(0.5)
    assert conversion["ci_low"] < 0.5 < conversion["ci_high"]
