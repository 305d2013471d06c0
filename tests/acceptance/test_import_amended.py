"""SPEC Part 2 "Shop exports and sync", the import rules it amends: .json arrays, --map and
[import], the same id twice, tags split on | or , and compared case-insensitively, events
that came too late for a campaign."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from regard.store import open_store

from .conftest import Shop


def write(shop: Shop, name: str, text: str) -> str:
    path = shop.root / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def show(shop: Shop, contact_id: str) -> dict[str, Any]:
    return shop.json("contacts", "show", contact_id)  # type: ignore[no-any-return]


def test_a_json_array_in_the_plain_format(shop: Shop) -> None:
    rows = [{"id": "c1", "first_name": "Jürgen", "tags": ["VIP"]}, {"id": "c2", "city": "Köln"}]
    path = write(shop, "kunden.json", json.dumps(rows, ensure_ascii=False, indent=1))
    result = shop.json("import", "contacts", path)
    assert result["inserted"] == 2
    assert show(shop, "c1")["first_name"] == "Jürgen" and show(shop, "c1")["tags"] == ["vip"]
    broken = write(shop, "broken.json", '[{"id": "c3"},\n {"id": }]')
    answer = shop.cli("import", "contacts", broken)
    assert answer.exit_code == 1 and f"{broken}:2: not valid JSON" in answer.output


def test_map_renames_columns_and_the_config_keeps_a_daily_mapping(shop: Shop) -> None:
    path = write(shop, "kunden.csv", "Kundennr;E-Mail;Vorname\n1042;anna@example.de;Anna\n")
    missing = shop.cli("import", "contacts", path)
    assert missing.exit_code == 1 and "id: the required column is missing" in missing.output
    shop.ok("import", "contacts", path, "--map", "Kundennr=id,E-Mail=email,Vorname=first_name")
    assert show(shop, "1042")["email"] == "anna@example.de"
    assert shop.cli("import", "contacts", path, "--map", "Kundennr").exit_code == 2
    config = shop.root / "regard.toml"
    config.write_text(
        config.read_text() + '\n[import]\nmap = { Kundennr = "id", "E-Mail" = "email" }\n'
    )
    again = write(shop, "kunden2.csv", "Kundennr;E-Mail\n1043;ben@example.de\n")
    shop.ok("import", "contacts", again)
    assert show(shop, "1043")["email"] == "ben@example.de"
    assert (
        shop.cli("import", "contacts", again, "--format", "shopify", "--map", "a=b").exit_code == 2
    )


def test_one_id_on_two_lines_with_other_values_names_both_lines(shop: Shop) -> None:
    path = write(shop, "k.csv", "id,city\nc1,Berlin\nc2,Köln\nc1,Bonn\nc2,Köln\n")
    result = shop.cli("import", "contacts", path, "--skip-invalid")
    assert result.exit_code == 1
    assert f"{path}:4: id: 'c1' is also on line 2, with other values" in result.output
    assert "c2" not in result.output  # identical lines are fine
    assert shop.cli("contacts", "show", "c1").exit_code == 1  # nothing was imported
    same = write(shop, "same.csv", "id,city\nc1,Berlin\nc1,Berlin\n")
    assert shop.json("import", "contacts", same)["inserted"] == 1


def test_tags_split_on_bar_or_comma_and_match_in_any_case(shop: Shop) -> None:
    path = write(
        shop,
        "k.csv",
        "id,email,consent_email,first_name,tags\n"
        'c1,c1@example.com,1,Anna,"B2B, Großkunde"\nc2,c2@example.com,1,Ben,Vip|Newsletter\n',
    )
    shop.ok("import", "contacts", path)
    assert show(shop, "c1")["tags"] == ["b2b", "großkunde"]
    shop.campaign(
        "private", 'type = "post_purchase"\n', body='[audience]\ntags = { not = ["B2B"] }\n'
    )
    shop.campaign("big", 'type = "post_purchase"\n', body='[audience]\ntags = "GROSSKUNDE"\n')
    shop.campaign("vip", 'type = "post_purchase"\n', body='[audience]\ntags = ["vip"]\n')
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.order("o2", "c2", "2026-03-01T10:00:00Z")
    plan = {(d["campaign"], d["contact_id"]) for d in shop.plan("2026-03-01T12:00:00Z")}
    assert plan == {("private", "c2"), ("vip", "c2")}  # "großkunde" is not "grosskunde"


def test_the_migration_lower_cases_stored_tags(tmp_path: Any) -> None:
    db = tmp_path / "old.db"
    from regard.store.schema import MIGRATIONS

    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at INTEGER)")
    for name, fn in MIGRATIONS:  # a store of the first release: m001 to m003
        if name == "m004_server_and_bounces":
            break
        fn(conn)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    conn.execute(
        "INSERT INTO contacts (id, tags, created_at, updated_at) VALUES ('c1', ?, 0, 0)",
        (json.dumps(["B2B", "Übersee", "b2b"]),),
    )
    conn.commit()
    conn.close()
    with open_store(db) as store:
        stored = store.conn.execute("SELECT tags FROM contacts WHERE id = 'c1'").fetchone()[0]
    assert json.loads(stored) == ["b2b", "übersee"]


def test_an_import_says_which_campaigns_its_late_events_missed(shop: Shop) -> None:
    shop.contacts({"id": "c1"}, {"id": "c2"})
    shop.campaign("thanks", 'type = "post_purchase"\ndelay = "3d"\n', max_lateness="2d")
    shop.campaign("first", 'type = "post_purchase"\nnth = 1\n')
    shop.campaign("off", 'type = "post_purchase"\n', enabled=False)
    shop.campaign("nps", 'type = "event"\nevent = "nps"\n')
    rows = [
        {"id": "o1", "contact_id": "c1", "occurred_at": "2026-03-01T10:00:00Z", "amount": 10},
        {"id": "o2", "contact_id": "c1", "occurred_at": "2026-03-05T10:00:00Z", "amount": 10},
        {"id": "o3", "contact_id": "c2", "occurred_at": "2026-03-06T10:00:00Z", "amount": 10},
        {"id": "far", "contact_id": "c2", "occurred_at": "2099-01-01T10:00:00Z", "amount": 10},
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path = write(shop, "e.jsonl", text)
    result = shop.json("import", "events", path)
    assert result["late"] == {"thanks": 3, "first": 2}
    plain = shop.ok("import", "events", write(shop, "f.jsonl", text.replace('"id": "', '"id": "p')))
    assert "too late: 3 events for campaign thanks" in plain.stdout
    again = shop.json("import", "events", path)  # nothing new: nothing late
    assert again["late"] == {}
