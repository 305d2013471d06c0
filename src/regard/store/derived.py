"""The per-contact derived facts, kept correct incrementally.

While an import runs, every contact whose events changed is noted in a temporary table:
the contact of a new event (at the end, from the rows the import added), both the old and
the new contact of a stored event whose contact, type, time, amount or voided time
changed (the importer compares each batch with the stored rows: a trigger on updates
would double the cost of every upsert), and a deleted event's contact (a trigger). At
the end, in the same transaction, the facts of exactly those contacts are recomputed from
their events, set-based (:func:`_update_facts`). A first import (the events table empty
when it began) notes nothing: every contact with events is recomputed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping

from regard.store.backends import dialect_of
from regard.store.currencies import converted, stored_rates
from regard.store.schema import run_script

# the facts as aggregates over one contact's events (``e``); a voided event (a cancelled
# or refunded order) counts for nothing (the join leaves voided events out); amounts in the
# config's currency (regard.store.currencies)
FACTS_SQL = f"""
    min(CASE WHEN e.type = 'order' THEN e.occurred_at END) AS first_order_at,
    max(CASE WHEN e.type = 'order' THEN e.occurred_at END) AS last_order_at,
    count(CASE WHEN e.type = 'order' THEN 1 END) AS order_count,
    coalesce(sum(CASE WHEN e.type = 'order' THEN {converted("e")} END), 0) AS total_spent,
    max(e.occurred_at) AS last_event_at
