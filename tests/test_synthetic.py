from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from datetime import date
from pathlib import Path

import phonenumbers
from email_validator import validate_email

from regard.synthetic import CONTACT_COLUMNS, EVENT_COLUMNS, generate


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a = generate(3, 300).write_csv(tmp_path / "a")
    b = generate(3, 300).write_csv(tmp_path / "b")
    c = generate(4, 300).write_csv(tmp_path / "c")
    assert [digest(p) for p in a] == [digest(p) for p in b]
    assert digest(a[0]) != digest(c[0])


def test_contacts_look_like_a_german_and_english_shop() -> None:
    contacts = list(generate(1, 2000).contacts())
    assert len(contacts) == 2000
    assert len({c["id"] for c in contacts}) == 2000
    countries = Counter(c["country"] for c in contacts)
    assert set(countries) == {"DE", "AT", "CH", "GB", "US"}
    assert countries["DE"] > countries["GB"] > 0
    assert {c["locale"] for c in contacts} == {"de", "en"}
    names = " ".join(f"{c['first_name']} {c['last_name']} {c['street']}" for c in contacts)
    assert "ü" in names and "ß" in names
    assert any(c["first_name"] is None for c in contacts)
    assert any(c["email"] is None for c in contacts)
    assert any(c["phone"] is None for c in contacts)
    assert any(c["timezone"] is None for c in contacts)
    assert any(c["birthday"] == "2000-02-29" for c in contacts)
    tags = Counter(t for c in contacts for t in c["tags"])
    assert tags["vip"] and tags["b2b"] and tags["newsletter"]
    for c in contacts:
        if c["email"]:
            assert validate_email(c["email"], check_deliverability=False)
        if c["phone"]:
            assert phonenumbers.is_valid_number(phonenumbers.parse(c["phone"])), c["phone"]
        if c["birthday"]:
            date.fromisoformat(c["birthday"])


def test_orders_have_a_long_tail_and_events_belong_to_contacts() -> None:
    shop = generate(2, 3000, start=date(2025, 1, 1), end=date(2026, 1, 1))
    ids = {c["id"] for c in shop.contacts()}
    events = list(shop.events())
    assert len({e["id"] for e in events}) == len(events)
    assert {e["contact_id"] for e in events} <= ids
    assert 4 * 3000 < len(events) < 7 * 3000
    orders = Counter(e["contact_id"] for e in events if e["type"] == "order")
    one_time = sum(1 for n in orders.values() if n == 1)
    loyal = sum(1 for n in orders.values() if n >= 15)
    assert one_time > len(orders) / 3
    assert 0 < loyal < len(orders) / 10
    assert len(ids) - len(orders) > 0  # never ordered
    scores = [e["amount"] for e in events if e["type"] == "nps"]
    assert scores and all(0 <= s <= 10 for s in scores)
    assert any(e["type"] == "referral" for e in events)
    for e in events:
        assert "2025-01-01" <= e["occurred_at"] < "2026-01-01"


def test_csv_and_jsonl_files_hold_the_same_rows(tmp_path: Path) -> None:
    shop = generate(5, 200)
    contacts_csv, events_csv = shop.write_csv(tmp_path, delimiter=";")
    contacts_jsonl, events_jsonl = shop.write_jsonl(tmp_path)
    with contacts_csv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert tuple(rows[0]) == CONTACT_COLUMNS
    lines = [json.loads(line) for line in contacts_jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in lines]
    assert [r["email"] or None for r in rows] == [r["email"] for r in lines]
    with events_csv.open(encoding="utf-8", newline="") as f:
        events = list(csv.DictReader(f, delimiter=";"))
    assert tuple(events[0]) == EVENT_COLUMNS
    assert len(events) == len(events_jsonl.read_text(encoding="utf-8").splitlines())
