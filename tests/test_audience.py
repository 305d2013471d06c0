"""The audience grammar: SQL compiled by compile_filter agrees with the Python evaluation
``matches`` on random contacts in a real SQLite store; explicit cases pin the semantics."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regard.campaigns.audience import event_kind, matches, validate_filter
from regard.store import Store
from regard.store.contacts import contact_from_row
from regard.store.filters import compile_filter, contact_column, event_column

TZ = "Europe/Berlin"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z

COLUMNS = (
    "id", "first_name", "country", "city", "order_count", "total_spent", "last_order_at",
    "signup_at", "birthday", "consent_email", "tags", "attributes",
)  # fmt: skip


def insert(store: Store, contacts: list[dict[str, Any]]) -> None:
    with store.write() as conn:
        conn.execute("DELETE FROM events")
        conn.execute("DELETE FROM contacts")
        for c in contacts:
            row = {k: c.get(k) for k in COLUMNS}
            row["tags"] = json.dumps(c.get("tags") or [])
            row["attributes"] = json.dumps(c.get("attributes") or {})
            row["order_count"] = c.get("order_count") or 0
            row["total_spent"] = c.get("total_spent") or 0
            marks = ", ".join("?" for _ in row)
            conn.execute(
                f"INSERT INTO contacts ({', '.join(row)}, created_at, updated_at) "
                f"VALUES ({marks}, 0, 0)",
                list(row.values()),
            )


def selected(store: Store, filter: dict[str, Any]) -> set[str]:
    sql, params = compile_filter(filter, contact_column, tz=TZ)
    rows = store.conn.execute(f"SELECT id FROM contacts c WHERE {sql}", params).fetchall()
    return {r[0] for r in rows}


def oracle(store: Store, filter: dict[str, Any]) -> set[str]:
    rows = store.conn.execute("SELECT * FROM contacts").fetchall()
    return {r["id"] for r in rows if matches(filter, contact_from_row(r), tz=TZ)}


# -- random contacts and filters --------------------------------------------------------------

texts = st.sampled_from(["DE", "AT", "Berlin", "berlin", "Köln", "Zoë", ""])
json_scalars = st.one_of(
    st.none(),
    st.sampled_from(
        ["gold", "silver", "", "12", "3.5", " 7 ", "true", "no", "1", "012", "2026-03-01"]
    ),
    st.integers(-3, 15),
    st.sampled_from([0.5, 3.0, 12.0, -1.25]),
    st.booleans(),
)
json_values = st.one_of(
    json_scalars,
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), json_scalars, max_size=2),
)
instants = st.integers(T0 - 400 * 86400, T0 + 400 * 86400)


@st.composite
def contacts(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(1, 12))):
        attributes = {
            name: draw(json_values) for name in ("segment", "score") if draw(st.booleans())
        }
        out.append(
            {
                "id": f"c{i}",
                "first_name": draw(st.one_of(st.none(), texts)),
                "country": draw(st.one_of(st.none(), st.sampled_from(["DE", "AT", "CH"]))),
                "city": draw(st.one_of(st.none(), texts)),
                "order_count": draw(st.integers(0, 12)),
                "total_spent": draw(st.integers(0, 100_000)) / 100,
                "last_order_at": draw(st.one_of(st.none(), instants)),
                "signup_at": draw(st.one_of(st.none(), instants)),
                "birthday": draw(
                    st.one_of(st.none(), st.dates(date(1950, 1, 1), date(2010, 12, 31)))
                ),
                "consent_email": draw(st.sampled_from([None, 0, 1])),
                "tags": draw(
                    st.lists(
                        st.sampled_from(["vip", "VIP", "b2b", "B2b", "newsletter", "Über"]),
                        max_size=3,
                        unique=True,
                    )
                ),
                "attributes": attributes,
            }
        )
    for c in out:
        if c["birthday"] is not None:
            c["birthday"] = c["birthday"].isoformat()
    return out


def iso_instant(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).astimezone().replace(tzinfo=None).isoformat()


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "first_name": st.sampled_from(["DE", "AT", "Berlin", "berlin", "Köln", "Zoë"]),
    "country": st.sampled_from(["DE", "AT", "CH", "FR"]),
    "city": st.sampled_from(["Berlin", "Köln", "Zoë", "A", "z"]),
    "order_count": st.integers(-1, 13),
    "total_spent": st.one_of(st.integers(0, 1000), st.integers(0, 100_000).map(lambda c: c / 100)),
    "last_order_at": instants.map(
        lambda s: datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    ),
    "signup_at": st.dates(date(2024, 11, 1), date(2027, 2, 1)).map(date.isoformat),
    "birthday": st.dates(date(1950, 1, 1), date(2010, 12, 31)),
    "consent_email": st.booleans(),
    "tags": st.sampled_from(["vip", "B2B", "newsletter", "other", "über", "ÜBER"]),
    "segment": st.one_of(
        st.sampled_from(["gold", "silver", "12", "true", "2026-03-01"]),
        st.integers(-3, 15),
        st.sampled_from([0.5, 3.0, 12.0]),
        st.booleans(),
        st.just(date(2026, 3, 1)),
    ),
    "score": st.one_of(
        st.integers(-3, 15), st.sampled_from([3.5, 7.0]), st.sampled_from(["gold", "7"])
    ),
}
ORDERED = {
    "amount",
    "currency",
    "channel",
    "occurred_at",
    "first_name",
    "country",
    "city",
    "order_count",
    "total_spent",
    "last_order_at",
    "signup_at",
    "birthday",
    "segment",
    "score",
}
LISTS = {"tags", "segment", "score", "channel"}


@st.composite
def conditions(draw: st.DrawFn, name: str, values: dict[str, Any] = VALUES) -> Any:
    value = values[name]
    if name in ("segment", "score", "channel"):
        bound = value.filter(lambda v: not isinstance(v, bool))
    else:
        bound = value
    shape = draw(st.sampled_from(["scalar", "list", "table"]))
    if shape == "scalar":
        return draw(value)
    if shape == "list":
        return draw(st.lists(value, min_size=1, max_size=3))
    ops: dict[str, Any] = {}
    for op in draw(
        st.lists(
            st.sampled_from(["min", "max", "not", "any", "all", "exists"]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    ):
        if op in ("min", "max"):
            if name not in ORDERED:
                continue
            ops[op] = draw(bound)
        elif op == "exists":
            ops[op] = draw(st.booleans())
        elif op == "all":
            if name not in LISTS:
                continue
            ops[op] = draw(st.lists(value, min_size=1, max_size=2))
        elif op == "not":
            ops[op] = draw(st.one_of(value, st.lists(value, min_size=1, max_size=2)))
        else:
            ops[op] = draw(st.lists(value, min_size=1, max_size=2))
    return ops or {"exists": draw(st.booleans())}


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=3, unique=True))
    return {name: draw(conditions(name)) for name in names}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(people=contacts(), batch=st.lists(filters(), min_size=10, max_size=20))
def test_sql_agrees_with_python(
    store: Store, people: list[dict[str, Any]], batch: list[dict[str, Any]]
) -> None:
    insert(store, people)
    for filter in batch:
        assert validate_filter(filter) == []
        assert selected(store, filter) == oracle(store, filter), filter


EVENT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "amount": st.one_of(st.integers(0, 150), st.integers(0, 300).map(lambda c: c / 2)),
    "currency": st.sampled_from(["EUR", "USD", "CHF"]),
    "channel": VALUES["segment"],
    "occurred_at": st.integers(0, 5).map(
        lambda i: datetime.fromtimestamp(T0 + i * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
}


@st.composite
def event_filters(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(
        st.lists(st.sampled_from(sorted(EVENT_VALUES)), min_size=1, max_size=3, unique=True)
    )
    return {name: draw(conditions(name, EVENT_VALUES)) for name in names}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    events=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 300).map(lambda c: c / 2)),
            st.one_of(st.none(), st.sampled_from(["EUR", "USD"])),
            json_values,
        ),
        min_size=1,
        max_size=8,
    ),
    batch=st.lists(event_filters(), min_size=5, max_size=10),
)
def test_event_where_agrees_with_python(
    store: Store, events: list[tuple[float | None, str | None, Any]], batch: list[dict[str, Any]]
) -> None:
    with store.write() as conn:
        conn.execute("DELETE FROM events")
        conn.execute("DELETE FROM contacts")
        conn.execute("INSERT INTO contacts (id, created_at, updated_at) VALUES ('c', 0, 0)")
        for i, (amount, currency, channel) in enumerate(events):
            properties = {"channel": channel} if i % 3 else {}
            conn.execute(
                "INSERT INTO events (id, contact_id, type, occurred_at, amount, currency, "
                "properties, imported_at) VALUES (?, 'c', 'order', ?, ?, ?, ?, 0)",
                (f"e{i}", T0 + i * 3600, amount, currency, json.dumps(properties)),
            )
    rows = store.conn.execute("SELECT * FROM events").fetchall()
    for where in batch:
        assert validate_filter(where, event_kind) == []
        sql, params = compile_filter(where, event_column, tz=TZ)
        got = {r[0] for r in store.conn.execute(f"SELECT id FROM events e WHERE {sql}", params)}
        expected = set()
        for row in rows:
            record = dict(row) | {"properties": json.loads(row["properties"])}
            if matches(where, record, kind_of=event_kind, tz=TZ):
                expected.add(row["id"])
        assert got == expected, where


# -- the semantics, case by case ------------------------------------------------------------------

PEOPLE = [
    {"id": "anna", "country": "DE", "city": "Berlin", "order_count": 5, "total_spent": 512.4,
     "last_order_at": T0 - 10 * 86400, "birthday": "1990-05-17", "consent_email": 1,
     "tags": ["vip", "newsletter"], "attributes": {"segment": "gold", "score": "7", "kids": [1, 2]}},
    {"id": "ben", "country": "AT", "city": "", "order_count": 1, "total_spent": 49.9,
     "last_order_at": T0 - 200 * 86400, "birthday": None, "consent_email": 0,
     "tags": ["b2b"], "attributes": {"segment": "silver", "score": 3}},
    {"id": "cem", "country": None, "city": None, "order_count": 0, "total_spent": 0,
     "last_order_at": None, "birthday": "2001-12-24", "consent_email": None,
     "tags": [], "attributes": {}},
]  # fmt: skip


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({}, {"anna", "ben", "cem"}),
        ({"country": "DE"}, {"anna"}),
        ({"country": ["DE", "AT"]}, {"anna", "ben"}),
        ({"country": {"not": "DE"}}, {"ben", "cem"}),  # a missing country is not DE
        ({"country": {"not": ["DE", "AT"]}}, {"cem"}),
        ({"country": {"exists": False}}, {"cem"}),
        ({"city": {"exists": True}}, {"anna"}),  # empty text counts as missing
        ({"city": {"max": "Zürich"}}, {"anna"}),
        ({"order_count": {"min": 1}}, {"anna", "ben"}),
        ({"order_count": {"min": 1, "max": 4}}, {"ben"}),
        ({"order_count": 0}, {"cem"}),
        ({"total_spent": {"min": 49.9}}, {"anna", "ben"}),
        ({"last_order_at": {"max": "2025-07-01"}}, {"ben"}),
        ({"last_order_at": {"min": date(2025, 12, 1)}}, {"anna"}),
        ({"last_order_at": {"exists": False}}, {"cem"}),
        ({"birthday": {"min": "1995-01-01"}}, {"cem"}),
        ({"birthday": date(1990, 5, 17)}, {"anna"}),
        ({"consent_email": True}, {"anna"}),
        ({"consent_email": False}, {"ben"}),  # not given is neither true nor false
        ({"consent_email": {"not": True}}, {"ben", "cem"}),
        ({"tags": "vip"}, {"anna"}),
        ({"tags": ["vip", "b2b"]}, {"anna", "ben"}),
        ({"tags": {"any": ["b2b", "other"]}}, {"ben"}),
        ({"tags": {"all": ["vip", "newsletter"]}}, {"anna"}),
        ({"tags": {"not": ["b2b"]}}, {"anna", "cem"}),
        ({"tags": {"exists": False}}, {"cem"}),
        ({"segment": "gold"}, {"anna"}),
        ({"segment": {"not": "gold"}}, {"ben", "cem"}),  # a missing attribute is not gold
        ({"segment": {"exists": True}}, {"anna", "ben"}),
        ({"score": {"min": 5}}, {"anna"}),  # CSV text "7" compares as the number 7
        ({"score": 3}, {"ben"}),
        ({"score": "7"}, {"anna"}),
        ({"kids": 2}, {"anna"}),  # an attribute holding a list contains 2
        ({"kids": {"all": [1, 2]}}, {"anna"}),
        ({"kids": {"min": 1}}, set()),  # min/max compare single values, not lists
        ({"nickname": {"exists": False}}, {"anna", "ben", "cem"}),
    ],
)
def test_semantics(store: Store, filter: dict[str, Any], expected: set[str]) -> None:
    insert(store, PEOPLE)
    assert selected(store, filter) == expected
    assert oracle(store, filter) == expected


def test_values_are_parameters_never_pasted(store: Store) -> None:
    insert(store, PEOPLE)
    evil = "DE' OR 1=1; DROP TABLE contacts; --"
    sql, params = compile_filter({"country": evil, "segment": {"any": [evil]}}, contact_column)
    assert evil not in sql
    assert params.count(evil) == 2
    assert selected(store, {"country": evil}) == set()
    assert store.conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 3


def test_attribute_names_with_quotes_are_refused() -> None:
    assert validate_filter({'a"b': 1}) == [
        (('a"b',), "a field name cannot contain quotes or backslashes")
    ]


def test_min_on_a_list_and_unknown_operators() -> None:
    assert validate_filter({"tags": {"min": "a"}, "country": {"nott": "DE"}}) == [
        (("tags", "min"), "min needs a number, date, time or text field; this field is a list"),
        (
            ("country", "nott"),
            "unknown operator (did you mean 'not'? one of min, max, not, any, all, exists)",
        ),
    ]
    with pytest.raises(ValueError, match=r"tags\.min: min needs"):
        compile_filter({"tags": {"min": "a"}}, contact_column)
