"""The PostgreSQL store: the private test cluster, the schema it reaches, the SQLite
functions it makes, and what only PostgreSQL has (row-locked claims, advisory locks,
what an erasure leaves until VACUUM)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from unittest import mock

import psycopg
import pytest

from conftest import Workspace
from faults.rows import add_pending, states
from regard.config import DeliverySettings
from regard.delivery import claims
from regard.delivery.claims import Attempt, record_outcomes
from regard.providers import Retry, Sent
from regard.store import Store, open_store
from regard.store.backends import is_url, redact
from regard.store.backends.postgres import translate
from regard.store.records import Claim

AT = 1_780_000_000


def columns(store: Store) -> dict[str, set[str]]:
    if store.dialect == "sqlite":
        tables = [
            r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {t: {r[1] for r in store.conn.execute(f"PRAGMA table_info({t})")} for t in tables}
    found: dict[str, set[str]] = {}
    for table, column in store.conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public'"
    ):
        found.setdefault(table, set()).add(column)
    return found


def test_each_test_gets_its_own_empty_database(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT current_database(), version()").fetchone()
    assert row is not None
    assert pg_url.endswith("/" + row[0])
    assert row[1].startswith("PostgreSQL")
    with open_store(pg_url) as store:
        assert store.dialect == "postgresql"
        assert store.is_blank()


def test_the_schema_is_sqlites_end_state_table_for_table(pg_url: str, tmp_path: Path) -> None:
    with open_store(tmp_path / "regard.db") as lite, open_store(pg_url) as pg:
        sqlite_tables = columns(lite)
        pg_tables = columns(pg)
        done = {r[0] for r in pg.conn.execute("SELECT name FROM migrations")}
        assert done == {r[0] for r in lite.conn.execute("SELECT name FROM migrations")}
    # PostgreSQL keeps SQLite's implicit rowid as a column where the store orders by it
    for table in ("events", "suppressions", "delivery_log"):
        pg_tables[table].discard("rowid")
    assert pg_tables == sqlite_tables


def test_the_address_functions_agree_with_python(pg_url: str) -> None:
    addresses = [
        " Anna@Example.COM ", "JÖRG@Bäcker.de", "0049 30 1234-567", "+49 (30) 1234567",
        "hmac-sha256:abc", "sha256:Abc", "not an address", "",
    ]  # fmt: skip
    from regard.store.area import normal_address

    with open_store(pg_url) as store:
        for address in addresses:
            row = store.conn.execute(
                "SELECT normal_address(?), address_hash(?)", (address, address)
            ).fetchone()
            assert row is not None
            assert row[0] == normal_address(address), address
            assert row[1] == store.pseudonyms.address(address), address
        assert store.conn.execute("SELECT address_hash(NULL)").fetchone()[0] is None


def text(value: object) -> str | None:
    """A value as text: PostgreSQL's JSON functions hand out text (a statement casts what
    it compares), SQLite's hand out its own types; booleans are 1/0 on both."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def test_the_json_functions_answer_as_sqlites(pg_url: str, tmp_path: Path) -> None:
    queries = [
        ("SELECT key, value, type FROM json_each(?) ORDER BY CAST(key AS INTEGER)",
         ('[1, "a", true, false, null, 2.5, [1,2], {"x":1}]',)),
        ("SELECT key, value, type FROM json_each(?, ?) ORDER BY key", ('{"a":{"y":2,"x":"1"}}', "$.a")),
        ("SELECT json_extract(?, ?), json_type(?, ?)", ('{"a b":[3,{"c":true}]}', '$."a b"[1].c') * 2),
        ("SELECT json_extract(?, '$.missing'), json_type(?, '$.missing')", ('{"a":1}', '{"a":1}')),
        ("SELECT json_patch(?, ?)", ('{"a":1,"b":{"x":1,"y":2}}', '{"b":{"x":null,"z":3},"c":null,"d":"é"}')),
        ("SELECT json_valid(?), json_valid(?)", ('{"a":1}', '{"a":')),
        ("SELECT strftime('%m-%d', ?, 'unixepoch'), strftime('%Y-%m', ?, 'unixepoch')", (AT, AT)),
        ("SELECT date(?, 'unixepoch', 'weekday 0', '-6 days')", (AT,)),
        ("SELECT max(?, 3), min(?, 3), max(NULL, 3)", (5, 5)),
        ("SELECT sum(x > 1) FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 3) AS t", ()),
    ]  # fmt: skip
    with open_store(tmp_path / "regard.db") as lite, open_store(pg_url) as pg:
        for sql, params in queries:
            expected = [tuple(map(text, r)) for r in lite.conn.execute(sql, params)]
            got = [tuple(map(text, r)) for r in pg.conn.execute(sql, params)]
            assert got == expected, sql


