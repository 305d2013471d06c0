"""SPEC "Input: contacts and events": formats, every field, upsert, all-or-nothing, derived
facts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Shop


def show(shop: Shop, contact_id: str) -> dict[str, Any]:
    return shop.json("contacts", "show", contact_id)  # type: ignore[no-any-return]


def write(shop: Shop, name: str, text: str, bom: bool = False) -> str:
    path = shop.root / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return str(path)


FULL_CSV_HEADER = (
    "id{d}email{d}phone{d}first_name{d}last_name{d}salutation{d}company{d}locale{d}timezone{d}"
    "country{d}street{d}postal_code{d}city{d}birthday{d}signup_at{d}consent_email{d}"
    "consent_sms{d}consent_card{d}tags{d}lieblingsblume\n"
)
FULL_ROW = [
    "1042", "jo@example.com", "+49 30 1234567", "Jörg", "Müller", "Herr", "Blumen GmbH",
    "de", "Europe/Vienna", "at", "Lindenstraße 5", "10969", "Berlin", "1980-02-29",
    "2026-01-10T10:00:00", "yes", "no", "", "vip|newsletter", "Rose",
]  # fmt: skip


def assert_full_contact(contact: dict[str, Any]) -> None:
    assert contact["id"] == "1042"
    assert contact["email"] == "jo@example.com"
    assert contact["phone"] == "+49301234567"
    assert (contact["first_name"], contact["last_name"]) == ("Jörg", "Müller")
    assert (contact["salutation"], contact["company"]) == ("Herr", "Blumen GmbH")
    assert (contact["locale"], contact["timezone"], contact["country"]) == (
        "de", "Europe/Vienna", "AT",
    )  # fmt: skip
    assert (contact["street"], contact["postal_code"], contact["city"]) == (
        "Lindenstraße 5", "10969", "Berlin",
    )  # fmt: skip
    assert contact["birthday"] == "1980-02-29"
    # naive times are in the config's time zone (Berlin, +01:00 in January), stored as UTC
    assert contact["signup_at"] == "2026-01-10T09:00:00Z"
    assert (contact["consent_email"], contact["consent_sms"], contact["consent_card"]) == (
        True, False, None,
    )  # fmt: skip
    assert sorted(contact["tags"]) == ["newsletter", "vip"]
    assert contact["attributes"] == {"lieblingsblume": "Rose"}


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize("bom", [False, True])
def test_csv_with_every_contact_field(shop: Shop, delimiter: str, bom: bool) -> None:
    row = delimiter.join(f'"{v}"' if delimiter in v else v for v in FULL_ROW)
    path = write(shop, "kunden.csv", FULL_CSV_HEADER.format(d=delimiter) + row + "\n", bom)
    shop.ok("import", "contacts", path)
    assert_full_contact(show(shop, "1042"))


def test_jsonl_file_and_stdin(shop: Shop) -> None:
    row = dict(zip(FULL_CSV_HEADER.format(d=",").strip().split(","), FULL_ROW, strict=True))
    row["tags"] = ["vip", "newsletter"]
    row["consent_email"], row["consent_sms"] = True, False
    path = write(shop, "kunden.jsonl", json.dumps(row, ensure_ascii=False) + "\n")
    shop.ok("import", "contacts", path)
    assert_full_contact(show(shop, "1042"))
    row["id"] = "1043"
    shop.ok("import", "contacts", "-", input=json.dumps(row) + "\n")
    assert show(shop, "1043")["city"] == "Berlin"


@pytest.mark.parametrize(
    "value, stored",
    [("true", True), ("false", False), ("yes", True), ("no", False), ("1", True),
     ("0", False), ("", None), ("YES", True)],
)  # fmt: skip
def test_consent_booleans(shop: Shop, value: str, stored: bool | None) -> None:
    path = write(
        shop, "k.csv", f"id,consent_email,consent_sms,consent_card\nc1,{value},{value},{value}\n"
    )
    shop.ok("import", "contacts", path)
    contact = show(shop, "c1")
    assert [contact[f"consent_{c}"] for c in ("email", "sms", "card")] == [stored] * 3


def test_bad_boolean_is_a_bad_row(shop: Shop) -> None:
    path = write(shop, "k.csv", "id,consent_email\nc1,vielleicht\n")
    result = shop.cli("import", "contacts", path)
    assert result.exit_code == 1
    assert f"{path}:2: consent_email:" in result.output


def test_events_every_field_csv(shop: Shop) -> None:
    shop.contacts({"id": "c1"})
    shop.campaign("thanks", 'type = "post_purchase"\n')
    shop.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}"
        "{{ event.id }}|{{ event.type }}|{{ event.amount | money }}|{{ event.currency }}"
        "|{{ event.gutschein }}|{{ event.occurred_at.isoformat() }}{% endblock %}",
    )
    path = write(
        shop, "orders.csv",
        "id;contact_id;occurred_at;amount;currency;gutschein\n"
        "o1;c1;2026-03-01 10:00;49,90;eur;HALLO10\n",
    )  # fmt: skip
    shop.ok("import", "events", path)
    answer = shop.json("preview", "thanks", "c1", "--at", "2026-03-01T12:00:00Z")
    text = answer["message"]["text"]
    parts = text.split("|")
    assert parts[:5] == ["o1", "order", "49,90 €", "EUR", "HALLO10"]
    assert parts[5].startswith("2026-03-01T09:00:00")


def test_events_jsonl_properties_and_items(shop: Shop) -> None:
    shop.contacts({"id": "c1"})
    shop.campaign("nps", 'type = "event"\nevent = "nps"\n', purpose="service")
    shop.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}"
        "{{ event.amount }}|{{ event.kanal }}|{{ event.items[0].name }}|{{ event.items[0].quantity }}"
        "{% endblock %}",
    )
    shop.events(
        {"id": "n1", "contact_id": "c1", "type": "nps", "occurred_at": "2026-03-01T10:00:00Z",
         "amount": 3, "properties": {"kanal": "app"},
         "items": [{"sku": "R1", "name": "Rose", "quantity": 2, "price": 4.5}]},
    )  # fmt: skip
    answer = shop.json("preview", "nps", "c1", "--at", "2026-03-01T12:00:00Z")
    assert answer["message"]["text"].split("|")[1:] == ["app", "Rose", "2"]
    assert answer["message"]["text"].split("|")[0] in ("3", "3.0")


def test_event_type_defaults_to_order(shop: Shop) -> None:
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-01T10:00:00Z", 20)
    assert show(shop, "c1")["order_count"] == 1


def test_extra_columns_in_audiences_and_templates(shop: Shop) -> None:
    path = write(shop, "k.csv", "id,email,consent_email,first_name,lieblingsblume\n"
                 "c1,c1@example.com,yes,Anna,Rose\nc2,c2@example.com,yes,Ben,Tulpe\n")  # fmt: skip
    shop.ok("import", "contacts", path)
    shop.campaign(
        "roses",
        'type = "post_purchase"\n',
        body='[audience]\nlieblingsblume = ["Rose"]\n',
        purpose="service",
    )
    shop.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}{{ contact.lieblingsblume }}{% endblock %}",
    )
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.order("o2", "c2", "2026-03-01T10:00:00Z")
    shop.tick("2026-03-01T12:00:00Z")
    assert [(m["contact_id"], m["text"]) for m in shop.outbox()] == [("c1", "Rose")]


def test_tags_in_audiences(shop: Shop) -> None:
    path = write(shop, "k.csv", "id,email,consent_email,first_name,tags\n"
                 "c1,c1@example.com,1,Anna,vip|newsletter\nc2,c2@example.com,1,Ben,b2b|vip\n")  # fmt: skip
    shop.ok("import", "contacts", path)
    shop.campaign(
        "vip",
        'type = "post_purchase"\n',
        body='[audience]\ntags = { all = ["vip"], not = ["b2b"] }\n',
    )
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.order("o2", "c2", "2026-03-01T10:00:00Z")
    assert [d["contact_id"] for d in shop.plan("2026-03-01T12:00:00Z")] == ["c1"]


def test_importing_twice_changes_nothing(shop: Shop) -> None:
    contacts = write(shop, "k.csv", "id,email,city,tags,farbe\nc1,c1@example.com,Berlin,a|b,rot\n")
    events = write(
        shop, "e.csv", "id,contact_id,occurred_at,amount\no1,c1,2026-03-01T10:00:00Z,10\n"
    )
    shop.ok("import", "contacts", contacts)
    shop.ok("import", "events", events)
    before = show(shop, "c1")
    time.sleep(1.1)  # an updated_at that moved would show
    shop.ok("import", "contacts", contacts)
    shop.ok("import", "events", events)
    assert show(shop, "c1") == before
    assert before["order_count"] == 1


def test_upsert_updates_by_id(shop: Shop) -> None:
    shop.contacts({"id": "c1", "city": "Berlin"})
    shop.contacts({"id": "c1", "city": "Wien"})
    assert show(shop, "c1")["city"] == "Wien"


def bad_file_rejected(shop: Shop, kind: str, name: str, text: str, expected: list[str]) -> None:
    path = write(shop, name, text)
    listing_before = shop.json("contacts", "show", "c1") if kind == "events" else None
    result = shop.cli("import", kind, path)
    assert result.exit_code == 1, result.output
    for line in expected:
        assert f"{path}:{line}" in result.output, result.output
    if kind == "events":
        assert shop.json("contacts", "show", "c1") == listing_before
    else:
        assert shop.cli("contacts", "show", "good").exit_code == 1


def test_bad_contact_rows_reject_the_file(shop: Shop) -> None:
    shop.contacts({"id": "c1"})
    bad_file_rejected(
        shop, "contacts", "k.csv",
        "id,email,birthday,timezone,country\n"
        "good,good@example.com,1990-01-01,Europe/Berlin,DE\n"
        "b1,not-an-email,,,\n"
        "b2,b2@example.com,1990-02-30,,\n"
        "b3,b3@example.com,,Mars/Olympus,\n"
        "b4,b4@example.com,,,Germany\n"
        ",nobody@example.com,,,\n",
        ["3: email: ", "4: birthday: ", "5: timezone: ", "6: country: ", "7: id: "],
    )  # fmt: skip


def test_bad_event_rows_reject_the_file(shop: Shop) -> None:
    shop.contacts({"id": "c1"})
    bad_file_rejected(
        shop, "events", "e.jsonl",
        '{"id": "o1", "contact_id": "c1", "occurred_at": "2026-03-01T10:00:00Z", "amount": 10}\n'
        '{"id": "o2", "contact_id": "nobody", "occurred_at": "2026-03-01T10:00:00Z"}\n'
        '{"id": "o3", "contact_id": "c1", "occurred_at": "gestern"}\n'
        '{"id": "o4", "contact_id": "c1", "occurred_at": "2026-03-01", "amount": "viel"}\n'
        '{"contact_id": "c1", "occurred_at": "2026-03-01"}\n'
        '{"id": "o6", "occurred_at": "2026-03-01"}\n'
        '{"id": "o7", "contact_id": "c1"}\n',
        ["2: contact_id: ", "3: occurred_at: ", "4: amount: ", "5: id: ", "6: contact_id: ",
         "7: occurred_at: "],
    )  # fmt: skip
    assert show(shop, "c1")["order_count"] == 0


def test_skip_invalid_imports_the_good_rows(shop: Shop) -> None:
    path = write(shop, "k.csv", "id,email\ngood,good@example.com\nbad,not-an-email\n,x@y.de\n")
    result = shop.cli("import", "contacts", path, "--skip-invalid")
    assert f"{path}:3: email: " in result.output and "(dropped)" in result.output
    assert f"{path}:4: id: is required" in result.output
    assert show(shop, "good")["email"] == "good@example.com"
    assert show(shop, "bad")["email"] is None  # the bad optional field is dropped, the row kept


def test_derived_facts(shop: Shop) -> None:
    shop.contacts({"id": "c1"}, {"id": "c2"})
    shop.events(
        {"id": "o1", "contact_id": "c1", "occurred_at": "2026-03-01T10:00:00Z", "amount": 10},
        {"id": "o2", "contact_id": "c1", "occurred_at": "2026-04-01T10:00:00Z", "amount": 32.5},
        {"id": "s1", "contact_id": "c1", "type": "signup", "occurred_at": "2026-05-01T10:00:00Z"},
    )  # fmt: skip
    contact = show(shop, "c1")
    assert contact["first_order_at"] == "2026-03-01T10:00:00Z"
    assert contact["last_order_at"] == "2026-04-01T10:00:00Z"
    assert contact["order_count"] == 2
    assert contact["total_spent"] == pytest.approx(42.5)
    assert contact["last_event_at"] == "2026-05-01T10:00:00Z"
    assert show(shop, "c2")["order_count"] == 0
    # derived facts are fields for audiences
    shop.campaign("big", 'type = "event"\nevent = "signup"\n',
                  body="[audience]\ntotal_spent = { min = 40 }\norder_count = { min = 2 }\n")  # fmt: skip
    assert [d["contact_id"] for d in shop.plan("2026-05-01T12:00:00Z")] == ["c1"]


def test_unknown_extension_is_refused(shop: Shop, tmp_path: Path) -> None:
    path = write(shop, "k.xlsx", "id\nc1\n")
    assert shop.cli("import", "contacts", path).exit_code == 1


@pytest.mark.parametrize("score, ok", [("0", True), ("10", True), ("11", False), ("-1", False)])
def test_nps_amount_is_a_score(shop: Shop, score: str, ok: bool) -> None:
    shop.contacts({"id": "c1"})
    path = write(
        shop, "nps.csv", f"id,contact_id,type,occurred_at,amount\nn1,c1,nps,2026-03-01,{score}\n"
    )
    result = shop.cli("import", "events", path)
    assert result.exit_code == (0 if ok else 1), result.output
    if not ok:
        assert f"{path}:2: amount: " in result.output
