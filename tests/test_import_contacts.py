from __future__ import annotations

import json

import pytest

from conftest import Workspace
from import_helpers import contact, rows, snapshot

HEADER = (
    "id,email,phone,first_name,last_name,country,birthday,signup_at,consent_email,tags,shoe_size\n"
)


def test_a_csv_of_contacts_is_stored_with_every_field_normalised(workspace: Workspace) -> None:
    path = workspace.write(
        "contacts.csv",
        HEADER
        + "1042,Juergen.Mueller@Web.DE,0171 2345678,Jürgen,Müller,de,1980-02-29,2025-03-01 10:00,yes,vip|newsletter,44\n"
        + '7,"o\'brien@example.co.uk","+44 7400 123456",Chloë,"O\'Brien, Jr.",GB,,2025-03-01T09:00:00Z,0,,\n',
    )
    result = workspace.cli("import", "contacts", str(path))
    assert result.exit_code == 0, result.output
    assert "2 rows: 2 new, 0 updated, 0 unchanged" in result.stdout
    c = contact(workspace.store_target, "1042")
    assert c["email"] == "Juergen.Mueller@web.de"
    assert c["phone"] == "+491712345678"  # read in the row's country
    assert (c["first_name"], c["last_name"], c["country"]) == ("Jürgen", "Müller", "DE")
    assert c["birthday"] == "1980-02-29"
    assert c["signup_at"] == 1740819600  # naive: Europe/Berlin (UTC+1 in March)
    assert c["consent_email"] == 1 and c["consent_sms"] is None
    assert json.loads(c["tags"]) == ["vip", "newsletter"]
    assert json.loads(c["attributes"]) == {"shoe_size": "44"}
    assert c["order_count"] == 0 and c["total_spent"] == 0
    other = contact(workspace.store_target, "7")
    assert other["last_name"] == "O'Brien, Jr." and other["phone"] == "+447400123456"
    assert other["consent_email"] == 0 and other["tags"] == "[]" and other["birthday"] is None
    assert other["signup_at"] == 1740819600


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("email", "juergen@@web.de", "'juergen@@web.de' is not a valid e-mail address: "),
        ("email", "jo@localhost", "'jo@localhost' is not a valid e-mail address: "),
        ("phone", "12345", "'12345' is not a valid phone number"),
        ("country", "Germany", "'Germany' is not an ISO 3166-1 alpha-2 country code (like DE)"),
        ("country", "EU", "'EU' is not an ISO 3166-1 alpha-2 country code (like DE)"),
        (
            "timezone",
            "Berlin",
            "unknown time zone 'Berlin' (expected an IANA name like Europe/Berlin)",
        ),
        ("locale", "xx_QQ", "unknown locale 'xx_QQ' (expected a code like de or en_GB)"),
        ("birthday", "31.12.1980", "'31.12.1980' is not a date (expected YYYY-MM-DD)"),
        ("birthday", "1981-02-29", "'1981-02-29' is not a date (expected YYYY-MM-DD)"),
        (
            "signup_at",
            "yesterday",
            "'yesterday' is not an ISO 8601 time (like 2026-03-01T14:30:00+01:00)",
        ),
        ("consent_sms", "maybe", "'maybe' is not a boolean (true/false, yes/no, 1/0, or empty)"),
        ("order_count", "3", "is computed by regard and cannot be imported"),
    ],
)
def test_each_bad_value_is_named_with_file_line_and_field(
    workspace: Workspace, column: str, value: str, reason: str
) -> None:
    path = workspace.write("c.csv", f"id,{column}\n1,\n2,{value}\n")
    result = workspace.cli("import", "contacts", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: {column}: {reason}" in result.stderr
    assert rows(workspace.store_target, "SELECT * FROM contacts") == []


def test_phone_without_country_code_uses_the_senders_country(workspace: Workspace) -> None:
    path = workspace.write("c.csv", "id,phone\n1,030 1234567\n")
    assert workspace.cli("import", "contacts", str(path)).exit_code == 0
    assert contact(workspace.store_target, "1")["phone"] == "+49301234567"


def test_a_missing_id_and_a_bad_value_are_both_listed(workspace: Workspace) -> None:
    path = workspace.write("c.csv", "id,email,country\n,a@b.de,XX\n")
    result = workspace.cli("import", "contacts", str(path))
    assert result.exit_code == 1
    assert f"{path}:2: id: is required" in result.stderr
    assert f"{path}:2: country: 'XX' is not an ISO 3166-1 alpha-2 country code (like DE)" in (
        result.stderr
    )


def test_a_rejected_file_leaves_the_store_exactly_as_it_was(workspace: Workspace) -> None:
    db = workspace.store_target
    good = workspace.write("good.csv", HEADER + "1,a@b.de,,Ann,Alt,DE,,,,,40\n")
    assert workspace.cli("import", "contacts", str(good)).exit_code == 0
    before = snapshot(db)
    lines = [HEADER] + [f"{n},n{n}@b.de,,N,N,DE,,,,,\n" for n in range(2, 5000)]
    lines.append("1,changed@b.de,,Ann,Alt,DE,,,,,41\n")
    lines.append("9999,bad-address,,X,Y,DE,,,,,\n")  # last line: after many written batches
    bad = workspace.write("bad.csv", "".join(lines))
    result = workspace.cli("import", "contacts", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:5001: email: 'bad-address' is not a valid e-mail address" in result.stderr
    assert "1 bad row; nothing was imported" in result.stderr
    assert snapshot(db) == before


def test_skip_invalid_imports_the_good_rows_and_lists_the_bad(workspace: Workspace) -> None:
    path = workspace.write("c.csv", "id,email\n1,a@b.de\n2,nope\n3,c@d.de\n,x@y.de\n")
    result = workspace.cli("import", "contacts", str(path), "--skip-invalid")
    assert result.exit_code == 0
    # a bad optional field is dropped and its row kept; a bad required one skips the row
    assert f"{path}:3: email: 'nope' is not a valid e-mail address: " in result.stderr
    assert "(dropped)" in result.stderr.splitlines()[0]
    assert f"{path}:5: id: is required" in result.stderr
    assert (
        "4 rows: 3 new, 0 updated, 0 unchanged, 1 invalid (not imported), "
        "1 bad optional fields dropped" in result.stdout
    )
    found = rows(workspace.store_target, "SELECT id, email FROM contacts ORDER BY id")
    assert [(r["id"], r["email"]) for r in found] == [("1", "a@b.de"), ("2", None), ("3", "c@d.de")]


def test_importing_the_same_file_twice_changes_nothing(workspace: Workspace) -> None:
    db = workspace.store_target
    path = workspace.write("c.csv", HEADER + "1,a@b.de,,Ann,Alt,DE,1990-01-01,,true,vip,40\n")
    assert workspace.cli("import", "contacts", str(path)).exit_code == 0
    before = snapshot(db)
    again = workspace.cli_json("import", "contacts", str(path))
    assert again["unchanged"] == 1 and again["updated"] == 0 and again["inserted"] == 0
    assert snapshot(db) == before  # updated_at too


def test_absent_columns_keep_stored_values_and_empty_ones_clear_them(workspace: Workspace) -> None:
    db = workspace.store_target
    first = workspace.write(
        "a.csv", "id,email,city,tags,shoe_size,team\n1,a@b.de,Köln,vip,40,red\n"
    )
    assert workspace.cli("import", "contacts", str(first)).exit_code == 0
    second = workspace.write("b.csv", "id,city,tags,shoe_size\n1,,,41\n")
    result = workspace.cli_json("import", "contacts", str(second))
    assert result["updated"] == 1
    c = contact(db, "1")
    assert c["email"] == "a@b.de"  # column absent: kept
    assert c["city"] is None and c["tags"] == "[]"  # present but empty: cleared
    assert json.loads(c["attributes"]) == {"shoe_size": "41", "team": "red"}
    third = workspace.write("c.csv", "id,team\n1,\n")
    assert workspace.cli("import", "contacts", str(third)).exit_code == 0
    assert json.loads(contact(db, "1")["attributes"]) == {"shoe_size": "41"}


def test_jsonl_contacts_with_native_values_and_attributes(workspace: Workspace) -> None:
    db = workspace.store_target
    path = workspace.write(
        "c.jsonl",
        '{"id": 1042, "email": "a@b.de", "consent_sms": false, "tags": ["vip"], '
        '"attributes": {"plan": "pro"}, "points": 120}\n'
        "\n"
        '{"id": "x", "tags": [1]}\n',
    )
    result = workspace.cli("import", "contacts", str(path))
    assert result.exit_code == 1
    assert (
        f"{path}:3: tags: must be a list of strings (in CSV: tags separated by | or ,)"
        in result.stderr
    )
    fixed = workspace.write("d.jsonl", path.read_text().replace('"tags": [1]', '"tags": []'))
    assert workspace.cli("import", "contacts", str(fixed)).exit_code == 0
    c = contact(db, "1042")
    assert c["consent_sms"] == 0 and json.loads(c["tags"]) == ["vip"]
    assert json.loads(c["attributes"]) == {"points": 120, "plan": "pro"}


def test_a_rejected_file_lists_one_bad_field_per_line_then_the_verdict(
    workspace: Workspace,
) -> None:
    path = workspace.write("c.csv", "id,email,country\n1,nope,DE\n2,a@b.de,DE\n,x@y.de,Mars\n")
    result = workspace.cli("import", "contacts", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:2: email: 'nope' is not a valid e-mail address: "
        "An email address must have an @-sign.",
        f"{path}:4: id: is required",
        f"{path}:4: country: 'Mars' is not an ISO 3166-1 alpha-2 country code (like DE)",
        f"error: {path}: 2 bad rows; nothing was imported "
        "(fix them, or pass --skip-invalid to import 2 rows, dropping the bad optional fields "
        "and skipping rows with a bad required one)",
    ]
