"""A tick in batches: the same decisions whatever the batch size (caps count the tick's own
earlier decisions), the oracle in batches of two, and a concurrent import in a real second
process that writes while the tick runs instead of waiting for it."""

from __future__ import annotations

import importlib
import itertools
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

import test_engine_oracle as oracle_tests
from conftest import Workspace, subprocess_env
from regard.engine import tick
from regard.store import open_store
from regard.times import Instant
from regard.triggers import Span
from regard.workspace import load_config
from shop_rows import add_contact, add_event, campaign, instant

tick_module = importlib.import_module("regard.engine.tick")  # the module, not the function

TEMPLATE = (
    "{% block subject %}Hallo{% endblock %}{% block text %}Hallo {{ contact.id }}{% endblock %}"
)
CAPPED = 'contact_max = 1\ncontact_window = "7d"\n'


def capped_shop(workspace: Workspace, contacts: int) -> None:
    """Contacts with two orders each (two occasions of one campaign) under a cap of one."""
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(text.replace("[sender]", f"[limits]\n{CAPPED}\n[sender]"))
    workspace.write("templates/t.j2", TEMPLATE)
    store = open_store(workspace.store_target)
    with store.write() as conn:
        for i in range(contacts):
            add_contact(conn, f"c{i:04d}", first_name="Eva", consent_email=1)
            add_event(conn, f"o{i:04d}a", f"c{i:04d}", "2026-03-02T09:00:00Z", amount=5)
            add_event(conn, f"o{i:04d}b", f"c{i:04d}", "2026-03-02T10:00:00Z", amount=7)
    store.close()


CAMPAIGNS = [
    campaign("first", {"type": "post_purchase"}, template="t", priority=5),
    campaign("second", {"type": "post_purchase"}, template="t", once_per_contact=True),
]


def decided(workspace: Workspace, batch: int) -> list[tuple[Any, ...]]:
    store = open_store(workspace.store_target)
    config = load_config(workspace.config)
    with mock.patch.object(tick_module, "BATCH", batch):
        result = tick(store, config, CAMPAIGNS, instant("2026-03-02T12:00:00Z"))
    rows = store.conn.execute(
        "SELECT campaign, contact_id, occasion, state, reason FROM deliveries"
        " ORDER BY campaign, contact_id, occasion"
    ).fetchall()
    assert len(result.decisions) == len(rows)
    store.conn.execute("DELETE FROM delivery_log")
    store.conn.execute("DELETE FROM deliveries")
    store.close()
    return [tuple(r) for r in rows]


def test_caps_count_the_ticks_own_decisions_whatever_the_batch(workspace: Workspace) -> None:
    capped_shop(workspace, 12)
    whole = decided(workspace, 1000)
    # the cap of one: one pending delivery per contact, the rest capped
    pending = [r for r in whole if r[3] == "pending"]
    assert sorted(r[1] for r in pending) == [f"c{i:04d}" for i in range(12)]
    assert {r[0] for r in pending} == {"first"}  # the higher priority goes first
    assert {r[4] for r in whole if r[3] == "skipped"} == {"capped"}
    for batch in (1, 2, 5):
        assert decided(workspace, batch) == whole


@given(oracle_tests.scenarios())
def test_the_oracle_agrees_in_batches_of_two(scenario: dict[str, Any]) -> None:
    """The oracle scenarios with every campaign's occasions split into batches of two:
    the caps of a batch count what the batches before it decided."""
    with mock.patch.object(tick_module, "BATCH", 2):
        oracle_tests.test_engine_agrees_with_the_oracle.hypothesis.inner_test(scenario)  # type: ignore[attr-defined]