"""


def track_event_changes(
    conn: sqlite3.Connection, *, inserts: bool = True, updates: bool = True
) -> None:
    """Start noting affected contacts (inside the import's transaction).

    The noted ids may repeat: a plain table takes a row per event for about a tenth of
    the cost of a keyed one (an index probe per event), and the refresh reads it DISTINCT.
    ``inserts=False``: new events are not noted one by one (a trigger per inserted row
    costs about as much as the insert); the caller notes them at the end with
    :func:`note_inserted_since`. ``updates=False``: no trigger on updates either (its
    mere presence doubles the cost of SQLite's ``INSERT … ON CONFLICT DO UPDATE`` of
    every row, inserted or not); the caller notes the contacts of the events it rewrites
    with :func:`note_contacts`.
    """
    run_script(conn, "CREATE TEMP TABLE IF NOT EXISTS affected_contacts (id TEXT);")
    if dialect_of(conn) == "postgresql":
        # PostgreSQL has no temporary triggers: the events table's own trigger notes the
        # changes while this transaction sets regard.track_events (pg_schema)
        mode = "all" if inserts else "changes"
        conn.execute("SELECT set_config('regard.track_events', ?, true)", (mode,))
        return
    if inserts:
        run_script(
            conn,
            """
            CREATE TEMP TRIGGER IF NOT EXISTS affected_by_insert AFTER INSERT ON main.events
            BEGIN
                INSERT INTO affected_contacts (id) VALUES (new.contact_id);
            END;
            """,
        )
    if updates:
        run_script(
            conn,
            """
            CREATE TEMP TRIGGER IF NOT EXISTS affected_by_update
            AFTER UPDATE OF contact_id, type, occurred_at, amount, voided_at ON main.events
            BEGIN
                INSERT INTO affected_contacts (id) VALUES (old.contact_id);
                INSERT INTO affected_contacts (id) VALUES (new.contact_id);
            END;
            """,
        )
    run_script(
        conn,
        """
        CREATE TEMP TRIGGER IF NOT EXISTS affected_by_delete AFTER DELETE ON main.events
        BEGIN
            INSERT INTO affected_contacts (id) VALUES (old.contact_id);
        END;
        """,
    )


def note_inserted_since(conn: sqlite3.Connection, first_rowid: int) -> None:
    """Note the contacts of the events inserted from ``first_rowid`` on (new rows get a
    rowid above every existing one), in one set-based statement."""
    conn.execute(
        "INSERT INTO temp.affected_contacts (id) SELECT contact_id FROM events WHERE rowid >= ?",
        (first_rowid,),
    )


def note_contacts(conn: sqlite3.Connection, contact_ids: Collection[str]) -> None:
    """Note ``contact_ids`` as affected (while :func:`track_event_changes` is on)."""
    if contact_ids:
        conn.executemany(
            "INSERT INTO temp.affected_contacts (id) VALUES (?)", [(c,) for c in contact_ids]
        )


def refresh_derived_facts(conn: sqlite3.Connection, *, every_event: bool = False) -> int:
    """Recompute the facts of every noted contact, stop noting, and return how many.

    ``every_event``: every stored event is one this import inserted (the events table was
    empty when it began), so the contacts to recompute are exactly those with events: no
    list of ids is built (a first import of 5M events would note 5M rows), the events are
    grouped by contact in one pass over their index."""
    if every_event:
        count: int = conn.execute("SELECT count(DISTINCT contact_id) FROM events").fetchone()[0]
        _update_facts(conn, None)
    else:
        count = conn.execute("SELECT count(DISTINCT id) FROM temp.affected_contacts").fetchone()[0]
        _update_facts(conn, "SELECT DISTINCT id FROM temp.affected_contacts")
    if dialect_of(conn) == "postgresql":
        conn.execute("SELECT set_config('regard.track_events', '', true)")
        conn.execute("DROP TABLE IF EXISTS temp.affected_contacts")
        return count
    run_script(
        conn,
        """
        DROP TRIGGER IF EXISTS temp.affected_by_insert;
        DROP TRIGGER IF EXISTS temp.affected_by_update;
        DROP TRIGGER IF EXISTS temp.affected_by_delete;
        DROP TABLE IF EXISTS temp.affected_contacts;
        """,
    )
    return count


def refresh_contacts(conn: sqlite3.Connection, contact_ids: Collection[str]) -> int:
    """Recompute the facts of ``contact_ids`` (a few, known beforehand: the contacts of a
    webhook's events, old and new); returns how many. No temporary triggers: for a
    request that writes one order, their DDL would cost more than the update."""
    if not contact_ids:
        return 0
    ids = json.dumps(sorted(set(contact_ids)))
    _update_facts(conn, f"SELECT value AS id FROM json_each('{_sql_text(ids)}')")
    return len(set(contact_ids))


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def recompute_all(conn: sqlite3.Connection) -> None:
    """Recompute every contact's facts from scratch (repairs; tests compare against it)."""
    _update_facts(conn, "SELECT id FROM contacts")


def apply_rates(conn: sqlite3.Connection, rates: Mapping[str, float]) -> bool:
    """Make ``rates`` (currency → worth of one unit in the config's currency) the ones
    every sum of amounts converts with (:mod:`regard.store.currencies`), inside the
    caller's write transaction. When they differ from the stored ones they are replaced
    and every contact's stored facts recomputed; returns whether anything changed."""
    wanted = {code: float(rate) for code, rate in rates.items()}
    if stored_rates(conn) == wanted:
        return False
    conn.execute("DELETE FROM currency_rates")
    conn.executemany(
        "INSERT INTO currency_rates (currency, rate) VALUES (?, ?)", sorted(wanted.items())
    )
    recompute_all(conn)
    return True


def _update_facts(conn: sqlite3.Connection, contact_ids_sql: str | None) -> None:
    """Set the facts of the contacts ``contact_ids_sql`` selects (a column ``id``; None:
    every contact with events) from their events, in two set-based statements: one
    aggregates the events of those contacts (one pass over the events' contact index,
    grouped by contact: a third faster than a join from the ids), the other resets the
    facts of those left without any counted event. Either writes only rows whose facts
    differ."""
    chosen = "" if contact_ids_sql is None else f"AND e.contact_id IN ({contact_ids_sql})"
    among = (
        "EXISTS (SELECT 1 FROM events AS e WHERE e.contact_id = contacts.id)"
        if contact_ids_sql is None
        else f"id IN ({contact_ids_sql})"
    )
    conn.execute(
        f"""
        UPDATE contacts SET
            first_order_at = f.first_order_at,
            last_order_at = f.last_order_at,
            order_count = f.order_count,
            total_spent = f.total_spent,
            last_event_at = f.last_event_at
        FROM (
            SELECT e.contact_id AS id, {FACTS_SQL}
            FROM events AS e
            WHERE e.voided_at IS NULL {chosen}
            GROUP BY e.contact_id
        ) AS f
        WHERE contacts.id = f.id AND (
            contacts.first_order_at IS NOT f.first_order_at
            OR contacts.last_order_at IS NOT f.last_order_at
            OR contacts.order_count IS NOT f.order_count
            OR contacts.total_spent IS NOT f.total_spent
            OR contacts.last_event_at IS NOT f.last_event_at
        )
        """
    )
    conn.execute(
        f"""
        UPDATE contacts SET
            first_order_at = NULL, last_order_at = NULL, order_count = 0, total_spent = 0,
            last_event_at = NULL
        WHERE (first_order_at IS NOT NULL OR last_order_at IS NOT NULL
             OR order_count IS NOT 0 OR total_spent IS NOT 0 OR last_event_at IS NOT NULL)
        AND {among}
        AND NOT EXISTS (
            SELECT 1 FROM events AS e WHERE e.contact_id = contacts.id AND e.voided_at IS NULL
        )
        """
    )
