"""``simulate`` over a period: what it finds once per stretch is, tick by tick, what each
tick's own trigger query finds (lapses, milestones, ``nth`` events, order and sign-up
anniversaries, with orders voided during the period), and a whole replay gives the same
counts as one that asks every trigger per tick and renders every message."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from conftest import Workspace
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.delivery import dispatch
from regard.providers.simulated import simulated_provider
from regard.report.period import PeriodOccasions
from regard.report.simulate import simulate
from regard.store import Store, open_store
from regard.store.importer import import_contacts, import_events
from regard.synthetic import generate
from regard.times import Instant
from regard.triggers import due_occasions
from regard.workspace import load_config
from shop_rows import campaign, instant

tick_module = importlib.import_module("regard.engine.tick")
simulate_module = importlib.import_module("regard.report.simulate")
period_module = importlib.import_module("regard.report.period")

# (id, trigger, max_lateness)
TRIGGERS: list[tuple[str, dict[str, Any], str]] = [
    ("lapse", {"type": "inactivity", "after": "60d"}, "7d"),
    (
        "lapse-twice",
        {"type": "inactivity", "after": "30d", "events": ["order", "nps"], "min_events": 2},
        "2d",
    ),
    ("third", {"type": "milestone", "metric": "order_count", "threshold": 3}, "7d"),
    (
        "spent",
        {"type": "milestone", "metric": "total_spent", "threshold": 150, "delay": "1d"},
        "3d",
    ),
    ("first", {"type": "post_purchase", "nth": 1, "delay": "2d"}, "3d"),
    (
        "second-big",
        {"type": "event", "event": "order", "nth": 2, "where": {"amount": {"min": 20}}},
        "7d",
    ),
    ("order-day", {"type": "anniversary", "field": "first_order_at"}, "7d"),
    (
        "signup-day",
        {"type": "anniversary", "field": "signup_at", "offset": "-7d", "at": "07:30"},
        "1d",
    ),
]
CAMPAIGNS = [campaign(cid, trigger, max_lateness=late) for cid, trigger, late in TRIGGERS]


def synthetic_year(workspace: Workspace, voided: bool) -> tuple[Store, Config]:
    """Two years of a 400-contact shop; with ``voided``, every seventh order is cancelled
    five days after it was placed."""
    contacts, events = generate(5, 400, start=date(2024, 1, 1), end=date(2026, 1, 1)).write_csv(
        workspace.root / "shop"
    )
    store = open_store(workspace.store_target)
    config = load_config(workspace.config)
    import_contacts(store, config, contacts)
    import_events(store, config, events)
    if voided:
        with store.write() as conn:
            conn.execute(
                "UPDATE events SET voided_at = occurred_at + 5 * 86400"
                " WHERE type = 'order' AND abs(occurred_at) % 7 = 0"
            )
    return store, config


@pytest.mark.parametrize("voided", [True, False], ids=["voided-orders", "no-voids"])
def test_each_ticks_occasions_found_once_per_stretch(workspace: Workspace, voided: bool) -> None:
    store, config = synthetic_year(workspace, voided)
    start = instant("2025-01-01T06:00:00Z")
    found = PeriodOccasions(store, config, start)
    seen = dict.fromkeys((c.id for c in CAMPAIGNS), 0)
    ticks = 0
    for n in range(0, 365, 2):
        at = start + n * 86400 + (n % 7) * 3600
        for c in CAMPAIGNS:
            span = tick_module.campaign_span(config, c, at)
            assert span is not None
            mine = sorted(found(c, span))
            assert mine == due_occasions(store, config, c.trigger, span), (c.id, at)
            seen[c.id] += len(mine)
        ticks += 1
    assert all(seen.values()), seen  # every trigger found something to compare
    # each campaign: a query per stretch, and per tick one for the contacts with a voided
    # order (none without voids)
    per_tick = sum(c.id != "signup-day" for c in CAMPAIGNS)
    assert found.queries <= 13 * len(CAMPAIGNS) + 2 + (ticks * per_tick if voided else 0)
    if not voided:
        assert found.queries < ticks  # not one per tick and campaign


def test_too_many_voided_contacts_ask_per_tick(workspace: Workspace) -> None:
    """With more contacts with a voided order than are asked apart, the trigger's own
    query answers each tick: the same occasions."""
    store, config = synthetic_year(workspace, voided=True)
    start = instant("2025-02-01T06:00:00Z")
    with mock.patch.object(period_module, "VOIDED_MAX", 3):
        found = PeriodOccasions(store, config, start)
        for n in range(0, 60, 5):
            at = start + n * 86400
            for c in CAMPAIGNS[:4]:
                span = tick_module.campaign_span(config, c, at)
                assert span is not None
                assert sorted(found(c, span)) == due_occasions(store, config, c.trigger, span)


TEMPLATE = (
    "{% block subject %}Hallo {{ contact | greeting }}{% endblock %}"
    "{% block text %}Hallo {{ contact | greeting }}, {{ contact.id }}{% endblock %}"
)
CARD = "{% block card %}Danke, {{ contact | greeting }}!{% endblock %}"


def _counts(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("sent", "held_out", "pending", "skipped", "cost")
    return {cid: {k: c[k] for k in keep} for cid, c in result["campaigns"].items()}


def test_a_replay_counts_as_one_asking_rendering_and_dispatching_each_time(
    workspace: Workspace,
) -> None:
    """The whole replay: the counts (sent, held out, pending, skipped by reason, cost) are
    those of a replay whose every tick asks its triggers, renders every message and
    dispatches through the real dispatch."""
    store, _ = synthetic_year(workspace, voided=True)
    store.close()
    workspace.write("templates/t.j2", TEMPLATE)
    workspace.write("templates/card.j2", CARD)
    workspace.write("templates/broken.j2", "{% block subject %}x{% endblock %}")
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(text + "cost = 0.05\n", encoding="utf-8")  # the outbox's
    config = load_config(workspace.config)
    # a window on weekdays 10 to 16, so that waiting deliveries go out when it opens
    window = {"days": ["mon", "tue", "wed", "thu", "fri"], "hours": [10, 16]}
    replayed: list[Campaign] = [
        campaign(
            cid,
            trigger,
            template="t",
            holdout=0.1,
            max_lateness=late,
            window=window if n % 2 else None,
        )
        for n, (cid, trigger, late) in enumerate(TRIGGERS)
    ]
    replayed.append(campaign("no-body", {"type": "post_purchase"}, template="broken"))
    replayed.append(
        campaign(
            "after-lapse",
            {"type": "followup", "campaign": "lapse", "delay": "3d"},
            template="t",
            purpose="service",
        )
    )
    start = datetime(2025, 3, 1, 9, tzinfo=UTC)
    end = start + timedelta(days=120)
    fast = simulate(workspace.store_target, config, replayed, start=start, end=end)

    def dispatched(store: Store, config: Config, at: Instant, loaded: list[Campaign]) -> None:
        dispatch(store, config, at, campaigns=loaded, provider_factory=simulated_provider)

    with (
        mock.patch.object(period_module, "_once_kind", lambda trigger: None),
        mock.patch.object(simulate_module, "_dispatch", dispatched),
    ):
        slow = simulate(workspace.store_target, config, replayed, start=start, end=end)
    assert _counts(fast) == _counts(slow)
    assert all(fast["campaigns"][c.id]["sent"] for c in replayed if c.id != "no-body")
    assert fast["campaigns"]["lapse"]["cost"] and slow["campaigns"]["lapse"]["cost"]
    assert fast["campaigns"]["no-body"]["skipped"].get("render_error")
