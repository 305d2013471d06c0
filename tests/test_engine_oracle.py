"""The engine against the reference oracle on random shops, campaigns and tick sequences.

Hypothesis draws contacts (time zones with and without DST, leap-day birthdays, missing
addresses and consents), events out of order, events re-imported at another time between
ticks, campaigns of every trigger type with audiences, caps, cooldowns, holdouts, windows
and daily limits, and ticks at irregular intervals with deliveries sent in between. After
every tick the engine's decisions and its whole deliveries table must equal the oracle's.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import event, given, note
from hypothesis import strategies as st

from oracle import Entry, Oracle
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.engine import tick
from regard.store import open_store
from regard.store.derived import recompute_all
from regard.times import Instant

HOUR = 3600
DAY = 24 * HOUR
# around a DST change in Europe, a leap day, a common-year 28 February, autumn changes
BASES = [
    datetime(2026, 3, 27, 6, tzinfo=UTC),
    datetime(2028, 2, 27, 20, tzinfo=UTC),
    datetime(2027, 2, 27, 5, tzinfo=UTC),
    datetime(2026, 10, 24, 12, tzinfo=UTC),
    datetime(2026, 10, 31, 23, tzinfo=UTC),
]
ZONES = [None, "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
         "Asia/Kolkata", "Pacific/Chatham", "America/Santiago"]  # fmt: skip
TYPES = ["order", "order", "order", "signup", "nps"]
TEMPLATE = """{% block subject %}Hallo {{ contact.id }}{% endblock %}
{% block text %}Für {{ contact.id }}: {{ occasion }}{% endblock %}
{% block card %}Liebe Grüße an {{ contact.id }}{% endblock %}
"""


def durations(*choices: str) -> st.SearchStrategy[str]:
    return st.sampled_from(choices)


@st.composite
def contacts(draw: st.DrawFn, index: int, base: datetime) -> dict[str, Any]:
    near = (base + timedelta(days=draw(st.integers(-3, 12)))).date()
    year = draw(st.integers(1950, 2005))
    birthday = draw(st.sampled_from([
        None, "2000-02-29", "1996-02-29", "1990-02-28", "1985-03-01",
        _with_year(near, year), _with_year(near, year), _with_year(near, year),
    ]))  # fmt: skip
    signup_years = draw(st.integers(1, 3))
    signup = base - timedelta(days=365 * signup_years + draw(st.integers(-3, 12)),
                              hours=draw(st.integers(-12, 12)))  # fmt: skip
    full = draw(st.sampled_from([True, True, False]))
    return {
        "id": f"k{index}",
        "email": draw(st.sampled_from([f"k{index}@example.com", f"k{index}@example.com", None])),
        "phone": draw(st.sampled_from(["+4915112345678", None])),
        "first_name": draw(st.sampled_from(["Anna", None])),
        "company": draw(st.sampled_from(["Blumen GmbH", None])),
        "street": "Lindenstraße 5" if full else None,
        "postal_code": "10969",
        "city": "Berlin",
        "country": draw(st.sampled_from(["DE", "AT"])),
        "timezone": draw(st.sampled_from(ZONES)),
        "birthday": birthday,
        "signup_at": int(signup.timestamp()) if draw(st.booleans()) else None,
        "consent_email": draw(st.sampled_from([None, 0, 1, 1, 1])),
        "consent_card": draw(st.sampled_from([None, None, 0, 1])),
        "consent_sms": draw(st.sampled_from([None, 0, 1, 1])),
        "tags": '["b2b"]' if draw(st.booleans()) else "[]",
        "attributes": json.dumps({"wedding_day": _with_year(near, year + 20)}),
        "created_at": 0,
        "updated_at": 0,
    }


def _with_year(day: date, year: int) -> str:
    try:
        return day.replace(year=year).isoformat()
    except ValueError:
        return date(year, 2, 28).isoformat()


@st.composite
def events(draw: st.DrawFn, index: int, n_contacts: int, base: datetime) -> dict[str, Any]:
    hours = draw(st.one_of(st.integers(-24 * 120, 24 * 25), st.integers(-24 * 8, 24 * 14)))
    occurred_at = int(base.timestamp()) + hours * HOUR + draw(st.sampled_from([0, 1, 1799]))
    # a cancelled or refunded order: voided soon, days later, or never
    voided = draw(st.sampled_from([None, None, None, 0, 1, HOUR, 3 * 24 * HOUR, 30 * 24 * HOUR]))
    return {
        "id": f"e{index}",
        "contact_id": f"k{draw(st.integers(0, n_contacts - 1))}",
        "type": draw(st.sampled_from(TYPES)),
        "occurred_at": occurred_at,
        "voided_at": None if voided is None else occurred_at + voided,
        "amount": draw(st.sampled_from([None, 9.99, 20.0, 49.9, 100.0, 250.1])),
        "properties": json.dumps({"channel": draw(st.sampled_from(["web", "shop"]))}),
        "imported_at": 0,
    }


TRIGGERS = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("post_purchase"),
            "delay": durations("0d", "2h", "1d", "3d"),
            "nth": st.sampled_from([None, 1, 2]),
            "where": st.sampled_from([{}, {"amount": {"min": 40}}, {"channel": "web"}]),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("event"),
            "event": st.sampled_from(["nps", "signup"]),
            "delay": durations("0d", "1h", "2d"),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("inactivity"),
            "after": durations("1d", "3d", "30d", "90d"),
            "events": st.sampled_from([["order"], ["order", "nps"]]),
            "min_events": st.sampled_from([0, 1, 2]),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("anniversary"),
            "field": st.sampled_from(["birthday", "signup_at", "first_order_at", "wedding_day"]),
            "offset": durations("0d", "-7d", "-2h", "3h"),
            "at": st.sampled_from(["09:00", "02:30", "00:00", "23:45"]),
            "years": st.sampled_from([None, [1], [1, 2, 30]]),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("milestone"),
            "metric": st.sampled_from(["order_count", "total_spent"]),
            "threshold": st.sampled_from([2, 3, 100, 149.9, "70.00"]),
            "delay": durations("0d", "1d"),
        }
    ),
)

AUDIENCES = st.sampled_from([
    {}, {}, {"country": "DE"}, {"order_count": {"min": 2}}, {"total_spent": {"min": 100}},
    {"tags": {"not": ["b2b"]}}, {"last_order_at": {"min": "2026-01-01"}},
    {"last_event_at": {"exists": True}},
])  # fmt: skip
WINDOWS = st.sampled_from([
    None, None, {"hours": [9, 18]}, {"days": ["mon", "tue", "wed", "thu", "fri"], "hours": [8, 20]},
    {"days": ["sat"], "hours": [2, 3]}, {"hours": [0, 1]},
])  # fmt: skip


EXITS = st.sampled_from([
    None, None, {"event": "order"}, {"event": "order", "where": {"amount": {"min": 40}}},
    {"event": "nps"}, {"event": "order", "where": {"channel": "web"}},
])  # fmt: skip
EXIT_TRIGGERS = ("event", "post_purchase", "milestone", "followup")


def followup(index: int) -> st.SearchStrategy[dict[str, Any]]:
    """A follow-up of an earlier campaign (never of itself or a later one: no cycles)."""
    return st.fixed_dictionaries(
        {
            "type": st.just("followup"),
            "campaign": st.integers(0, index - 1).map(lambda i: f"c{i}"),
            "delay": durations("0d", "1h", "1d", "3d"),
        }
    )


@st.composite
def campaigns(draw: st.DrawFn, index: int) -> Campaign:
    trigger = draw(st.one_of(TRIGGERS, followup(index)) if index else TRIGGERS)
    data: dict[str, Any] = {
        "channel": draw(st.sampled_from(["email", "email", "card", "webhook", "sms"])),
        "provider": "outbox",
        "template": "t",
        "priority": draw(st.integers(0, 2)),
        "max_lateness": draw(durations("1d", "2d", "7d")),
        "once_per_contact": draw(st.booleans()),
        "cooldown": draw(durations("0d", "0d", "2d")),
        "holdout": draw(st.sampled_from([0.0, 0.0, 0.3, 0.5])),
        "daily_limit": draw(st.sampled_from([0, 0, 1, 2])),
        "trigger": trigger,
        "audience": draw(AUDIENCES),
    }
    exit_ = draw(EXITS)
    if exit_ is not None and trigger["type"] in EXIT_TRIGGERS:
        data["exit"] = exit_
    window = draw(WINDOWS)
    if window is not None:
        data["window"] = window
    if draw(st.integers(0, 5)) == 0:
        data["starts_at"] = "2026-10-25"
    model = Campaign.model_validate(data)
    model._id = f"c{index}"
    return model


JOURNEY_EXITS = st.sampled_from([
    {"event": "order"}, {"event": "order", "where": {"amount": {"min": 40}}}, {"event": "nps"},
])  # fmt: skip


@st.composite
def journey(draw: st.DrawFn, count: int) -> list[Campaign]:
    """A first step and follow-ups of it or of each other, most with an exit; short
    delays, windows and daily limits so that follow-ups wait and exits come meanwhile."""
    made = []
    for index in range(count):
        data = draw(campaigns(index)).model_dump(exclude_none=True)
        # webhooks need neither an address nor an opt-in: most occasions go out
        data.update(channel="webhook", audience={}, once_per_contact=False, cooldown="0d")
        if index:
            data["trigger"] = draw(followup(index))
            data["holdout"] = 0.0
            window = draw(st.sampled_from([None, {"hours": [0, 1]}, {"hours": [9, 18]},
                                           {"days": ["sat"], "hours": [2, 3]}]))  # fmt: skip
            data.pop("window", None)
            if window is not None:
                data["window"] = window
            if draw(st.integers(0, 3)):
                data["exit"] = draw(JOURNEY_EXITS)
        elif data["trigger"]["type"] in EXIT_TRIGGERS and draw(st.booleans()):
            data["exit"] = draw(JOURNEY_EXITS)
        model = Campaign.model_validate(data)
        model._id = f"c{index}"
        made.append(model)
    return made


@st.composite
def journey_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    scenario = draw(scenarios())
    scenario["campaigns"] = draw(journey(draw(st.integers(2, 4))))
    scenario["send"] = draw(st.lists(st.booleans() | st.just(True), min_size=8, max_size=8))
    scenario["config"]["limits"]["contact_max"] = draw(st.sampled_from([0, 0, 3]))
    # orders during the ticks: they start journeys, and end them
    n_contacts, base = len(scenario["contacts"]), scenario["base"]
    for i in range(draw(st.integers(0, 12))):
        extra = draw(events(200 + i, n_contacts, base))
        extra["occurred_at"] = int(base.timestamp()) + draw(st.integers(0, 14 * DAY))
        scenario["events"].append(extra)
    # events imported before a tick that occurred since the one before: a follow-up
    # decided then and waiting for its window meets its exit at the next dispatch
    ticks, late = scenario["ticks"], []
    for n in range(len(ticks)):
        extra = draw(events(300 + n, n_contacts, base))
        extra["type"] = draw(st.sampled_from(["order", "order", "nps"]))
        previous = ticks[n - 1] if n else ticks[0] - 24
        extra["occurred_at"] = (
            int(base.timestamp())
            + previous * HOUR
            + draw(st.integers(17 * 60 + 1, max((ticks[n] - previous) * HOUR, 17 * 60 + 1)))
        )
        late.append(extra)
    scenario["late"] = late
    return scenario


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(st.sampled_from(BASES))
    n_contacts = draw(st.integers(1, 8))
    n_events = draw(st.integers(0, 24))
    return {
        "base": base,
        "contacts": [draw(contacts(i, base)) for i in range(n_contacts)],
        "events": [draw(events(i, n_contacts, base)) for i in range(n_events)],
        "campaigns": [draw(campaigns(i)) for i in range(draw(st.integers(1, 5)))],
        "config": {
            "timezone": draw(st.sampled_from(["Europe/Berlin", "UTC", "America/New_York"])),
            "consent": {"email": draw(st.sampled_from(["opt-in", "opt-out"]))},
            "limits": {
                "contact_max": draw(st.sampled_from([0, 1, 1, 2, 3])),
                "contact_window": draw(durations("1d", "7d")),
            },
        },
        # hours after base, increasing, irregular; and what happens before each tick
        "ticks": sorted(draw(st.lists(st.integers(0, 24 * 14), min_size=2, max_size=8))),
        "moves": draw(
            st.lists(st.tuples(st.integers(0, 20), st.integers(-24 * 5, 24 * 5)), max_size=4)
        ),
        "late": [draw(events(100 + i, n_contacts, base)) for i in range(draw(st.integers(0, 3)))],
        # unsubscribes: (contact, channel, by address rather than by contact id)
        "suppressions": draw(
            st.lists(
                st.tuples(
                    st.integers(0, n_contacts - 1),
                    st.sampled_from(["email", "sms", "card", "webhook", "*"]),
                    st.booleans(),
                ),
                max_size=2,
            )
        ),
        "send": draw(st.lists(st.booleans(), min_size=8, max_size=8)),
    }


def insert(conn: Any, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in row if c != "id"),
        list(row.values()),
    )


def ledger_of(conn: Any) -> list[tuple[Any, ...]]:
    return sorted(
        tuple(r)
        for r in conn.execute(
            "SELECT campaign, contact_id, occasion, due_at, state, reason, not_before, sent_at"
            " FROM deliveries"
        )
    )


def oracle_ledger(oracle: Oracle) -> list[tuple[Any, ...]]:
    return sorted(
        (e.campaign, e.contact_id, e.occasion, e.due_at, e.state, e.reason, e.not_before, e.sent_at)
        for e in oracle.ledger.values()
    )


def decided(entries: list[Entry]) -> list[tuple[Any, ...]]:
    return sorted((e.campaign, e.contact_id, e.occasion, e.due_at, e.state, e.reason)
                  for e in entries)  # fmt: skip


@given(scenarios())
def test_engine_agrees_with_the_oracle(scenario: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "templates").mkdir()
        (root / "templates" / "t.j2").write_text(TEMPLATE, encoding="utf-8")
        config = Config.model_validate({
            **scenario["config"],
            "providers": {"outbox": {"type": "file", "path": "outbox.jsonl"}},
        })  # fmt: skip
        config._base = root
        store = open_store(root / "regard.db")
        try:
            run_scenario(store, config, scenario)
        finally:
            store.close()


@given(journey_scenarios())
def test_journeys_agree_with_the_oracle(scenario: dict[str, Any]) -> None:
    """Chains of follow-ups with exits: at every tick and every dispatch, the engine's
    follow-ups, exits at the tick and cancellations at dispatch are the oracle's."""
    test_engine_agrees_with_the_oracle.hypothesis.inner_test(scenario)  # type: ignore[attr-defined]


