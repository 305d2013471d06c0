"""``regard migrate-store --to TARGET``: the store copied, checked row for row (counts and a
digest per table), into an empty SQLite file or PostgreSQL database, and back; and
``simulate`` on a PostgreSQL store, replayed on a SQLite copy made by the same copier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Workspace
from regard.store import open_store
from regard.store.copy import checks, row_hash, tables
from regard.times import now_instant

PASSWORD = "pg-Pa55word-9"


def shop(workspace: Workspace) -> None:
    """A store with something in every kind of row: contacts with attributes and
    non-ASCII names, orders, sent deliveries with their log, ticks, a forgotten contact
    (its pseudonym and hashed suppression), an unsubscribe."""
    workspace.write(
        "campaigns/thanks.toml",
        'channel = "email"\nprovider = "outbox"\ntemplate = "thanks"\nmax_lateness = "30d"\n'
        '[trigger]\ntype = "post_purchase"\n',
    )
    workspace.write(
        "templates/thanks.j2",
        "{% block subject %}Danke, {{ contact.first_name }}!{% endblock %}"
        "{% block text %}Hallo {{ contact.first_name }}, danke.{% endblock %}",
    )
    contacts = workspace.write(
        "contacts.csv",
        "id,email,first_name,last_name,consent_email,tier,score\n"
        + "".join(
            f"c{i},c{i}@example.org,Jürgen{i},Müller-Śląski,true,{'gold' if i % 3 else 'silver'},"
            f"{i * 1.5}\n"
            for i in range(40)
        ),
    )
    events = workspace.write(
        "events.csv",
        "id,contact_id,type,occurred_at,amount\n"
        + "".join(f"o{i},c{i},order,2026-05-20T10:00:00,{10 + i}.25\n" for i in range(40)),
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0
    assert workspace.cli("run", "--at", "2026-05-20T12:00:00").exit_code == 0
    assert workspace.cli("contacts", "forget", "c7").exit_code == 0
    assert workspace.cli("contacts", "unsubscribe", "c8").exit_code == 0


def use_store(workspace: Workspace, store: str) -> None:
    text = workspace.config.read_text(encoding="utf-8")
    lines = [f'store = "{store}"' if ln.startswith("store = ") else ln for ln in text.splitlines()]
    workspace.config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def listing(workspace: Workspace) -> Any:
    return workspace.cli_json("deliveries", "--json")


@pytest.mark.sqlite_only
def test_a_copy_to_a_new_file_holds_every_row_and_serves_the_same_answers(
    workspace: Workspace,
) -> None:
    shop(workspace)
    before = listing(workspace)
    with open_store(workspace.root / "regard.db") as source:
        expected = checks(source)
        key = source.pseudonyms.contact("c7")
    result = workspace.cli("migrate-store", "--to", str(workspace.root / "copy.db"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["checked"] is True
    assert report["to"] == str((workspace.root / "copy.db").resolve())
    by_table = {t["table"]: t for t in report["tables"]}
    rows = {t: v["rows"] for t, v in by_table.items()}
    # c7 was forgotten: its order and delivery stay, anonymous; it is remembered by pseudonym
    assert rows["contacts"] == 39 and rows["events"] == 40 and rows["deliveries"] == 40
    assert rows["forgotten"] == 1 and rows["suppressions"] == 1 and rows["ticks"] == 1
    assert rows["delivery_log"] > 40
    assert report["rows"] == sum(t["rows"] for t in report["tables"])
    assert "migrations" not in by_table
    assert [(c.table, c.rows, c.digest) for c in expected] == [
        (t["table"], t["rows"], t["digest"]) for t in report["tables"]
    ]
    with open_store(workspace.root / "copy.db") as copy:
        assert checks(copy) == expected
        assert copy.pseudonyms.contact("c7") == key  # forgotten ids are still recognised
    use_store(workspace, "copy.db")
    assert listing(workspace) == before


@pytest.mark.sqlite_only
def test_the_text_report_and_a_target_that_is_not_empty(workspace: Workspace) -> None:
    shop(workspace)
    first = workspace.cli("migrate-store", "--to", str(workspace.root / "copy.db"))
    assert first.exit_code == 0, first.output
    assert "checked row for row (counts and digests match)" in first.output
    assert "contacts" in first.output and "Next:" in first.output
    again = workspace.cli("migrate-store", "--to", str(workspace.root / "copy.db"))
    assert again.exit_code == 1
    assert "the target store is not empty" in again.output
    assert "contacts" in again.output
    same = workspace.cli("migrate-store", "--to", str(workspace.root / "regard.db"))
    assert same.exit_code == 1 and "is the config's own store" in same.output


@pytest.mark.sqlite_only
def test_refused_while_a_daemon_runs_and_without_a_store(workspace: Workspace) -> None:
    missing = workspace.cli("migrate-store", "--to", str(workspace.root / "copy.db"))
    assert missing.exit_code == 1 and "no store here yet" in missing.output
    shop(workspace)
    with open_store(workspace.root / "regard.db") as store:
        store.daemons.register("shop-1:4242:aa", "shop-1", 4242, 60, now_instant())
    busy = workspace.cli("migrate-store", "--to", str(workspace.root / "copy.db"))
    assert busy.exit_code == 1
    assert "1 daemon(s) running on this store (pid 4242 on shop-1); stop them first" in (
        busy.output
    )
    assert not (workspace.root / "copy.db").exists()


def test_a_malformed_target_is_a_usage_error(workspace: Workspace) -> None:
    bad = workspace.cli("migrate-store", "--to", f"postgresql://u:{PASSWORD}@db:99999/x")
    assert bad.exit_code == 2 and "port is not a number" in bad.output
    assert PASSWORD not in bad.output
    unset = workspace.cli("migrate-store", "--to", "${NOT_SET_ANYWHERE}")
    assert unset.exit_code == 2 and "NOT_SET_ANYWHERE is not set" in unset.output


def test_the_digest_tells_rows_apart(tmp_path: Path) -> None:
    names = ["a", "b"]
    seen = {
        row_hash(names, row)
        for row in ([1, None], ["1", None], [None, 1], [1.5, None], [b"1", None], [1, ""])
    }
    assert len(seen) == 6
    # columns are taken by name, whatever their order
    assert row_hash(["a", "b"], [1, "x"]) == row_hash(["b", "a"], ["x", 1])
    with open_store(tmp_path / "a.db") as store:
        store.daemons.register("h:1:x", "h", 1, 60, now_instant())
        before = {c.table: c for c in checks(store)}
        store.daemons.heartbeat("h:1:x", now_instant() + 1)
        after = {c.table: c for c in checks(store)}
        assert "migrations" not in tables(store)
    assert before["daemons"].rows == after["daemons"].rows == 1
    assert before["daemons"].digest != after["daemons"].digest
    assert {t: c for t, c in before.items() if t != "daemons"} == {
        t: c for t, c in after.items() if t != "daemons"
    }


# -- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture
def postgres(pg_url: str) -> str:
    pytest.importorskip("regard.store.backends.postgres")
    return pg_url


@pytest.mark.sqlite_only
def test_sqlite_to_postgresql_and_back_row_for_row(
    workspace: Workspace, postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(workspace)
    before = listing(workspace)
    with open_store(workspace.root / "regard.db") as source:
        expected = checks(source)
    monkeypatch.setenv("REGARD_PG_URL", postgres)
    there = workspace.cli("migrate-store", "--to", "${REGARD_PG_URL}", "--json")
    assert there.exit_code == 0, there.output
    assert json.loads(there.stdout)["rows"] == sum(c.rows for c in expected)
    with open_store(postgres) as pg:
        assert checks(pg) == expected
    # the config on PostgreSQL: the same answers; a second copy there is refused
    use_store(workspace, "${REGARD_PG_URL}")
    assert listing(workspace) == before
    refused = workspace.cli("migrate-store", "--to", str(workspace.root / "other.db"))
    assert refused.exit_code == 0, refused.output  # PostgreSQL → a new SQLite file
    with open_store(workspace.root / "other.db") as back:
        assert checks(back) == expected
    use_store(workspace, "regard.db")
    again = workspace.cli("migrate-store", "--to", "${REGARD_PG_URL}")
    assert again.exit_code == 1 and "not empty" in again.output


@pytest.mark.sqlite_only
def test_simulate_on_postgresql_replays_a_sqlite_copy(
    workspace: Workspace, postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(workspace)
    args = ("simulate", "--from", "2026-05-01", "--to", "2026-05-31", "--json")

    def replay(*extra: str) -> Any:
        data = workspace.cli_json(*args, *extra)
        data.pop("duration_seconds")
        data.pop("ticks_per_second")  # how fast, not what
        assert data.pop("parts") == (2 if extra else 1)  # in how many processes
        return data

    on_sqlite = replay()
    monkeypatch.setenv("REGARD_PG_URL", postgres)
    assert workspace.cli("migrate-store", "--to", "${REGARD_PG_URL}").exit_code == 0
    use_store(workspace, "${REGARD_PG_URL}")
    with open_store(postgres) as pg:
        untouched = checks(pg)
    assert replay() == on_sqlite
    assert replay("--jobs", "2") == on_sqlite  # its SQLite copy split in two
    with open_store(postgres) as pg:
        assert checks(pg) == untouched  # the live store was only read


@pytest.mark.sqlite_only
def test_a_copy_that_differs_is_rolled_back(workspace: Workspace) -> None:
    from regard.errors import StoreError
    from regard.store.copy import copy_rows

    shop(workspace)
    with open_store(workspace.root / "copy.db") as target:
        # a target that changes what it is given: the check must catch it
        target.conn.execute(
            "CREATE TRIGGER tamper AFTER INSERT ON events BEGIN "
            "UPDATE events SET amount = amount + 1 WHERE id = NEW.id; END"
        )
        with (
            open_store(workspace.root / "regard.db") as source,
            pytest.raises(StoreError, match="table events: the copy does not match"),
        ):
            copy_rows(source, target)
        assert target.conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0


@pytest.mark.sqlite_only
def test_a_value_postgresql_cannot_hold_is_refused_by_table_row_and_column(
    workspace: Workspace, postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(workspace)
    with open_store(workspace.root / "regard.db") as source, source.write() as conn:
        # SQLite keeps what it is given; PostgreSQL's BIGINT column does not
        conn.execute("UPDATE contacts SET signup_at = 'yesterday' WHERE id = 'c3'")
    monkeypatch.setenv("REGARD_PG_URL", postgres)
    refused = workspace.cli("migrate-store", "--to", "${REGARD_PG_URL}")
    assert refused.exit_code == 1, refused.output
    assert "table contacts:" in refused.output and "yesterday" in refused.output
    assert "column signup_at" in refused.output  # where PostgreSQL stopped
    with open_store(postgres) as pg:
        assert pg.conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0


@pytest.mark.sqlite_only
def test_tables_stream_in_batches_both_ways(
    workspace: Workspace, postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regard.store import copy

    shop(workspace)
    monkeypatch.setattr(copy, "BATCH", 7)  # many batches of a small shop
    seen: list[tuple[str, int]] = []

    def progress(table: str, rows: int) -> None:
        seen.append((table, rows))

    there = copy.migrate(workspace.root / "regard.db", postgres, now_instant(), progress)
    back = copy.migrate(postgres, workspace.root / "back.db", now_instant(), progress)
    assert [(t.table, t.rows, t.digest) for t in there.tables] == [
        (t.table, t.rows, t.digest) for t in back.tables
    ]
    # each table reported as each batch passed (contacts: 7, 14, … 35, then 39 at its end)
    assert [r for t, r in seen[: len(seen) // 2] if t == "contacts"] == [7, 14, 21, 28, 35, 39]
    with open_store(workspace.root / "regard.db") as source:
        assert checks(source) == there.tables
