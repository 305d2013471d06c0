"""``simulate`` in parts side by side: the store split by contact, each part replayed in its
own process, the results merged into what one replay of the whole store gives.

The deliveries each part leaves are checked against the ticks run one by one in
``test_simulate_replay`` (its oracle draws the number of parts); here: the split itself,
the merged summary against one replay's, what is replayed whole, and a part that fails."""

from __future__ import annotations

import importlib
import os
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings

import test_engine_oracle as oracle_tests
from conftest import child_processes
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.report.parts import replay_in_parts, splittable
from regard.report.simulate import MAX_OPENINGS_PER_TICK, Replayed, simulate
from regard.store import Store, open_store
from regard.store.parts import BY_CONTACT, BY_DELIVERY, WHOLE, part_of, split_store
from regard.times import Instant
from test_simulate_replay import build, period, replays

simulate_module = importlib.import_module("regard.report.simulate")
parts_module = importlib.import_module("regard.report.parts")


def _shop(path: Path, contacts: int = 30) -> None:
    """A store with contacts, their orders and deliveries (with history), suppressions."""
    store = open_store(path)
    try:
        with store.write() as conn:
            for n in range(contacts):
                oracle_tests.insert(conn, "contacts", {
                    "id": f"k{n}", "email": f"k{n}@example.com", "first_name": "Anna",
                    "tags": "[]", "attributes": "{}", "created_at": 0, "updated_at": 0,
                })  # fmt: skip
                for m in range(n % 3):
                    oracle_tests.insert(conn, "events", {
                        "id": f"e{n}-{m}", "contact_id": f"k{n}", "type": "order",
                        "occurred_at": 1000 + m, "amount": 10.0, "properties": "{}",
                        "imported_at": 0,
                    })  # fmt: skip
                oracle_tests.insert(conn, "deliveries", {
                    "id": f"d{n}", "campaign": "thanks", "contact_id": f"k{n}",
                    "occasion": "o", "channel": "email", "provider": "outbox", "state": "sent",
                    "due_at": 0, "created_at": 0, "updated_at": 0,
                })  # fmt: skip
                conn.execute(
                    "INSERT INTO delivery_log (delivery_id, at, state) VALUES (?, 0, 'sent')",
                    (f"d{n}",),
                )
            conn.execute(
                "INSERT INTO suppressions (contact_id, channel, address, reason, created_at)"
                " VALUES (NULL, 'email', 'k3@example.com', 'bounce', 0)"
            )
    finally:
        store.close()


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute(sql).fetchall())
    finally:
        conn.close()


def test_each_contact_is_in_one_part_with_everything_that_is_theirs(tmp_path: Path) -> None:
    source = tmp_path / "regard.db"
    _shop(source)
    split = split_store(source, tmp_path, 3)
    assert [p.name for p in split.paths] == ["part-0.db", "part-1.db", "part-2.db"]
    for path in split.paths:  # each part is a store once its indexes are built
        parts_module.build_indexes(path, split.indexes)
    for table, column in {**BY_CONTACT, "delivery_log": "delivery_id"}.items():
        whole = _rows(source, f"SELECT * FROM {table}")
        held = [_rows(p, f"SELECT * FROM {table}") for p in split.paths]
        assert sorted(r for rows in held for r in rows) == whole, table
        assert all(held), f"{table}: a part without rows (30 contacts in 3 parts)"
        for k, path in enumerate(split.paths):
            owners = _rows(path, f"SELECT {column} FROM {table}")
            if table == "delivery_log":
                owners = [(f"k{o[0][1:]}",) for o in owners]  # d7 is k7's
            assert {part_of(o[0], 3) for o in owners} <= {k}, table
    for table in WHOLE:
        whole = _rows(source, f"SELECT * FROM {table}")
        assert all(_rows(p, f"SELECT * FROM {table}") == whole for p in split.paths), table
    for path in split.paths:
        store = open_store(path)
        try:  # a part opens as a store: its schema and migrations are the source's
            assert store.contacts.get(_rows(path, "SELECT id FROM contacts")[0][0]) is not None
            indexes = _rows(path, "SELECT name FROM sqlite_master WHERE type = 'index'")
        finally:
            store.close()
        assert indexes == _rows(source, "SELECT name FROM sqlite_master WHERE type = 'index'")


