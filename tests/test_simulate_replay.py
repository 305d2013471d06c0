"""``simulate`` against the same ticks run one by one as ``regard run --at`` runs them.

The reference replays the period on its own copy of the store with the engine's
:func:`regard.engine.tick` (every trigger asking its own query, every message rendered
and stored whole, each batch in its own transactions) followed by the real
:func:`regard.delivery.dispatch` with the simulated provider, and dispatches again
whenever a waiting delivery's window opens between two ticks, as ``simulate`` does. Every
delivery row that ``simulate`` leaves on its scratch copy must be the reference's: state,
reason, due, ``not_before``, ``sent_at``, attempts, cost and render error.

Hypothesis draws the oracle's shops (time zones, missing addresses and consents, voided
and late events, unsubscribes by contact and by address) and campaigns (every trigger,
audiences, caps, cooldowns, holdouts, windows, daily limits, exits, follow-ups), with a
template that fails for the contacts without a first name: their ``render_error`` must be
the same in both.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import test_engine_oracle as oracle_tests
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.delivery import dispatch
from regard.engine import release_due, tick
from regard.providers.simulated import simulated_provider
from regard.report.simulate import simulate, tick_times
from regard.store import Store, open_store
from regard.store.backtest import copy_store
from regard.store.derived import recompute_all
from regard.times import Instant, to_epoch

simulate_module = importlib.import_module("regard.report.simulate")

# fails for a contact without a first name (the subject names it): a render_error for
# some contacts only, which a replay must not count as sent; the longer the first name,
# the longer the text (an SMS of several segments costs each)
TEMPLATE = """{% block subject %}Hallo {{ contact.first_name }}{% endblock %}
{% block text %}Für {{ contact.id }}: {{ occasion }}{{ " und so weiter" * (contact.first_name or "")|length }}{% endblock %}
{% block card %}Liebe Grüße an {{ contact.first_name }}{% endblock %}
"""
LEDGER = (
    "SELECT campaign, contact_id, occasion, due_at, state, reason, not_before, sent_at,"
    " attempts, cost, last_error, event_id, created_at, expires_at FROM deliveries"
)


def ledger(store: Store) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in store.conn.execute(LEDGER))


def stored_messages(store: Store) -> dict[tuple[str, str, str], Any]:
    """Each delivery's stored message, by (campaign, contact, occasion)."""
    rows = store.conn.execute("SELECT campaign, contact_id, occasion, message FROM deliveries")
    return {(r[0], r[1], r[2]): json.loads(r[3]) if r[3] else None for r in rows}