def add_suppressions(conn: Any, scenario: dict[str, Any]) -> None:
    """The scenario's unsubscribes, by contact or by address."""
    for index, channel, by_address in scenario["suppressions"]:
        contact = scenario["contacts"][index]
        address = {"email": contact["email"], "sms": contact["phone"]}.get(channel)
        conn.execute(
            "INSERT INTO suppressions (contact_id, channel, address, reason, created_at)"
            " VALUES (?, ?, ?, 'unsubscribed', 0)",
            (None if by_address and address else contact["id"], channel, address),
        )


def run_scenario(store: Any, config: Config, scenario: dict[str, Any]) -> None:
    base = int(scenario["base"].timestamp())
    chosen: list[Campaign] = scenario["campaigns"]
    with store.write() as conn:
        for row in scenario["contacts"]:
            insert(conn, "contacts", row)
        for row in scenario["events"]:
            insert(conn, "events", row)
        add_suppressions(conn, scenario)
        recompute_all(conn)
    oracle = Oracle(config, chosen)
    events = {e["id"]: dict(e) for e in scenario["events"]}
    for n, hours in enumerate(scenario["ticks"]):
        at = base + hours * HOUR + 17 * 60
        with store.write() as conn:
            # before some ticks: an event re-imported at another time, a late import
            if n < len(scenario["moves"]) and events:
                pick, shift = scenario["moves"][n]
                moved = events[sorted(events)[pick % len(events)]]
                moved["occurred_at"] += shift * HOUR
                insert(conn, "events", moved)
            if n < len(scenario["late"]):
                late = scenario["late"][n]
                events[late["id"]] = dict(late)
                insert(conn, "events", late)
            recompute_all(conn)
        note(f"tick {n} at {datetime.fromtimestamp(at, UTC).isoformat()}")
        result = tick(store, config, chosen, Instant(at))
        oracle.read(store.conn)
        expected = oracle.tick(at)
        engine = sorted(
            (d.campaign, d.contact_id, d.occasion, d.due_at, d.decision, d.reason)
            for d in result.decisions
        )
        for d in result.decisions:
            event(f"{d.decision} {d.reason or ''}".strip())
            if d.occasion.startswith("after:"):
                event("a follow-up decided")
            if d.not_before is not None and d.not_before > at:
                event("pending outside its window")
        if result.deferred:
            event("deferred by release_due")  # fmt: skip
        assert engine == decided(expected)
        assert ledger_of(store.conn) == oracle_ledger(oracle)
        if scenario["send"][n]:  # the dispatcher sends what is due, in both
            # first its send-time rules: a journey whose exit came is cancelled
            stopped = store.deliveries.stop_due(Instant(at))
            expected_stops = oracle.stop(at)
            if stopped:
                event(f"stopped at dispatch: {sorted(stopped)}")
            assert stopped.get("exited", 0) == len(expected_stops)
            assert ledger_of(store.conn) == oracle_ledger(oracle)
            with store.write() as conn:
                due = conn.execute(
                    "SELECT campaign, contact_id, occasion FROM deliveries"
                    " WHERE state = 'pending' AND not_before <= ?",
                    (at,),
                ).fetchall()
                for row in due:
                    conn.execute(
                        "UPDATE deliveries SET state = 'sent', sent_at = ?"
                        " WHERE campaign = ? AND contact_id = ? AND occasion = ?",
                        (at, *row),
                    )
                    oracle.send(tuple(row), at)
