"""Amounts in a ``;``-separated CSV (Excel's in a German locale) are read in German
notation: ``,`` the decimal mark, ``.`` between groups of three; ``1.234`` alone is
ambiguous and refused, naming the line."""

from __future__ import annotations

import pytest

from conftest import Workspace
from import_helpers import rows, snapshot
from regard.store import fields
from regard.store.fields import FieldError


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    path = workspace.write("contacts.csv", "id;email\nann;ann@b.de\n")
    assert workspace.cli("import", "contacts", str(path)).exit_code == 0
    return workspace


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.234,50", 1234.5),
        ("1.234.567,00", 1234567.0),
        ("49,90", 49.9),
        ("1234,5", 1234.5),
        ("-0,99", -0.99),
        ("1234", 1234.0),
        ("49.90", 49.9),  # two digits after the point: a decimal point, not thousands
        ("1234.567", 1234.567),  # four digits before it: no thousands grouping either
        ("", None),
    ],
)
def test_german_notation(text: str, value: float | None) -> None:
    assert fields.german_decimal("amount", text) == value


def test_a_lone_thousands_group_is_ambiguous_and_says_how_to_write_either() -> None:
    with pytest.raises(FieldError) as caught:
        fields.german_decimal("amount", "1.234")
    assert caught.value.reason == (
        "'1.234' is ambiguous in a ;-separated file: write 1234 or 1.234,00 if it means "
        "1234, 1,234 if it means 1.234"
    )


@pytest.mark.parametrize("text", ["1,234.50", "1.23,4", "12.34.56"])
def test_mixed_or_misgrouped_separators_are_refused(text: str) -> None:
    with pytest.raises(FieldError):
        fields.german_decimal("amount", text)


def test_a_semicolon_file_reads_german_amounts(shop: Workspace) -> None:
    path = shop.write(
        "events.csv",
        "id;contact_id;occurred_at;amount;currency\n"
        "o1;ann;2026-01-10T10:00:00Z;1.234,50;EUR\n"
        "o2;ann;2026-01-11T10:00:00Z;49,90;EUR\n"
        "o3;ann;2026-01-12T10:00:00Z;12.000,00;EUR\n",
    )
    result = shop.cli("import", "events", str(path))
    assert result.exit_code == 0, result.output
    stored = {r["id"]: r["amount"] for r in rows(shop.store_target, "SELECT * FROM events")}
    assert stored == {"o1": 1234.5, "o2": 49.9, "o3": 12000.0}


def test_an_ambiguous_amount_rejects_the_file_naming_its_line(shop: Workspace) -> None:
    before = snapshot(shop.root / "regard.db")
    path = shop.write(
        "events.csv",
        "id;contact_id;occurred_at;amount\n"
        "o1;ann;2026-01-10T10:00:00Z;1.234,50\n"
        "o2;ann;2026-01-11T10:00:00Z;1.234\n",
    )
    result = shop.cli("import", "events", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: amount: '1.234' is ambiguous in a ;-separated file" in result.stderr
    assert snapshot(shop.root / "regard.db") == before


def test_a_comma_file_keeps_the_point_as_decimal_mark(shop: Workspace) -> None:
    path = shop.write(
        "events.csv", "id,contact_id,occurred_at,amount\no1,ann,2026-01-10T10:00:00Z,1.234\n"
    )
    assert shop.cli("import", "events", str(path)).exit_code == 0
    assert rows(shop.store_target, "SELECT amount FROM events")[0][0] == 1.234