def replayed(
    path: Path,
    config: Config,
    chosen: list[Campaign],
    start: datetime,
    end: datetime,
    every: timedelta,
    messages: dict[tuple[str, str, str], Any] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """The reference: the ticks one by one as ``regard run --at`` runs them (tick, then
    dispatch), on a copy, with the openings between ticks dispatched as simulate does;
    into ``messages``, if given, the messages its deliveries store."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "runs.db"
        copy_store(path, copy)
        store = open_store(copy)
        try:
            store.backtests.forget_replayed([c.id for c in chosen], to_epoch(start))
            for at in tick_times(start, end, every):
                moment = Instant(to_epoch(at))
                tick(store, config, chosen, moment)
                send(store, config, chosen, moment, released=True)
                before = Instant(to_epoch(min(at + every, end)))
                current = moment
                while (opening := store.backtests.next_waiting(current, before)) is not None:
                    current = opening
                    release_due(store, config, chosen, current)
                    send(store, config, chosen, current, released=True)
            if messages is not None:
                messages.update(stored_messages(store))
            yield from ledger(store)
        finally:
            store.close()


def send(
    store: Store, config: Config, chosen: list[Campaign], at: Instant, *, released: bool
) -> None:
    dispatch(
        store, config, at, campaigns=chosen, released=released,
        provider_factory=simulated_provider,
    )  # fmt: skip


def simulated(
    path: Path,
    config: Config,
    chosen: list[Campaign],
    start: datetime,
    end: datetime,
    every: timedelta,
    messages: dict[tuple[str, str, str], Any] | None = None,
    parts: int = 1,
) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """simulate's result (replayed in ``parts``), and its scratch copies' deliveries as
    they were at its end (into ``messages``, if given, the messages they store). Each
    part's process writes what its copy holds into a file of its own."""
    collected = simulate_module._collected
    with tempfile.TemporaryDirectory() as folder:
        kept = Path(folder)

        def keeping(store: Store, *args: Any) -> Any:
            held = (ledger(store), stored_messages(store) if messages is not None else {})
            (kept / f"{os.getpid()}.pickle").write_bytes(pickle.dumps(held))
            return collected(store, *args)

        with mock.patch.object(simulate_module, "_collected", keeping):
            result = simulate(path, config, chosen, start=start, end=end, every=every,
                              parts=parts)  # fmt: skip
        seen: list[tuple[Any, ...]] = []
        for file in kept.iterdir():
            rows, stored = pickle.loads(file.read_bytes())
            seen.extend(rows)
            if messages is not None:
                messages.update(stored)
    return result, sorted(seen)


def stretched(seconds: int | None) -> Any:
    """simulate with stretches of ``seconds`` (None: as they are)."""
    if seconds is None:
        return contextlib.nullcontext()
    return mock.patch.object(importlib.import_module("regard.report.period"), "STRETCH", seconds)


@st.composite
def replays(draw: st.DrawFn) -> dict[str, Any]:
    scenario = draw(oracle_tests.scenarios())
    scenario["every"] = draw(st.sampled_from([6, 24, 24]))  # hours
    scenario["days"] = draw(st.integers(3, 14))
    scenario["cost"] = draw(st.sampled_from([None, 0.05]))
    # simulate's stretches (the ticks whose occasions one query finds): as long as the
    # period, or a day or two, so that a replay crosses from one stretch to the next
    scenario["stretch"] = draw(st.sampled_from([None, 86400, 2 * 86400]))
    # replayed whole, or in parts side by side (each a share of the contacts)
    scenario["parts"] = draw(st.sampled_from([1, 2, 3]))
    # orders and answers during the period, so that the replay has much to decide
    n_contacts, base = len(scenario["contacts"]), scenario["base"]
    for i in range(draw(st.integers(0, 24))):
        extra = draw(oracle_tests.events(400 + i, n_contacts, base))
        extra["occurred_at"] = int(base.timestamp()) + draw(st.integers(0, 14 * 86400))
        scenario["events"].append(extra)
    # voided before or during the period: what the stretches of simulate filter by T
    scenario["voided"] = draw(
        st.lists(st.tuples(st.integers(0, 30), st.integers(-24 * 3, 24 * 10)), max_size=4)
    )
    return scenario


def period(scenario: dict[str, Any]) -> tuple[datetime, datetime, timedelta]:
    """The replayed period of a drawn scenario: its first tick, its last, between two."""
    start = scenario["base"].astimezone(UTC) + timedelta(minutes=17)
    return start, start + timedelta(days=scenario["days"]), timedelta(hours=scenario["every"])


def build(root: Path, scenario: dict[str, Any]) -> tuple[Path, Config]:
    (root / "templates").mkdir()
    (root / "templates" / "t.j2").write_text(TEMPLATE, encoding="utf-8")
    outbox: dict[str, Any] = {"type": "file", "path": "outbox.jsonl"}
    if scenario["cost"] is not None:
        outbox["cost"] = scenario["cost"]
    config = Config.model_validate({**scenario["config"], "providers": {"outbox": outbox}})
    config._base = root
    path = root / "regard.db"
    base = int(scenario["base"].timestamp())
    store = open_store(path)
    try:
        with store.write() as conn:
            for row in scenario["contacts"]:
                oracle_tests.insert(conn, "contacts", row)
            events = scenario["events"] + scenario["late"]
            for row in events:
                oracle_tests.insert(conn, "events", row)
            for pick, hours in scenario["voided"]:
                if events:
                    voided = events[pick % len(events)]["id"]
                    conn.execute(
                        "UPDATE events SET voided_at = ? WHERE id = ?",
                        (base + hours * 3600, voided),
                    )
            oracle_tests.add_suppressions(conn, scenario)
            recompute_all(conn)
    finally:
        store.close()
    return path, config


@settings(max_examples=60)
@given(replays())
def test_simulate_leaves_the_deliveries_the_ticks_run_one_by_one_leave(
    scenario: dict[str, Any],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path, config = build(Path(folder), scenario)
        chosen: list[Campaign] = scenario["campaigns"]
        start, end, every = period(scenario)
        kept: dict[tuple[str, str, str], Any] = {}
        whole: dict[tuple[str, str, str], Any] = {}
        with stretched(scenario["stretch"]):
            result, fast = simulated(
                path, config, chosen, start, end, every, kept, parts=scenario["parts"]
            )
        slow = list(replayed(path, config, chosen, start, end, every, whole))
        for row in fast:
            event(f"{row[4]} {row[5] or ''}".strip())
        assert fast == slow
        # of each message the replay keeps the address, and an SMS's text, as rendered
        channels = {c.id: c.channel for c in chosen}
        for key, message in kept.items():
            keys = ("to", "text") if channels[key[0]] == "sms" else ("to",)
            assert message == (None if whole[key] is None else {k: whole[key][k] for k in keys})
        sent = sum(c["sent"] for c in result["campaigns"].values())
        assert sent == sum(row[4] == "sent" for row in slow)


def test_a_template_failing_for_some_contacts_is_their_render_error_in_a_replay() -> None:
    """Two contacts, one without a first name: the replay sends one message and records
    the other's render error, as the run does."""
    base = datetime(2026, 3, 2, 8, tzinfo=UTC)
    start = int(base.timestamp())
    people = [
        {"id": f"k{n}", "email": f"k{n}@example.com", "first_name": name, "consent_email": 1,
         "tags": "[]", "attributes": "{}", "created_at": 0, "updated_at": 0}
        for n, name in enumerate(["Anna", None])
    ]  # fmt: skip
    orders = [
        {"id": f"e{n}", "contact_id": f"k{n}", "type": "order", "occurred_at": start - 3600,
         "amount": 10.0, "properties": "{}", "imported_at": 0}
        for n in range(2)
    ]  # fmt: skip
    scenario = {
        "base": base, "contacts": people, "events": orders, "late": [], "voided": [],
        "suppressions": [], "cost": 0.05, "config": {"timezone": "Europe/Berlin"},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path, config = build(Path(folder), scenario)
        thanks = Campaign.model_validate(
            {"channel": "email", "provider": "outbox", "template": "t", "purpose": "service",
             "trigger": {"type": "post_purchase", "delay": "1h"}}
        )  # fmt: skip
        thanks._id = "thanks"
        end = base + timedelta(days=2)
        result, fast = simulated(path, config, [thanks], base, end, timedelta(hours=6))
        slow = list(replayed(path, config, [thanks], base, end, timedelta(hours=6)))
    assert fast == slow
    states = {row[1]: (row[4], row[5]) for row in fast}
    assert states == {"k0": ("sent", None), "k1": ("skipped", "render_error")}
    assert result["campaigns"]["thanks"]["skipped"] == {"render_error": 1}
    assert json.dumps(result["campaigns"]["thanks"]["cost"]) == "0.05"


# stored messages of every shape a store may hold, as deliveries left from before a replay
LEFT = [
    ("pending", json.dumps({"to": "a@example.com"})),
    ("pending", None),
    ("pending", "[1]"),  # not an object: the record cannot be read, retried
    ("pending", json.dumps({"to": "a@example.com", "headers": "x"})),  # nor this one
    ("pending", json.dumps({"to": "+4915112345678", "text": "Hallo " * 40})),  # 2 segments
    ("sending", json.dumps({"to": "a@example.com"})),  # a claim of a run that is gone
]


@pytest.mark.parametrize("channel", ["email", "sms"])
@pytest.mark.parametrize(
    "rows", [[row] for row in LEFT] + [LEFT], ids=[*(str(n) for n in range(len(LEFT))), "all"]
)
def test_deliveries_left_from_before_the_replay_are_sent_as_a_dispatch_sends_them(
    rows: list[tuple[str, str | None]], channel: str
) -> None:
    """Pending (and claimed) deliveries decided before the period, with stored messages of
    every shape a store may hold: the replay's dispatch leaves them as the real one does
    (a claim taken up, a message that cannot be read retried, an SMS costing its
    segments)."""
    base = datetime(2026, 3, 2, 8, tzinfo=UTC)
    start = int(base.timestamp())
    people = [
        {"id": "k0", "email": "k0@example.com", "phone": "+4915112345678", "first_name": "Anna",
         "consent_email": 1, "consent_sms": 1, "tags": "[]", "attributes": "{}",
         "created_at": 0, "updated_at": 0}
    ]  # fmt: skip
    scenario = {
        "base": base, "contacts": people, "events": [], "late": [], "voided": [],
        "suppressions": [], "cost": 0.05, "config": {"timezone": "Europe/Berlin"},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path, config = build(Path(folder), scenario)
        thanks = Campaign.model_validate(
            {"channel": channel, "provider": "outbox", "template": "t", "purpose": "service",
             "trigger": {"type": "post_purchase", "delay": "1h"}}
        )  # fmt: skip
        thanks._id = "thanks"
        store = open_store(path)
        try:
            with store.write() as conn:
                for n, (state, message) in enumerate(rows):
                    oracle_tests.insert(conn, "deliveries", {
                        "id": f"d{n}", "campaign": "thanks", "contact_id": "k0",
                        "occasion": f"o{n}", "channel": channel, "provider": "outbox",
                        "state": state, "due_at": start - 7200, "created_at": start - 7200,
                        "attempts": int(state == "sending"), "message": message,
                        "lease_owner": "gone" if state == "sending" else None,
                        "lease_until": start - 3600 if state == "sending" else None,
                        "updated_at": start - 7200,
                    })  # fmt: skip
        finally:
            store.close()
        end = base + timedelta(days=1)
        _, fast = simulated(path, config, [thanks], base, end, timedelta(hours=6))
        slow = list(replayed(path, config, [thanks], base, end, timedelta(hours=6)))
    # a retry's next attempt has its jitter (regard.delivery.backoff): not compared
    assert [unjittered(r) for r in fast] == [unjittered(r) for r in slow]


def unjittered(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A ledger row without ``not_before`` where an attempt failed (its backoff's jitter)."""
    return row if row[10] is None else (*row[:6], None, *row[7:])