def test_statements_are_translated_outside_their_literals() -> None:
    text, numbered, hidden = translate(
        "SELECT 'a ? :b %' AS x FROM t WHERE a = ? AND b IS NOT :b AND c IS ?"
        " AND d LIKE 'x%' AND e IS NOT NULL"
    )
    assert text == (
        "SELECT 'a ? :b %%' AS x FROM t WHERE a = %s AND b IS DISTINCT FROM %(b)s AND c IS NOT "
        "DISTINCT FROM %s AND d LIKE 'x%%' AND e IS NOT NULL"
    )
    assert not numbered and hidden == {"rowid"}
    text, numbered, _ = translate("INSERT INTO t (a, b) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
    assert text == "INSERT INTO t (a, b) VALUES (%(p1)s, %(p2)s) ON CONFLICT DO NOTHING"
    assert numbered
    assert translate("CREATE TABLE x (id INTEGER PRIMARY KEY, v REAL, n INTEGER)")[0] == (
        "CREATE TABLE x (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " v DOUBLE PRECISION, n BIGINT)"
    )
    assert translate("SELECT a::text FROM temp.t")[0] == "SELECT a::text FROM pg_temp.t"


def test_a_url_names_postgresql_and_messages_never_show_its_password() -> None:
    assert is_url("postgresql://u:secret@db.example:5432/shop")
    assert is_url("postgres://u@db/shop")
    assert not is_url("regard.db") and not is_url(Path("postgresql:/x"))
    assert redact("postgresql://u:secret@db.example:5432/shop") == (
        "postgresql://u@db.example:5432/shop"
    )


def test_a_store_that_cannot_be_reached_is_an_error_naming_it(pg_url: str) -> None:
    from regard.errors import StoreError

    bad = pg_url.rsplit("/", 1)[0].replace("postgres@", "postgres:s3cret@") + "/no_such_db"
    with pytest.raises(StoreError) as raised:
        open_store(bad)
    assert "no_such_db: cannot connect to the store" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_claims_lock_rows_not_the_store(pg_url: str) -> None:
    """A claim skips the rows another transaction holds (SELECT … FOR UPDATE SKIP LOCKED)
    and does not wait for it: daemons claim side by side."""
    with open_store(pg_url) as setup:
        ids = add_pending(setup, [f"c{i}" for i in range(10)], due_at=AT)
    holder, claimer = open_store(pg_url), open_store(pg_url)
    try:
        with holder.write(shared=True) as conn:
            held = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM deliveries ORDER BY id LIMIT 4 FOR UPDATE"
                ).fetchall()
            ]
            started = time.monotonic()
            got = claimer.deliveries.claim(
                provider="sink", owner="b", at=AT, now=int(time.time()),
                lease_seconds=60, limit=100,
            )  # fmt: skip
            assert time.monotonic() - started < 5
        assert sorted(c.id for c in got) == sorted(set(ids) - set(held))
    finally:
        holder.close()
        claimer.close()