def test_every_table_has_a_rule_and_a_new_one_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "regard.db"
    _shop(source, contacts=2)
    tables = {r[0] for r in _rows(source, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables <= {*BY_CONTACT, *BY_DELIVERY, *WHOLE}
    conn = sqlite3.connect(source)
    conn.execute("CREATE TABLE notes (contact_id TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="no rule to split the tables notes"):
        split_store(source, tmp_path, 2)


def _without_timing(result: dict[str, Any]) -> dict[str, Any]:
    timing = ("duration_seconds", "ticks_per_second", "parts")
    return {k: v for k, v in result.items() if k not in timing}


@settings(max_examples=25)
@given(replays())
def test_a_replay_in_parts_says_what_one_replay_of_the_whole_store_says(
    scenario: dict[str, Any],
) -> None:
    """Counts by campaign, week, state and reason, costs, and the samples of recipients
    (the first sent of each campaign and week), merged from the parts."""
    with tempfile.TemporaryDirectory() as folder:
        path, config = build(Path(folder), scenario)
        chosen: list[Campaign] = scenario["campaigns"]
        start, end, every = period(scenario)
        whole = simulate(path, config, chosen, start=start, end=end, every=every, parts=1)
        parts = max(2, scenario["parts"])
        split = simulate(path, config, chosen, start=start, end=end, every=every, parts=parts)
    assert _without_timing(split) == _without_timing(whole)
    assert whole["parts"] == 1
    assert split["parts"] == (parts if splittable(chosen) else 1)


def test_a_daily_limit_replays_the_store_whole(tmp_path: Path) -> None:
    """A daily limit lets deliveries of different contacts out in turn: no split."""
    limited = Campaign.model_validate(
        {"channel": "email", "provider": "outbox", "template": "t", "daily_limit": 5,
         "trigger": {"type": "post_purchase"}}
    )  # fmt: skip
    free = limited.model_copy(update={"daily_limit": 0})
    assert splittable([free]) and not splittable([free, limited])
    source = tmp_path / "regard.db"
    _shop(source)
    config = Config.model_validate({"providers": {"outbox": {"type": "file"}}})
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    refused = AssertionError("split although a daily limit holds")
    with mock.patch.object(simulate_module, "replay_in_parts", side_effect=refused):
        result = simulate(
            source, config, [limited], start=start, end=start + timedelta(days=1), parts=2
        )
    assert result["ticks"] == 2


def _replayed(openings: dict[int, set[int]]) -> Replayed:
    held = {n: frozenset(Instant(i) for i in at) for n, at in openings.items()}
    return Replayed(ticks=3, outcomes=[], sample=[], openings=held)


def test_parts_that_together_dispatch_at_too_many_instants_are_replayed_whole() -> None:
    """One replay dispatches at MAX_OPENINGS_PER_TICK instants between two ticks at most:
    where the parts' instants together reach that, their results are not one replay's."""
    half = MAX_OPENINGS_PER_TICK // 2
    below = [_replayed({1: set(range(half))}), _replayed({1: set(range(half - 1))})]
    shared = [_replayed({1: set(range(half + 10))}), _replayed({1: set(range(half + 10))})]
    reached = [_replayed({1: set(range(half))}), _replayed({1: set(range(half, 2 * half))})]
    apart = [_replayed({0: set(range(half + 1))}), _replayed({2: set(range(half + 1))})]
    capped = simulate_module._openings_capped
    assert not capped(below) and not capped(shared) and not capped(apart)
    assert capped(reached)


def test_a_replay_in_parts_found_capped_is_replayed_whole(tmp_path: Path) -> None:
    source = tmp_path / "regard.db"
    _shop(source)
    config = Config.model_validate({"providers": {"outbox": {"type": "file"}}})
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    whole = mock.Mock(wraps=simulate_module.scratch_store)
    with (
        mock.patch.object(simulate_module, "_openings_capped", return_value=True),
        mock.patch.object(simulate_module, "scratch_store", whole),
    ):
        result = simulate(source, config, [], start=start, end=start, parts=2)
    assert whole.call_count == 1 and result["ticks"] == 1


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_failing_part_fails_the_replay_stops_the_others_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    source = tmp_path / "regard.db"
    _shop(source)
    failing = part_of("k0", 3)

    def replay(store: Store, between: Any) -> int:
        if store.contacts.get("k0") is not None:
            raise LookupError("k0: no such template")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the others tick on until stopped
            between()
            time.sleep(0.01)
        return 0

    before = set(child_processes(os.getpid()))  # e.g. this process's render worker
    started = time.monotonic()
    # the scratch folder in the test's own folder
    with (
        mock.patch.object(tempfile, "tempdir", str(tmp_path)),
        pytest.raises(LookupError, match="k0: no such template"),
    ):
        replay_in_parts(source, 3, replay)
    assert time.monotonic() - started < 30, "the other parts were not stopped"
    assert failing in range(3)
    assert list(tmp_path.glob("regard-simulate-*")) == []
    assert set(child_processes(os.getpid())) <= before


def test_of_many_sent_in_a_week_the_merged_sample_is_the_first_sent(tmp_path: Path) -> None:
    """60 contacts thanked over two weeks, at 0.05 each: the parts' samples of a week
    merged are its first five sent, as one replay's, and their costs add up."""
    base = datetime(2026, 3, 2, 8, tzinfo=UTC)
    start = int(base.timestamp())
    people = [
        {"id": f"k{n}", "email": f"k{n}@example.com", "first_name": f"Anna {n}",
         "consent_email": 1, "tags": "[]", "attributes": "{}", "created_at": 0,
         "updated_at": 0}
        for n in range(60)
    ]  # fmt: skip
    orders = [
        {"id": f"e{n}", "contact_id": f"k{n}", "type": "order",
         "occurred_at": start + (59 - n) * 4 * 3600, "amount": 10.0, "properties": "{}",
         "imported_at": 0}
        for n in range(60)
    ]  # fmt: skip
    scenario = {
        "base": base, "contacts": people, "events": orders, "late": [], "voided": [],
        "suppressions": [], "cost": 0.05, "config": {"timezone": "Europe/Berlin"},
    }  # fmt: skip
    path, config = build(tmp_path, scenario)
    thanks = Campaign.model_validate(
        {"channel": "email", "provider": "outbox", "template": "t", "purpose": "service",
         "holdout": 0.1, "trigger": {"type": "post_purchase", "delay": "1h"}}
    )  # fmt: skip
    thanks._id = "thanks"
    end = base + timedelta(days=11)
    runs = [
        simulate(path, config, [thanks], start=base, end=end, every=timedelta(hours=1), parts=n)
        for n in (1, 3)
    ]
    assert [r["parts"] for r in runs] == [1, 3]
    whole, split = (_without_timing(r) for r in runs)
    assert split == whole
    weeks = whole["campaigns"]["thanks"]["weeks"]
    assert len(weeks) == 2 and all(len(w["sample"]) == 5 for w in weeks.values())
    assert whole["campaigns"]["thanks"]["cost"] == round(
        0.05 * whole["campaigns"]["thanks"]["sent"], 6
    )


def test_a_replay_is_split_by_default_where_its_contacts_times_days_pay_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "regard.db"
    _shop(source, contacts=30)
    monkeypatch.setattr(parts_module, "MIN_CONTACT_DAYS", 300)
    monkeypatch.setattr(parts_module, "cores", lambda: 4)
    assert parts_module.default_parts(source, 10) == 4  # 30 contacts × 10 days
    assert parts_module.default_parts(source, 9.9) == 1
    monkeypatch.setattr(parts_module, "cores", lambda: 12)
    assert parts_module.default_parts(source, 10) == parts_module.MAX_PARTS
    assert parts_module.default_parts(tmp_path / "none.db", 1000) == 1
    monkeypatch.setattr(parts_module, "cores", lambda: 1)
    assert parts_module.default_parts(source, 1000) == 1
