from __future__ import annotations

import json
import random

import pytest

from conftest import Workspace
from import_helpers import contact, rows, snapshot
from regard.store import open_store
from regard.store.derived import recompute_all

FACTS = ("first_order_at", "last_order_at", "order_count", "total_spent", "last_event_at")


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    path = workspace.write("contacts.csv", "id,email\nann,ann@b.de\nbob,bob@b.de\ncid,cid@b.de\n")
    assert workspace.cli("import", "contacts", str(path)).exit_code == 0
    return workspace


def facts(ws: Workspace, contact_id: str) -> tuple[object, ...]:
    c = contact(ws.store_target, contact_id)
    return tuple(c[f] for f in FACTS)


def test_events_are_stored_and_derived_facts_follow(shop: Workspace) -> None:
    path = shop.write(
        "events.csv",
        "id,contact_id,type,occurred_at,amount,currency,channel\n"
        'o1,ann,,2026-01-10T10:00:00Z,"49,90",eur,web\n'
        "o2,ann,order,2026-02-10T10:00:00+01:00,10.10,,\n"
        "n1,ann,nps,2026-02-12,9,,\n"
        "s1,bob,signup,2026-01-01T00:00:00Z,,,app\n",
    )
    result = shop.cli("import", "events", str(path))
    assert result.exit_code == 0, result.output
    stored = {r["id"]: dict(r) for r in rows(shop.store_target, "SELECT * FROM events")}
    assert stored["o1"]["type"] == "order" and stored["o1"]["amount"] == 49.9
    assert stored["o1"]["currency"] == "EUR"
    assert json.loads(stored["o1"]["properties"]) == {"channel": "web"}
    assert stored["o2"]["occurred_at"] == 1770714000  # 09:00 UTC
    assert stored["n1"]["occurred_at"] == 1770850800  # a bare date: midnight in Berlin
    assert json.loads(stored["o2"]["properties"]) == {}
    assert facts(shop, "ann") == (1768039200, 1770714000, 2, 60.0, 1770850800)
    assert facts(shop, "bob") == (None, None, 0, 0, 1767225600)


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        (",ann,order,2026-01-01,1,,", "id", "is required"),
        ("e1,,order,2026-01-01,1,,", "contact_id", "is required"),
        ("e1,ann,order,,1,,", "occurred_at", "is required"),
        (
            "e1,ann,order,2026-13-01,1,,",
            "occurred_at",
            "'2026-13-01' is not an ISO 8601 time (like 2026-03-01T14:30:00+01:00)",
        ),
        ("e1,ann,order,2026-01-01,1.234,56,,", "row", "8 values, but the header has 7 columns"),
        (
            "e1,ann,order,2026-01-01,12€,,",
            "amount",
            "'12€' is not a decimal number (like 49.90 or 49,90)",
        ),
        (
            "e1,ann,order,2026-01-01,1,EURO,",
            "currency",
            "'EURO' is not an ISO 4217 currency code (like EUR)",
        ),
        ("e1,ann,nps,2026-01-01,11,,", "amount", "an NPS score is from 0 to 10, not 11"),
        ("e1,ann,nps,2026-01-01,,,", "amount", "an NPS answer needs its score from 0 to 10"),
        (
            "e1,zed,order,2026-01-01,1,,",
            "contact_id",
            "unknown contact 'zed' (import it with `regard import contacts` first)",
        ),
    ],
)
def test_each_bad_event_is_named_with_file_line_and_field(
    shop: Workspace, line: str, field: str, reason: str
) -> None:
    before = snapshot(shop.store_target)
    path = shop.write(
        "e.csv",
        f"id,contact_id,type,occurred_at,amount,currency,note\nok,bob,order,2026-01-01,5,,\n{line}\n",
    )
    result = shop.cli("import", "events", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: {field}: {reason}" in result.stderr
    assert snapshot(shop.store_target) == before


def test_jsonl_events_with_properties_and_items(shop: Workspace) -> None:
    path = shop.write(
        "e.jsonl",
        json.dumps(
            {
                "id": "o1",
                "contact_id": "cid",
                "occurred_at": "2026-03-01T12:00:00Z",
                "amount": 30,
                "properties": {"coupon": "X"},
                "items": [{"sku": "A", "name": "Rose", "quantity": 2, "price": 15}],
                "store": "Köln",
            },
            ensure_ascii=False,
        )
        + "\n"
        + '{"id": "o2", "contact_id": "cid", "occurred_at": "2026-03-02T12:00:00Z", "items": "x"}\n',
    )
    result = shop.cli("import", "events", str(path))
    assert result.exit_code == 1
    assert f"{path}:2: items: is not valid JSON (expected a list of items)" in result.stderr
    shop.write("e.jsonl", path.read_text().splitlines()[0] + "\n")
    assert shop.cli("import", "events", str(path)).exit_code == 0
    (event,) = rows(shop.store_target, "SELECT * FROM events")
    assert event["type"] == "order"
    assert json.loads(event["properties"]) == {
        "coupon": "X",
        "items": [{"sku": "A", "name": "Rose", "quantity": 2, "price": 15}],
        "store": "Köln",
    }


def test_a_reimported_event_that_moves_or_changes_updates_both_contacts(shop: Workspace) -> None:
    header = "id,contact_id,type,occurred_at,amount\n"
    first = shop.write(
        "1.csv",
        header + "o1,ann,order,2026-01-01T00:00:00Z,10\no2,ann,order,2026-02-01T00:00:00Z,20\n",
    )
    assert shop.cli("import", "events", str(first)).exit_code == 0
    assert facts(shop, "ann") == (1767225600, 1769904000, 2, 30.0, 1769904000)
    # o2 moves to bob; o1 changes amount and time
    second = shop.write(
        "2.csv",
        header + "o1,ann,order,2026-01-05T00:00:00Z,15\no2,bob,order,2026-02-01T00:00:00Z,20\n",
    )
    result = shop.cli_json("import", "events", str(second))
    assert (result["updated"], result["inserted"]) == (2, 0)
    assert facts(shop, "ann") == (1767571200, 1767571200, 1, 15.0, 1767571200)
    assert facts(shop, "bob") == (1769904000, 1769904000, 1, 20.0, 1769904000)
    # an order that becomes another type no longer counts
    third = shop.write("3.csv", header + "o2,bob,refund,2026-02-01T00:00:00Z,20\n")
    assert shop.cli("import", "events", str(third)).exit_code == 0
    assert facts(shop, "bob") == (None, None, 0, 0.0, 1769904000)


def test_incremental_facts_equal_a_recomputation_from_scratch(shop: Workspace) -> None:
    rng = random.Random(7)
    header = "id,contact_id,type,occurred_at,amount\n"
    for round_ in range(6):
        lines = [  # one line per id: a file naming an id twice with other values is an error
            f"e{n},{rng.choice(['ann', 'bob', 'cid'])},"
            f"{rng.choice(['order', 'order', 'signup'])},"
            f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T10:00:00Z,{rng.randint(1, 99)}\n"
            for n in rng.sample(range(40), 30)
        ]
        path = shop.write(f"r{round_}.csv", header + "".join(lines))
        assert shop.cli("import", "events", str(path)).exit_code == 0
    db = shop.store_target
    incremental = {c: facts(shop, c) for c in ("ann", "bob", "cid")}
    with open_store(db) as store, store.write() as conn:
        conn.execute("UPDATE contacts SET order_count = -1, total_spent = -1, last_event_at = 0")
        recompute_all(conn)
    assert {c: facts(shop, c) for c in ("ann", "bob", "cid")} == incremental


def test_reimporting_events_changes_nothing(shop: Workspace) -> None:
    path = shop.write("e.csv", "id,contact_id,occurred_at,amount,note\no1,ann,2026-01-01,5,hi\n")
    assert shop.cli("import", "events", str(path)).exit_code == 0
    before = snapshot(shop.store_target)
    result = shop.cli_json("import", "events", str(path))
    assert (result["unchanged"], result["updated"]) == (1, 0)
    assert snapshot(shop.store_target) == before


def test_facts_of_a_first_import_and_of_a_contact_left_without_events(shop: Workspace) -> None:
    """A first import (an empty events table: every contact with events is recomputed)
    counts no voided order; a contact whose only event moves away gets empty facts, as a
    recomputation from scratch gives them."""
    first = shop.write(
        "1.jsonl",
        '{"id":"o1","contact_id":"ann","type":"order","occurred_at":"2026-01-01T00:00:00Z",'
        '"amount":10}\n'
        '{"id":"o2","contact_id":"ann","type":"order","occurred_at":"2026-02-01T00:00:00Z",'
        '"amount":20,"voided_at":"2026-02-02T00:00:00Z"}\n'
        '{"id":"o3","contact_id":"bob","type":"order","occurred_at":"2026-03-01T00:00:00Z",'
        '"amount":7}\n'
        '{"id":"o4","contact_id":"cid","type":"order","occurred_at":"2026-03-01T00:00:00Z",'
        '"amount":9,"voided_at":"2026-03-02T00:00:00Z"}\n',
    )
    assert shop.cli_json("import", "events", str(first))["inserted"] == 4
    assert facts(shop, "ann") == (1767225600, 1767225600, 1, 10.0, 1767225600)
    assert facts(shop, "bob") == (1772323200, 1772323200, 1, 7.0, 1772323200)
    assert facts(shop, "cid") == (None, None, 0, 0.0, None)
    moved = shop.write(
        "2.csv", "id,contact_id,type,occurred_at,amount\no3,ann,order,2026-03-01,7\n"
    )
    assert shop.cli_json("import", "events", str(moved))["updated"] == 1
    assert facts(shop, "bob") == (None, None, 0, 0.0, None)
    assert facts(shop, "ann")[2:4] == (2, 17.0)
    incremental = {c: facts(shop, c) for c in ("ann", "bob", "cid")}
    with open_store(shop.store_target) as store, store.write() as conn:
        conn.execute("UPDATE contacts SET order_count = -1, total_spent = -1, last_event_at = 0")
        recompute_all(conn)
    assert {c: facts(shop, c) for c in ("ann", "bob", "cid")} == incremental