def test_many_claimers_never_claim_the_same_delivery(pg_url: str) -> None:
    with open_store(pg_url) as setup:
        ids = add_pending(setup, [f"c{i}" for i in range(300)], due_at=AT)
    got: dict[str, list[str]] = {o: [] for o in "abcd"}

    def claimer(owner: str) -> None:
        with open_store(pg_url) as store:
            while batch := store.deliveries.claim(
                provider="sink", owner=owner, at=AT, now=int(time.time()),
                lease_seconds=60, limit=7,
            ):  # fmt: skip
                got[owner].extend(c.id for c in batch)

    threads = [threading.Thread(target=claimer, args=(o,)) for o in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    claimed = [i for owner in got.values() for i in owner]
    assert sorted(claimed) == sorted(ids)  # each once
    with open_store(pg_url) as check:
        assert set(states(check).values()) == {"sending"}
        owners = {r[0] for r in check.conn.execute("SELECT lease_owner FROM deliveries")}
        assert owners <= set(got)


def test_an_advisory_lock_is_one_holder_at_a_time(pg_url: str) -> None:
    a, b = open_store(pg_url), open_store(pg_url)
    try:
        with a.advisory_lock("tick") as first:
            assert first
            with b.advisory_lock("tick", wait=False) as second:
                assert not second
            with b.advisory_lock("other", wait=False) as other:
                assert other
        with b.advisory_lock("tick", wait=False) as again:
            assert again
    finally:
        a.close()
        b.close()


def test_writers_take_turns_as_on_sqlite(pg_url: str) -> None:
    """Two write transactions on one PostgreSQL store run one after the other."""
    a, b = open_store(pg_url), open_store(pg_url)
    order: list[str] = []
    try:
        with a.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")

            def second() -> None:
                with b.write() as other:
                    order.append("b")
                    other.execute("INSERT INTO meta (key, value) VALUES ('b', '1')")

            thread = threading.Thread(target=second)
            thread.start()
            time.sleep(0.5)
            order.append("a")
        thread.join(timeout=30)
        assert order == ["a", "b"]
    finally:
        a.close()
        b.close()


def test_a_failed_write_leaves_the_store_as_it_was(pg_url: str) -> None:
    with open_store(pg_url) as store:
        with pytest.raises(ZeroDivisionError), store.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('x', '1')")
            with store.write() as inner:
                inner.execute("INSERT INTO meta (key, value) VALUES ('y', '1')")
            1 / 0  # noqa: B018
        with store.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('z', '1')")
            with pytest.raises(psycopg.errors.UniqueViolation), store.write() as inner:
                inner.execute("INSERT INTO meta (key, value) VALUES ('z', '2')")
        kept = {
            r[0] for r in store.conn.execute("SELECT key FROM meta WHERE key IN ('x', 'y', 'z')")
        }
        assert kept == {"z"}


def test_forget_says_what_postgresql_keeps_until_vacuum(pg_url: str, tmp_path: Path) -> None:
    ws = Workspace(tmp_path, pg_url)
    from conftest import BASIC_CONFIG

    ws.write("regard.toml", BASIC_CONFIG)
    rows = ws.write("c.csv", "id,email,first_name\n7,anna@example.org,Anna\n")
    assert ws.cli("import", "contacts", str(rows)).exit_code == 0
    result = ws.cli("contacts", "forget", "7", "--yes")
    assert result.exit_code == 0, result.output
    assert "until VACUUM" in result.output
    assert "VACUUM FULL contacts, events, deliveries, delivery_log, suppressions" in result.output
    with open_store(pg_url) as store:
        assert store.conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
    assert not (tmp_path / "regard.db").exists()  # the config's URL, not a file


def test_list_parameters_are_native_arrays_with_json_eachs_meaning(pg_url: str) -> None:
    """``x IN (SELECT value FROM json_each(:list))`` (SQLite's way to bind a list) is an
    array on PostgreSQL (so the column's index is used), with the same rows."""
    text, _, _ = translate("SELECT 1 WHERE a IN (SELECT value FROM json_each(:ids))")
    assert "= ANY (regard_text_array(%(ids)s))" in text
    text, _, _ = translate("SELECT 1 WHERE a NOT IN (SELECT value FROM json_each(?))")
    assert "<> ALL (regard_text_array(%s))" in text
    with open_store(pg_url) as store:
        ids = add_pending(store, ["a", "b", "c"], due_at=AT)
        for wanted in ([], [ids[0]], [ids[2], ids[0], "nope"], ids):
            listed = json.dumps(wanted)
            inside = store.conn.execute(
                "SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?))",
                (listed,),
            ).fetchall()
            outside = store.conn.execute(
                "SELECT id FROM deliveries WHERE id NOT IN (SELECT value FROM json_each(?))",
                (listed,),
            ).fetchall()
            assert sorted(r[0] for r in inside) == sorted(set(wanted) & set(ids))
            assert sorted(r[0] for r in outside) == sorted(set(ids) - set(wanted))
        with store.write() as conn:  # the index condition is the array itself
            conn.execute("SET LOCAL enable_seqscan = off")
            plan = conn.execute(
                "EXPLAIN SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            ).fetchall()
        assert "Index Cond: (id = ANY (" in "\n".join(str(r[0]) for r in plan)


def test_a_claim_reads_its_batch_in_order_off_the_claim_index(pg_url: str) -> None:
    """A locking claim over a big due backlog reads its batch off
    ``deliveries_claim_order`` (m013) instead of sorting every due row; claims to take up
    come first, then the due ones by priority, due time and id."""
    from regard.store import deliveries

    with open_store(pg_url) as store:
        contacts = [f"c{i:04d}" for i in range(3000)]
        add_pending(store, contacts[:1500], due_at=AT - 10)
        add_pending(store, contacts[1500:2990], due_at=AT - 20)
        urgent = add_pending(store, contacts[2990:], due_at=AT - 5, priority=5)
        with store.write() as conn:
            conn.execute("ANALYZE deliveries")
            stale = conn.execute(
                "UPDATE deliveries SET state = 'sending', lease_owner = 'gone-run',"
                " lease_until = ? WHERE id = (SELECT max(id) FROM deliveries"
                " WHERE contact_id LIKE 'c00%') RETURNING id",
                (AT - 100,),
            ).fetchone()[0]
        with store.write() as conn:
            params = {"provider": "sink", "at": AT, "now": AT, "limit": 4, "gone": "[]"}
            plan = "\n".join(
                str(r[0])
                for r in conn.execute(
                    f"EXPLAIN SELECT id FROM deliveries d WHERE provider = :provider"
                    f" AND {deliveries._DUE_PENDING} AND NOT ({deliveries.sendtime.held_sql()})"
                    f" {deliveries._CLAIM_ORDER} LIMIT :limit FOR UPDATE SKIP LOCKED",
                    {**params, "campaigns_known": 1, "broken": "[]"},
                )
            )
        assert "deliveries_claim_order" in plan and "Sort" not in plan, plan
        claimed = store.deliveries.claim(
            provider="sink", owner="me", at=AT, now=AT, lease_seconds=60, limit=13
        )
    ids = [c.id for c in claimed]
    first_due = sorted(delivery_id_of(c, AT - 20) for c in contacts[1500:2990])[:2]  # earliest
    assert ids[0] == stale and ids[1:11] == sorted(urgent)
    assert ids[11:] == first_due


def delivery_id_of(contact: str, due_at: int) -> str:
    from regard.engine import delivery_id

    return delivery_id("thanks", contact, "o1", due_at)


def _sent(claim: Claim) -> Attempt:
    return Attempt(claim, Sent(None), None)


def test_outcomes_are_recorded_while_another_writer_holds_the_store(pg_url: str) -> None:
    """A dispatch's outcomes take no store-wide lock on PostgreSQL: the claim's owner
    guard and the row locks decide. They are recorded while a tick-like writer holds the
    store's write lock."""
    with open_store(pg_url) as setup:
        add_pending(setup, ["c1", "c2"], due_at=AT)
    writer, run = open_store(pg_url), open_store(pg_url)
    try:
        got = run.deliveries.claim(
            provider="sink", owner="a", at=AT, now=int(time.time()), lease_seconds=60, limit=2
        )
        assert len(got) == 2
        with writer.write() as conn:  # the store-wide write lock, held
            conn.execute("INSERT INTO meta (key, value) VALUES ('busy', '1')")
            started = time.monotonic()
            recorded = record_outcomes(
                run, [_sent(c) for c in got], owner="a", at=AT, now=AT,
                settings=DeliverySettings(),
            )  # fmt: skip
            assert time.monotonic() - started < 5
        assert recorded == ["sent", "sent"]
        assert set(states(run).values()) == {"sent"}
    finally:
        writer.close()
        run.close()


def test_an_outcome_waits_for_a_takeover_of_its_row_and_then_is_not_recorded(
    pg_url: str,
) -> None:
    """The run that took a claim over holds the row; the first run's outcome waits for it,
    then finds the claim no longer its own: recorded once, by the run that holds it."""
    with open_store(pg_url) as setup:
        [delivery] = add_pending(setup, ["c1"], due_at=AT)
    first, other = open_store(pg_url), open_store(pg_url)
    try:
        [claim] = first.deliveries.claim(
            provider="sink", owner="a", at=AT, now=int(time.time()), lease_seconds=60, limit=1
        )
        outcome: list[list[str | None]] = []
        with other.write(shared=True) as conn:
            conn.execute("UPDATE deliveries SET lease_owner = 'b' WHERE id = ?", (delivery,))

            def record() -> None:
                settings = DeliverySettings()
                outcome.append(
                    record_outcomes(
                        first, [_sent(claim)], owner="a", at=AT, now=AT, settings=settings
                    )
                )

            thread = threading.Thread(target=record)
            thread.start()
            time.sleep(0.5)
            assert thread.is_alive() and not outcome  # waiting for the row
        thread.join(timeout=30)
        assert outcome == [[None]]  # lost: another run holds the claim
        row = first.conn.execute(
            "SELECT state, lease_owner FROM deliveries WHERE id = ?", (delivery,)
        ).fetchone()
        assert tuple(row) == ("sending", "b")
    finally:
        first.close()
        other.close()


def test_a_flat_write_fails_as_one_and_nested_writes_make_no_savepoints(pg_url: str) -> None:
    with open_store(pg_url) as store:
        with pytest.raises(psycopg.errors.UniqueViolation), store.write(flat=True) as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('x', '1')")
            with store.write() as inner:
                inner.execute("INSERT INTO meta (key, value) VALUES ('y', '1')")
            with store.write() as inner:
                inner.execute("INSERT INTO meta (key, value) VALUES ('y', '2')")
        kept = store.conn.execute("SELECT key FROM meta WHERE key IN ('x', 'y')").fetchall()
        assert kept == []
        # a plain write after it nests with savepoints again
        with store.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('z', '1')")
            with pytest.raises(psycopg.errors.UniqueViolation), store.write() as inner:
                inner.execute("INSERT INTO meta (key, value) VALUES ('z', '2')")
        assert store.conn.execute("SELECT value FROM meta WHERE key = 'z'").fetchone()[0] == "1"


def test_outcomes_aborted_in_a_deadlock_are_recorded_again(pg_url: str) -> None:
    """Outcomes lock their rows only, so a writer locking the same deliveries in the other
    order deadlocks with them; when the server aborts the outcomes, they are recorded
    again, whole, once the other writer is through."""
    with open_store(pg_url) as setup:
        add_pending(setup, ["c1", "c2"], due_at=AT)
    first, other = open_store(pg_url), open_store(pg_url)
    try:
        got = first.deliveries.claim(
            provider="sink", owner="a", at=AT, now=int(time.time()), lease_seconds=60, limit=2
        )
        ordered = sorted(got, key=lambda c: c.id)  # retries are recorded one by one, in order
        low, high = (c.id for c in ordered)
        # the outcomes' side finds the deadlock (and is the one aborted): a waiting session
        # checks once, deadlock_timeout after it began to wait; the outcomes' wait begins
        # first and its check comes after the cycle is closed, the other's after 30 s
        first.conn.execute("SET deadlock_timeout = '2s'")
        other.conn.execute("SET deadlock_timeout = '30s'")
        outcome: list[list[str | None]] = []
        failed: list[BaseException] = []

        def record() -> None:
            try:
                outcome.append(record_outcomes(
                    first, [Attempt(c, Retry("503"), None) for c in ordered], owner="a",
                    at=AT, now=AT, settings=DeliverySettings(),
                ))  # fmt: skip
            except BaseException as exc:  # reported below
                failed.append(exc)

        with mock.patch.object(claims, "_record_outcomes", wraps=claims._record_outcomes) as inner:
            with other.write(shared=True) as conn:
                conn.execute("UPDATE deliveries SET priority = priority WHERE id = ?", (high,))
                thread = threading.Thread(target=record)
                thread.start()
                time.sleep(0.5)  # the outcomes hold `low` and wait for `high`
                conn.execute("UPDATE deliveries SET priority = priority WHERE id = ?", (low,))
            thread.join(timeout=60)
        assert not failed, failed
        assert outcome == [["pending", "pending"]]
        assert set(states(first).values()) == {"pending"}
        attempts = first.conn.execute("SELECT attempts FROM deliveries").fetchall()
        assert [r[0] for r in attempts] == [1, 1]  # each failure counted once
        assert inner.call_count == 2  # aborted once, then recorded
    finally:
        first.close()
        other.close()
