"""The uplift statistics against published answers, and a planted effect recovered."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regard.config import Config
from regard.report import build_report
from regard.report.uplift import compare, difference_interval, wilson_interval
from regard.store import open_store
from shop_rows import add_contact, add_delivery, add_event, campaign, moment


def test_wilson_interval_matches_newcombe_single_proportion_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, example 81/263: 0.2553 to 0.3662
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_wilson_interval_at_the_edges() -> None:
    # 0/10: the upper limit is z²/(n + z²) = 3.8415 / 13.8415
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.27754, abs=1e-5))
    assert wilson_interval(10, 10) == (pytest.approx(0.72246, abs=1e-5), 1.0)


# Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10 (hybrid score)
@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0000),
        (10, 10, 0, 10, 0.6075, 1.0000),
    ],
)
def test_difference_interval_matches_newcombe_table(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    d, ci_low, ci_high = difference_interval(x1, n1, x2, n2)
    assert d == pytest.approx(x1 / n1 - x2 / n2)
    assert (round(ci_low, 4), round(ci_high, 4)) == (low, high)


def test_compare_derived_figures() -> None:
    result = compare(200, 60, 100, 20, cost=500.0)
    assert result.contacted_rate == 0.3
    assert result.holdout_rate == 0.2
    assert result.uplift == pytest.approx(0.1)
    assert result.relative_uplift == pytest.approx(0.5)
    assert result.incremental_conversions == pytest.approx(20.0)
    assert result.cost_per_incremental_conversion == pytest.approx(25.0)
    assert not result.too_small
    assert result.verdict == "unclear"  # the interval of 0.1 with n = 100 still spans zero
    assert result.ci_low is not None and result.ci_low < 0 < result.uplift < result.ci_high


def test_compare_says_plainly_when_it_cannot_tell() -> None:
    assert compare(10, 5, 5, 1).verdict == "too_small"
    assert compare(10, 5, 5, 1).too_small
    none_held = compare(500, 50, 0, 0)
    assert none_held.verdict == "no_control"
    assert none_held.uplift is None and none_held.holdout_rate is None
    assert compare(1000, 300, 1000, 200).verdict == "better"
    assert compare(1000, 200, 1000, 300).verdict == "worse"


def test_planted_effect_is_covered_by_the_interval_in_most_repetitions() -> None:
    rng = random.Random(20261122)
    true_contacted, true_holdout, n = 0.30, 0.20, 400
    covered = detected = 0
    repetitions = 1000
    for _ in range(repetitions):
        x1 = sum(rng.random() < true_contacted for _ in range(n))
        x2 = sum(rng.random() < true_holdout for _ in range(n))
        _, low, high = difference_interval(x1, n, x2, n)
        covered += low <= true_contacted - true_holdout <= high
        detected += low > 0
    assert 0.93 <= covered / repetitions <= 0.97  # nominal 95%
    assert detected / repetitions > 0.9  # and with 400 per arm the effect is found


def test_planted_effect_recovered_through_the_store(tmp_path: Path) -> None:
    """Deliveries and orders written to a real store; the report finds the planted uplift."""
    rng = random.Random(7)
    config = Config.model_validate({"providers": {"outbox": {"type": "file", "path": "o"}}})
    winback = campaign("winback", holdout=0.5, goal={"event": "order", "within": "30d"})
    covered = 0
    repetitions = 12
    for rep in range(repetitions):
        store = open_store(tmp_path / f"rep{rep}.db")
        for i in range(600):
            cid = f"c{i}"
            add_contact(store, cid)
            held = i % 2 == 1
            add_delivery(
                store,
                "winback",
                cid,
                "held_out" if held else "sent",
                "2026-04-10",
                sent=None if held else "2026-04-10",
            )
            if rng.random() < (0.15 if held else 0.30):
                add_event(store, f"e{i}", cid, f"2026-04-{rng.randint(11, 30)}")
        result = build_report(
            store, config, [winback], since=moment("2026-04-01"), until=moment("2026-06-30")
        )
        conversion = result["campaigns"]["winback"]["conversion"]
        assert conversion["contacted"] == conversion["held_out"] == 300
        covered += conversion["ci_low"] <= 0.15 <= conversion["ci_high"]
        store.close()
    assert covered >= repetitions - 2


@st.composite
def two_arms(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n1, n2 = draw(st.integers(1, 5000)), draw(st.integers(1, 5000))
    return draw(st.integers(0, n1)), n1, draw(st.integers(0, n2)), n2


@given(two_arms())
def test_interval_holds_the_estimate_and_mirrors_when_arms_swap(
    arms: tuple[int, int, int, int],
) -> None:
    x1, n1, x2, n2 = arms
    d, low, high = difference_interval(x1, n1, x2, n2)
    assert -1.0 <= low <= d + 1e-12 and d - 1e-12 <= high <= 1.0
    for x, n in ((x1, n1), (x2, n2)):
        w_low, w_high = wilson_interval(x, n)
        assert w_low <= x / n + 1e-12 and x / n - 1e-12 <= w_high
    d2, low2, high2 = difference_interval(x2, n2, x1, n1)
    assert (d2, low2, high2) == pytest.approx((-d, -high, -low), abs=1e-12)