@given(
    lo=st.integers(0, 10**9),
    width=st.integers(0, 400 * 86400),
    length=st.integers(1, 40 * 86400),
)
def test_a_spans_pieces_cover_it_in_order_each_second_once(
    lo: int, width: int, length: int
) -> None:
    length = max(length, width // 1000 + 1)  # at most a thousand pieces
    span = Span(Instant(lo), Instant(lo + width), Instant(lo + width + 5), ["c1"])
    parts = list(tick_module.pieces(span, length))
    assert parts[0].lo == span.lo and parts[-1].hi == span.hi
    for before, after in itertools.pairwise(parts):
        assert after.lo == before.hi + 1  # no second twice, none left out
    assert all(p.lo <= p.hi and p.hi - p.lo < length for p in parts)
    assert all(p.at == span.at and p.contact_ids == ["c1"] for p in parts)
    assert len(parts) == -(-(width + 1) // length)


def test_a_lapse_due_at_the_edge_of_a_piece_is_found_once(workspace: Workspace) -> None:
    """Orders whose lapses fall due on either side of where one piece of the span ends
    and the next begins: each found once, in order."""
    store = open_store(workspace.store_target)
    at = instant("2026-03-02T12:00:00Z")
    edge = at - 40 * 86400 + 3600 - 1  # the span starts 40 days back: the first piece ends here
    with store.write() as conn:
        for n, due in enumerate((edge - 1, edge, edge + 1, edge + 2)):
            add_contact(conn, f"c{n}", first_name="Eva", consent_email=1)
            add_event(conn, f"o{n}", f"c{n}", Instant(due - 86400), amount=5)
    store.close()
    lapse = campaign(
        "lapse", {"type": "inactivity", "after": "1d"}, template="t", max_lateness="40d"
    )
    workspace.write("templates/t.j2", TEMPLATE)
    config = load_config(workspace.config)
    store = open_store(workspace.store_target)
    with mock.patch.object(tick_module, "PIECE", 3600):
        result = tick(store, config, [lapse], at)
    assert [(d.contact_id, d.due_at) for d in result.decisions] == [
        (f"c{n}", due) for n, due in enumerate((edge - 1, edge, edge + 1, edge + 2))
    ]
    store.close()


@given(oracle_tests.scenarios())
def test_the_oracle_agrees_with_spans_asked_in_pieces_of_half_a_day(
    scenario: dict[str, Any],
) -> None:
    """The oracle scenarios with every campaign's span asked of its trigger half a day at a
    time (a tick asks a month at a time): the pieces' occasions, in order, are the span's."""
    with mock.patch.object(tick_module, "PIECE", 43200):
        oracle_tests.test_engine_agrees_with_the_oracle.hypothesis.inner_test(scenario)  # type: ignore[attr-defined]


@given(oracle_tests.scenarios())
def test_the_oracle_agrees_in_batches_of_one_three_rendering_at_a_time(
    scenario: dict[str, Any],
) -> None:
    """The oracle scenarios decided one occasion a batch, each batch decided while the
    three before it still render (as a replay's): the caps of a batch count what those
    decided, and what they decided again once their renders were known."""
    with mock.patch.object(tick_module, "BATCH", 1), mock.patch.object(tick_module, "DEPTH", 3):
        oracle_tests.test_engine_agrees_with_the_oracle.hypothesis.inner_test(scenario)  # type: ignore[attr-defined]


IMPORTER = """
import sys, time, json
from pathlib import Path
from regard.store import open_store
from regard.store.importer import import_contacts, import_events
from regard.workspace import load_config
config = load_config({config!r})
store = open_store(config.store_target)
folder = Path({folder!r})
stop = folder / "stop"
print("ready", flush=True)
done = []
n = 0
while not stop.exists() and n < 400:
    n += 1
    events = folder / f"events{{n}}.csv"
    events.write_text(
        "id,contact_id,type,occurred_at,amount\\n"
        f"late{{n}},c{{n % 300:04d}},order,2026-03-02T11:00:00Z,3\\n", encoding="utf-8")
    import_events(store, config, events)
    contacts = folder / f"contacts{{n}}.csv"
    contacts.write_text(  # a contact withdraws consent, by import
        "id,email,consent_email\\n"
        f"c{{(n * 7) % 300:04d}},c{{(n * 7) % 300:04d}}@example.com,false\\n", encoding="utf-8")
    import_contacts(store, config, contacts)
    done.append(time.time())
    time.sleep(0.01)
print(json.dumps(done), flush=True)
"""


def test_an_import_in_another_process_writes_while_the_tick_runs(workspace: Workspace) -> None:
    """Imports of orders and of withdrawn consent, in a second process, commit while a
    tick of many batches runs (the old tick held the write lock from start to end, so
    they all waited for it); every occasion is still recorded once and the cap holds."""
    capped_shop(workspace, 300)
    folder = workspace.root / "imports"
    folder.mkdir()
    script = IMPORTER.format(config=str(workspace.config), folder=str(folder))
    importer = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    assert importer.stdout is not None
    assert importer.stdout.readline().strip() == "ready"
    time.sleep(0.3)  # it is importing
    store = open_store(workspace.store_target)
    config = load_config(workspace.config)
    began = time.time()
    with mock.patch.object(tick_module, "BATCH", 5):
        result = tick(store, config, CAMPAIGNS, instant("2026-03-02T12:00:00Z"))
    ended = time.time()
    (folder / "stop").touch()
    out, _ = importer.communicate(timeout=120)
    assert importer.returncode == 0
    done = json.loads(out.strip().splitlines()[-1])
    assert [t for t in done if began < t < ended], "no import committed during the tick"
    rows = store.conn.execute(
        "SELECT campaign, contact_id, occasion, state FROM deliveries"
    ).fetchall()
    keys = [(r[0], r[1], r[2]) for r in rows]
    assert len(keys) == len(set(keys)) == len(result.decisions)
    # the cap of one holds for every contact, across both campaigns and every batch
    per_contact: dict[str, int] = {}
    for r in rows:
        if r[3] == "pending":
            per_contact[r[1]] = per_contact.get(r[1], 0) + 1
    assert per_contact and max(per_contact.values()) == 1
    # a second tick decides only what the imports added, never an occasion again
    again = tick(store, config, CAMPAIGNS, instant("2026-03-02T12:00:00Z"))
    assert not {(d.campaign, d.contact_id, d.occasion) for d in again.decisions} & set(keys)
    assert all(d.decision != "pending" or d.contact_id not in per_contact for d in again.decisions)


def test_simulate_finds_each_ticks_occasions_once_per_stretch(workspace: Workspace) -> None:
    """The occasions simulate finds once per stretch are, tick by tick, exactly those each
    tick's own trigger query finds: events voided during the period, a `where`, an `nth`
    (its own query), birthdays across a year's end."""
    from datetime import date

    from regard.report.period import PeriodOccasions
    from regard.store.importer import import_contacts, import_events
    from regard.synthetic import generate
    from regard.triggers import due_occasions

    contacts, events = generate(3, 400, start=date(2025, 1, 1), end=date(2026, 1, 1)).write_csv(
        workspace.root / "shop"
    )
    store = open_store(workspace.store_target)
    config = load_config(workspace.config)
    import_contacts(store, config, contacts)
    import_events(store, config, events)
    with store.write() as conn:  # every seventh order is cancelled some days after it
        conn.execute(
            "UPDATE events SET voided_at = occurred_at + 5 * 86400"
            " WHERE type = 'order' AND abs(occurred_at) % 7 = 0"
        )
    campaigns = [
        campaign("thanks", {"type": "post_purchase", "delay": "2d"}, max_lateness="3d"),
        campaign("big", {"type": "post_purchase", "where": {"amount": {"min": 80}}}),
        campaign("second", {"type": "post_purchase", "nth": 2}),
        campaign("nps", {"type": "event", "event": "nps", "delay": "1h"}),
        campaign(
            "birthday",
            {"type": "anniversary", "field": "birthday", "at": "08:00"},
            max_lateness="12h",
        ),
    ]
    start = instant("2025-03-01T06:00:00Z")
    found = PeriodOccasions(store, config, start)
    ticks = 0
    for n in range(0, 330, 3):
        at = instant("2025-03-01T06:00:00Z") + n * 86400 + (n % 5) * 3600
        for c in campaigns:
            span = tick_module.campaign_span(config, c, at)
            assert span is not None
            assert sorted(found(c, span)) == due_occasions(store, config, c.trigger, span), (
                c.id,
                at,
            )
        ticks += 1
    assert found.queries < ticks * len(campaigns) / 3  # once per stretch, but for `nth`


def test_a_tick_copies_its_log_beside_it_and_once_at_its_end(tmp_path: Path) -> None:
    """Inside a tick the store keeps a larger page cache and its own commits copy nothing
    of the write-ahead log (no checkpoint of SQLite's after a commit of the tick's): a
    thread of its own copies it after every fourth commit of the tick. Every commit is readable by another
    connection at once (the log is the database until it is copied); at the end one
    checkpoint copies all of it and the store checkpoints itself again."""
    path = tmp_path / "regard.db"
    store = open_store(path)
    default_cache = store.conn.execute("PRAGMA cache_size").fetchone()[0]
    with store.ticks.exclusive():
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        # a page cache that holds a batch's write (8 MB), not SQLite's 2 MB
        assert store.conn.execute("PRAGMA cache_size").fetchone()[0] == -8192 != default_cache
        for i in range(30):  # 30 × 200 kB: 6 MB, about 1,500 pages
            with store.write() as conn:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{i}", "x" * 200_000)
                )
            other = sqlite3.connect(path)
            seen = other.execute("SELECT count(*) FROM meta WHERE key = ?", (f"k{i}",)).fetchone()
            assert seen == (1,)  # (a row of count 0 would be a tuple too)
            other.close()
        deadline = time.monotonic() + 20
        while path.stat().st_size < 15 * 200_000:  # copied while the tick goes on
            assert time.monotonic() < deadline, "nothing of the log was copied"
            time.sleep(0.05)
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert store.conn.execute("PRAGMA cache_size").fetchone()[0] == default_cache
    other = sqlite3.connect(path)
    busy, frames, done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, done) == (0, frames)  # the tick's checkpoint copied every frame
    assert other.execute("SELECT count(*) FROM meta WHERE key LIKE 'k%'").fetchone()[0] == 30
    other.close()
    store.close()


def test_a_ticks_writes_back_to_back_keep_the_log_short(tmp_path: Path) -> None:
    """Each write of a tick waits for the copy its last commit asked for, so the log is
    copied whole before the next write and starts again from its beginning: writes back to
    back (a replay's ticks) do not make it grow with all they wrote."""
    path = tmp_path / "regard.db"
    store = open_store(path)
    with store.ticks.exclusive():
        for i in range(80):  # 80 × 200 kB: 16 MB
            with store.write() as conn:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{i}", "x" * 200_000)
                )
    # copied every fourth commit, and started again before the next write
    assert Path(f"{path}-wal").stat().st_size < 6_000_000
    assert store.conn.execute("SELECT count(*) FROM meta WHERE key LIKE 'k%'").fetchone()[0] == 80
    store.close()
