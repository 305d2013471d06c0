"""A plain CSV of events is read a batch at a time, column by column
(regard.store.columns): for every row it keeps, the result is what parse_event gives, and
every other row is handed to parse_event; a whole import gives the same store, counts and
problems (FILE:LINE: field: reason, dropped or not) as reading the file row by row."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import BASIC_CONFIG, Workspace
from import_helpers import rows, snapshot
from regard.store import Store, open_store
from regard.store.columns import EventColumns
from regard.store.derived import recompute_all
from regard.store.importer import RejectedFile, _Import, import_contacts, import_events
from regard.store.rows import BadRow, RowContext, parse_event
from regard.times import zone
from regard.workspace import load_config

BERLIN = zone("Europe/Berlin")
COLUMNS = ["id", "contact_id", "type", "occurred_at", "amount", "currency", "voided_at"]
EXTRA = ["channel", "coupon", "notiz"]
texts = st.text(alphabet=st.sampled_from(list("aäöüßÄé Z0,;|\"'\t\n-.")), max_size=6)
VALUES: dict[str, st.SearchStrategy[str]] = {
    "id": st.one_of(st.sampled_from(["o1", " o2 ", "ö3", "o4", "", "o\t5", "o\x016"]), texts),
    "contact_id": st.sampled_from(["c1", "c2", " c1 ", "Jörg", "", "unknown", "c\x1f"]),
    "type": st.sampled_from(["", "order", " order ", "nps", "signup", "Rückgabe"]),
    "occurred_at": st.one_of(
        st.sampled_from(
            [
                "2026-03-01T10:00:00Z",
                " 2026-03-01T10:00:00+01:00 ",
                "2026-03-29T02:30:00",  # a time the clock skipped in Berlin
                "2026-10-25T02:30:00",  # one it went through twice
                "2026-03-01",
                "2026-03-01 14:30",
                "20260301T103000",
                "2026-03-01T10:00:00.75Z",
                "1800-01-01",
                "9999-12-31T23:59:59-12:00",
                "2026-13-01",
                "gestern",
                "",
            ]
        ),
        texts,
    ),
    "amount": st.one_of(
        st.sampled_from(
            [
                "",
                "49.90",
                "49,90",
                " 7 ",
                "-0.5",
                "0",
                "10",
                "11",
                "1.234",
                "1.234,50",
                "1,234.50",
                "12€",
                "1e3",
                "٣",
                "99999999999999",
                "9999999999999",
                "0012,00",
            ]
        ),
        texts,
    ),
    "currency": st.sampled_from(["", "EUR", "eur", " CHF ", "XXQ", "€"]),
    "voided_at": st.sampled_from(["", "2026-03-02T00:00:00Z", "nie", "2026-03-02"]),
    "channel": st.one_of(st.sampled_from(["web", "", " app ", "Laden Köln"]), texts),
    "coupon": st.sampled_from(["", "WELCOME10", "Grüße", '"x"', "a\\b"]),
    "notiz": texts,
}
headers = st.lists(st.sampled_from([*COLUMNS, *EXTRA]), unique=True).map(
    lambda extra: tuple(dict.fromkeys(["id", "contact_id", "occurred_at", *extra]))
)


def rows_of(header: tuple[str, ...]) -> st.SearchStrategy[list[list[str]]]:
    return st.lists(st.tuples(*(VALUES[c] for c in header)).map(list), min_size=1, max_size=25)


def _facts_as_recomputed(store: Store) -> None:
    """The derived facts the import left are those a recomputation from scratch gives."""
    facts = "SELECT id, first_order_at, last_order_at, order_count, total_spent, last_event_at"
    kept = store.conn.execute(f"{facts} FROM contacts ORDER BY id").fetchall()
    with store.write() as conn:
        conn.execute("UPDATE contacts SET order_count = -1, total_spent = -1, last_event_at = 0")
        recompute_all(conn)
    assert store.conn.execute(f"{facts} FROM contacts ORDER BY id").fetchall() == kept


@given(
    headers.flatmap(lambda h: st.tuples(st.just(h), rows_of(h))),
    st.booleans(),
)
def test_the_column_reader_keeps_only_rows_parse_event_reads_and_reads_them_the_same(
    layout: tuple[tuple[str, ...], list[list[str]]], decimal_comma: bool
) -> None:
    header, rows = layout
    ctx = RowContext(BERLIN, "DE", decimal_comma=decimal_comma)
    reader = EventColumns(header, ctx, now=1_700_000_000)
    lines = list(range(2, 2 + len(rows)))
    read = reader.parse(lines, rows)
    slow = set(read.slow)
    kept = [n for n in range(len(rows)) if n not in slow]
    assert read.lines == [lines[n] for n in kept]
    for n, params, digest in zip(kept, read.params, read.digests, strict=True):
        try:
            expected = parse_event(dict(zip(header, rows[n], strict=True)), ctx)
        except BadRow as bad:  # pragma: no cover - what the test is there to catch
            pytest.fail(f"row {rows[n]!r} kept, but parse_event says {bad}")
        values = params[1 : 1 + len(expected.values)]
        assert reader.key == expected.key
        assert params[0] == expected.id
        assert values == expected.values
        assert [type(v) for v in values] == [type(v) for v in expected.values]
        assert digest == hash((expected.key, expected.values))
        assert params[-1] == 1_700_000_000
        if "properties" in expected.key:  # the stored form of a new row: its nulls left out
            patch = expected.values[-1]
            assert params[-2] == _without_nulls(patch)


def _without_nulls(patch: str) -> str:
    import json

    return json.dumps(
        {k: v for k, v in json.loads(patch).items() if v is not None},
        ensure_ascii=False,
        separators=(",", ":"),
    )


NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # both imports at one time: the same stamps
CONTACTS = "id,email\nc1,c1@example.de\nc2,c2@example.de\nJörg,joerg@example.de\n"


_TEMPLATE: dict[str, bytes] = {}


def _store_with_contacts(folder: Path) -> None:
    """A migrated store with the contacts c1, c2 and Jörg in ``folder`` (made once, copied)."""
    if not _TEMPLATE:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "regard.toml").write_text(BASIC_CONFIG, encoding="utf-8")
            (root / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
            config = load_config(root / "regard.toml")
            with open_store(config.store_target) as store:
                import_contacts(store, config, root / "contacts.csv")
                store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _TEMPLATE["db"] = (root / "regard.db").read_bytes()
    (folder / "regard.db").write_bytes(_TEMPLATE["db"])


def _import(
    root: Path, name: str, text: str, skip_invalid: bool, columns: bool
) -> tuple[Any, dict[str, Any]]:
    """Import the events file ``text`` into a store with three contacts, read column-wise
    or row by row; (the result or the rejection's problems, the store's content)."""
    folder = root / name
    folder.mkdir()
    (folder / "regard.toml").write_text(BASIC_CONFIG, encoding="utf-8")
    _store_with_contacts(folder)
    events = folder / "events.csv"
    events.write_text(text, encoding="utf-8")
    config = load_config(folder / "regard.toml")
    with (
        open_store(config.store_target) as store,
        mock.patch("regard.store.importer.COLUMNWISE", columns),
        mock.patch("regard.store.importer.utcnow", lambda: NOW),
    ):
        try:
            result: Any = import_events(store, config, events, skip_invalid=skip_invalid)
            outcome: Any = result.as_dict()
            problems = outcome.pop("problems") + outcome.pop("warnings")
            outcome.pop("file")
        except RejectedFile as rejected:
            outcome, problems = "rejected", rejected.problems
        _facts_as_recomputed(store)
    # the problems name the file as given: the same name in both folders
    return (outcome, [p.replace(str(events), "events.csv") for p in problems]), snapshot(
        folder / "regard.db"
    )


@given(
    headers.flatmap(lambda h: st.tuples(st.just(h), rows_of(h))),
    st.sampled_from([",", ";"]),
    st.booleans(),
)
def test_an_import_read_column_wise_is_the_import_read_row_by_row(
    layout: tuple[tuple[str, ...], list[list[str]]], delimiter: str, skip_invalid: bool
) -> None:
    header, rows = layout
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        by_columns = _import(root, "columns", buffer.getvalue(), skip_invalid, columns=True)
        by_rows = _import(root, "rows", buffer.getvalue(), skip_invalid, columns=False)
    assert by_columns[0] == by_rows[0]
    assert by_columns[1] == by_rows[1]


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    path = workspace.write("contacts.csv", CONTACTS)
    assert workspace.cli("import", "contacts", str(path)).exit_code == 0
    return workspace


HEADER = "id,contact_id,occurred_at,amount,channel\n"


def _orders(count: int) -> list[str]:
    return [f"o{n},c{1 + n % 2},2026-01-01T10:00:00Z,{n}.50,web\n" for n in range(count)]


@pytest.mark.parametrize("stored_before", [False, True])
def test_an_id_on_two_lines_with_other_values_names_both_lines(
    shop: Workspace, stored_before: bool
) -> None:
    if stored_before:  # a table with events: each row is noted as it is written
        first = shop.write("first.csv", HEADER + "x1,c1,2025-01-01,1,web\n")
        assert shop.cli("import", "events", str(first)).exit_code == 0
    before = snapshot(shop.store_target)
    lines = _orders(2500)  # line 2403 repeats line 4's id, a batch (2,000 rows) later
    lines[2401] = "o2,c1,2026-01-01T10:00:00Z,99,app\n"
    path = shop.write("events.csv", HEADER + "".join(lines))
    result = shop.cli("import", "events", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{path}:2403: id: 'o2' is also on line 4, with other values (lines 4 and 2403: "
        "one event per id)"
    )
    assert snapshot(shop.store_target) == before  # nothing written
    for skip in ([], ["--skip-invalid"]):  # which line is right is for the shop to say
        assert shop.cli("import", "events", str(path), *skip).exit_code == 1


@pytest.mark.parametrize("stored_before", [False, True])
def test_an_id_on_two_lines_with_the_same_values_is_one_event(
    shop: Workspace, stored_before: bool
) -> None:
    if stored_before:
        first = shop.write("first.csv", HEADER + "x1,c1,2025-01-01,1,web\n")
        assert shop.cli("import", "events", str(first)).exit_code == 0
    lines = _orders(2500)
    lines[2401] = lines[2]  # the same row again, a batch later
    lines[7] = lines[6]  # and in the same batch
    path = shop.write("events.csv", HEADER + "".join(lines))
    result = shop.cli_json("import", "events", str(path))
    assert (result["rows"], result["inserted"], result["unchanged"]) == (2500, 2498, 2)
    stored = rows(shop.store_target, "SELECT amount, properties FROM events WHERE id = 'o2'")
    assert [tuple(r) for r in stored] == [(2.5, '{"channel":"web"}')]


def test_a_bad_row_is_named_and_the_rest_imported_with_skip_invalid(shop: Workspace) -> None:
    lines = _orders(2100)
    lines[5] = "o5,c1,2026-01-01T10:00:00Z,12€,Köln\n"  # a bad optional field: dropped
    lines[2050] = "o2050,c1,gestern,3,web\n"  # a bad required one: the row is skipped
    lines[2060] = "o2060,niemand,2026-01-01,3,web\n"  # an unknown contact: skipped too
    path = shop.write("events.csv", HEADER + "".join(lines))
    rejected = shop.cli("import", "events", str(path))
    assert rejected.exit_code == 1
    assert rejected.stderr.splitlines()[:3] == [
        f"{path}:7: amount: '12€' is not a decimal number (like 49.90 or 49,90)",
        f"{path}:2052: occurred_at: 'gestern' is not an ISO 8601 time (like "
        "2026-03-01T14:30:00+01:00)",
        f"{path}:2062: contact_id: unknown contact 'niemand' (import it with `regard import "
        "contacts` first)",
    ]
    result = shop.cli_json("import", "events", str(path), "--skip-invalid")
    assert (result["inserted"], result["invalid"], result["dropped"]) == (2098, 2, 1)
    assert result["problems"][0] == (
        f"{path}:7: amount: '12€' is not a decimal number (like 49.90 or 49,90) (dropped)"
    )
    stored = rows(shop.store_target, "SELECT amount, properties FROM events WHERE id = 'o5'")
    assert [tuple(r) for r in stored] == [(None, '{"channel":"Köln"}')]


def test_a_file_rewritten_between_its_two_readings_is_refused_whole(shop: Workspace) -> None:
    """The lines of a first import are noted in a second reading, only when an id came
    twice: a file rewritten in between (an export still being written) is refused, not
    read as another file."""
    before = snapshot(shop.store_target)
    lines = _orders(50)
    lines[30] = "o2,c1,2026-01-01T10:00:00Z,99,app\n"  # an id twice: the second reading
    path = shop.write("events.csv", HEADER + "".join(lines))
    read = _Import._read_batches

    def then_rewritten(self: _Import, *args: Any, **kwargs: Any) -> Any:
        done = read(self, *args, **kwargs)
        with path.open("a", encoding="utf-8") as more:
            more.write("o99,c1,2026-01-02T10:00:00Z,5,web\n")
        return done

    with mock.patch.object(_Import, "_read_batches", then_rewritten):
        result = shop.cli("import", "events", str(path))
    assert result.exit_code == 1
    assert "the file changed while it was being imported; nothing was imported" in result.stderr
    assert snapshot(shop.store_target) == before
