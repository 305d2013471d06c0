"""Numbered migrations, applied in order on open and recorded in ``migrations``.

Never edit a shipped migration: add the next one. Instants are INTEGER UTC unix seconds,
dates TEXT ``YYYY-MM-DD``, lists and objects TEXT JSON.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable

from regard.store.area import ADDRESS_PREFIX, PSEUDONYM_KEY, Pseudonyms

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute statements one by one (``executescript`` would commit the open transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement!r}")


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE contacts (
            id TEXT PRIMARY KEY,
            email TEXT,
            phone TEXT,                  -- E.164
            first_name TEXT,
            last_name TEXT,
            salutation TEXT,
            company TEXT,
            locale TEXT,
            timezone TEXT,               -- IANA
            country TEXT,                -- ISO 3166-1 alpha-2
            street TEXT,
            postal_code TEXT,
            city TEXT,
            birthday TEXT,               -- YYYY-MM-DD
            signup_at INTEGER,
            consent_email INTEGER,       -- 1 / 0 / NULL (not given)
            consent_sms INTEGER,
            consent_card INTEGER,
            tags TEXT NOT NULL DEFAULT '[]',        -- JSON list
            attributes TEXT NOT NULL DEFAULT '{}',  -- JSON object: any other column
            -- derived facts, maintained on every import (as of now; the engine derives
            -- them as of T from events when it looks at the past)
            first_order_at INTEGER,
            last_order_at INTEGER,
            order_count INTEGER NOT NULL DEFAULT 0,
            total_spent REAL NOT NULL DEFAULT 0,
            last_event_at INTEGER,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX contacts_birthday ON contacts (substr(birthday, 6, 5));
        CREATE INDEX contacts_last_order_at ON contacts (last_order_at);
        CREATE INDEX contacts_email ON contacts (email);

        CREATE TABLE events (
            id TEXT PRIMARY KEY,
            contact_id TEXT NOT NULL REFERENCES contacts (id),
            type TEXT NOT NULL,
            occurred_at INTEGER NOT NULL,
            amount REAL,
            currency TEXT,
            properties TEXT NOT NULL DEFAULT '{}',  -- JSON object
            imported_at INTEGER NOT NULL
        );
        CREATE INDEX events_contact_type_time ON events (contact_id, type, occurred_at);
        CREATE INDEX events_type_time ON events (type, occurred_at);

        CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,                 -- also the Idempotency-Key / webhook-id
            campaign TEXT NOT NULL,
            contact_id TEXT NOT NULL,
            occasion TEXT NOT NULL,
            event_id TEXT,                       -- the triggering event, where there is one
            channel TEXT NOT NULL,
            provider TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('pending', 'sending', 'sent', 'dead', 'held_out', 'skipped', 'cancelled')),
            reason TEXT,                         -- why skipped / dead
            priority INTEGER NOT NULL DEFAULT 0,
            due_at INTEGER NOT NULL,             -- when the occasion was due
            created_at INTEGER NOT NULL,         -- the tick (T) that decided it
            not_before INTEGER,                  -- pending: earliest next attempt (backoff, window, daily limit)
            sent_at INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,                    -- sending: who claimed it
            lease_until INTEGER,                 -- sending: claim expires (crash recovery)
            message TEXT,                        -- JSON {to, subject, text, html, card}, rendered at enqueue
            provider_message_id TEXT,
            last_error TEXT,                     -- the provider's last answer
            cost REAL,
            updated_at INTEGER NOT NULL,
            UNIQUE (campaign, contact_id, occasion)
        );
        CREATE INDEX deliveries_dispatch ON deliveries (state, not_before);
        CREATE INDEX deliveries_contact_time ON deliveries (contact_id, created_at);
        CREATE INDEX deliveries_campaign_state ON deliveries (campaign, state);

        -- history of each delivery: one row per state change or attempt
        CREATE TABLE delivery_log (
            delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
            at INTEGER NOT NULL,
            state TEXT NOT NULL,
            detail TEXT
        );
        CREATE INDEX delivery_log_delivery ON delivery_log (delivery_id, at);

        -- unsubscribes and provider-reported unreachable addresses
        CREATE TABLE suppressions (
            contact_id TEXT,          -- NULL when the suppression is by address only
            channel TEXT NOT NULL,    -- email | sms | card | webhook | '*' (all)
            address TEXT,             -- the e-mail / phone, or 'sha256:<hex>' once forgotten (m010: hmac-sha256:)
            reason TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX suppressions_contact ON suppressions (contact_id, channel);
        CREATE INDEX suppressions_address ON suppressions (address);

        -- one row per tick (run, daemon, simulate) for status and logs
        CREATE TABLE ticks (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,       -- run | daemon | dry-run
            at INTEGER NOT NULL,      -- the instant T evaluated
            started_at INTEGER NOT NULL,
            finished_at INTEGER,
            pid INTEGER,
            result TEXT               -- JSON summary
        );

        -- key/value facts about the store (e.g. the daemon's heartbeat)
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        """,
    )


@migration
def m002_forgotten_contacts(conn: sqlite3.Connection) -> None:
    """Erasure: ``forgotten`` remembers erased contact ids (as sha256) so a later import
    does not bring them back, and events outlive their contact as anonymous rows
    (``contact_id = 'forgotten:<sha256>'``), so ``events.contact_id`` no longer references
    ``contacts``; the importer checks contact ids itself."""
    run_script(
        conn,
        """
        CREATE TABLE forgotten (
            id_hash TEXT PRIMARY KEY,     -- sha256 hex of the contact id
            forgotten_at INTEGER NOT NULL
        );

        CREATE TABLE events_new (
            id TEXT PRIMARY KEY,
            contact_id TEXT NOT NULL,
            type TEXT NOT NULL,
            occurred_at INTEGER NOT NULL,
            amount REAL,
            currency TEXT,
            properties TEXT NOT NULL DEFAULT '{}',  -- JSON object
            imported_at INTEGER NOT NULL
        );
        INSERT INTO events_new
            SELECT id, contact_id, type, occurred_at, amount, currency, properties, imported_at
            FROM events;
        DROP TABLE events;
        ALTER TABLE events_new RENAME TO events;
        CREATE INDEX events_contact_type_time ON events (contact_id, type, occurred_at);
        CREATE INDEX events_type_time ON events (type, occurred_at);
        """,
    )


@migration
def m003_engine_indexes(conn: sqlite3.Connection) -> None:
    """Indexes the trigger engine's due-occasion queries need: anniversaries of instants by
    month-day, never-active contacts by sign-up, daily limits by send time."""
    run_script(
        conn,
        """
        CREATE INDEX contacts_signup_at ON contacts (signup_at);
        CREATE INDEX contacts_signup_day ON contacts (strftime('%m-%d', signup_at, 'unixepoch'));
        CREATE INDEX contacts_first_order_day
            ON contacts (strftime('%m-%d', first_order_at, 'unixepoch'));
        CREATE INDEX deliveries_campaign_sent ON deliveries (campaign, state, sent_at);
        """,
    )


@migration
def m004_server_and_bounces(conn: sqlite3.Connection) -> None:
    """The server and the way back.

    ``settings``: facts the store keeps for the server (the generated link secret when the
    config has none). ``suppressions.kind``: ``unsubscribed`` (stops marketing on that
    channel) or ``bounced`` (stops every purpose); ``source`` says where it came from
    (``cli``, ``link``, ``provider <name>``). The suppressions already there keep their
    meaning: those a provider reported (an inactive address, a STOP at the carrier) stopped
    every message to the address and become ``bounced``; the others are unsubscribes.
    ``deliveries.purpose``: ``marketing`` or ``service``, fixed when the tick decides it, so
    dispatch re-checks with the rule of the purpose the message was made for."""
    run_script(
        conn,
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        ALTER TABLE suppressions ADD COLUMN kind TEXT NOT NULL DEFAULT 'unsubscribed';
        ALTER TABLE suppressions ADD COLUMN source TEXT;
        UPDATE suppressions SET kind = 'bounced', source = 'provider' WHERE reason LIKE 'provider %';
        UPDATE suppressions SET source = 'cli' WHERE source IS NULL;
        CREATE INDEX suppressions_kind ON suppressions (kind, channel);
        ALTER TABLE deliveries ADD COLUMN purpose TEXT NOT NULL DEFAULT 'marketing';
        """,
    )


@migration
def m004b_link_secret(conn: sqlite3.Connection) -> None:
    """The secret that signs links when the config sets none, made with the store: a tick,
    ``plan`` and ``preview`` (the last two in transactions that are rolled back) then all
    sign with the one kept here."""
    conn.execute(
        "INSERT INTO settings (key, value, created_at) VALUES ('server_secret', ?, ?) "
        "ON CONFLICT (key) DO NOTHING",
        (secrets.token_urlsafe(32), int(time.time())),
    )


@migration
def m005_voided_events(conn: sqlite3.Connection) -> None:
    """Voided events: ``events.voided_at`` (a cancelled or refunded order) hides an event
    from every instant at or after it; the event indexes carry it, so that the as-of-T
    queries stay index-only. ``inbound`` counts what each ``[sources.NAME]``
    received per local day, for ``regard status``."""
    run_script(
        conn,
        """
        ALTER TABLE events ADD COLUMN voided_at INTEGER;
        CREATE INDEX events_voided ON events (voided_at) WHERE voided_at IS NOT NULL;
        -- every query asks whether an event is voided as of T: the (type, time) and
        -- (contact, type, time) indexes carry voided_at, so they still answer alone
        DROP INDEX events_contact_type_time;
        DROP INDEX events_type_time;
        CREATE INDEX events_contact_type_time ON events (contact_id, type, occurred_at, voided_at);
        CREATE INDEX events_type_time ON events (type, occurred_at, voided_at);

        CREATE TABLE inbound (
            source TEXT NOT NULL,        -- the [sources.NAME]
            day TEXT NOT NULL,           -- YYYY-MM-DD in the config's time zone
            received INTEGER NOT NULL,   -- requests answered 200 that day
            last_at INTEGER NOT NULL,    -- the last one
            last_topic TEXT,
            PRIMARY KEY (source, day)
        );
        """,
    )


@migration
def m006_journeys(conn: sqlite3.Connection) -> None:
    """Journeys: a delivery carries its campaign's ``[exit]`` (the event type, the start it
    counts from, and its ``where`` with the zone of its naive dates, JSON) so that
    dispatch re-checks the exit the tick decided under; a partial index finds the
    distinct exit filters of pending deliveries."""
    run_script(
        conn,
        """
        ALTER TABLE deliveries ADD COLUMN exit_event TEXT;
        ALTER TABLE deliveries ADD COLUMN exit_from INTEGER;
        ALTER TABLE deliveries ADD COLUMN exit_where TEXT;
        CREATE INDEX deliveries_pending_exit ON deliveries (exit_where)
            WHERE state = 'pending' AND exit_event IS NOT NULL;
        """,
    )


@migration
def m007_unconfirmed_and_pauses(conn: sqlite3.Connection) -> None:
    """Delivery with services that do not de-duplicate (docs/delivery.md):

    - the state ``unconfirmed`` (SQLite cannot alter a CHECK constraint, so the table is
      rebuilt from its own stored definition, whatever columns earlier migrations added);
    - ``first_attempt_at``: the real time of the first attempt (a service is asked about
      the messages since then), and ``outcome_unknown``: the last attempt may have
      reached the service, so the next one asks first where the service can be asked;
    - ``provider_pauses``: a provider whose account cannot send, since when and why;
    - the contact field ``address2``, a second address line.
    """
    table_sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'"
    ).fetchone()[0]
    old_states = "'held_out', 'skipped', 'cancelled')"
    if old_states not in table_sql:
        raise RuntimeError("deliveries: the state constraint is not the one m001 created")
    new_sql = table_sql.replace(old_states, "'held_out', 'skipped', 'cancelled', 'unconfirmed')")
    new_sql = new_sql.replace("CREATE TABLE deliveries", "CREATE TABLE deliveries_m007", 1)
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' "
            "AND sql IS NOT NULL"
        )
    ]
    # delivery_log references deliveries: with foreign keys on, dropping the old table would
    # cascade into the log. ``defer_foreign_keys`` only defers; so the log is kept aside.
    run_script(
        conn,
        f"""
        {new_sql};
        INSERT INTO deliveries_m007 SELECT * FROM deliveries;
        CREATE TEMP TABLE delivery_log_m007 AS SELECT * FROM delivery_log;
        DELETE FROM delivery_log;
        DROP TABLE deliveries;
        ALTER TABLE deliveries_m007 RENAME TO deliveries;
        INSERT INTO delivery_log SELECT * FROM delivery_log_m007;
        DROP TABLE temp.delivery_log_m007;
        """,
    )
    for index in indexes:
        conn.execute(index)
    run_script(
        conn,
        """
        ALTER TABLE deliveries ADD COLUMN first_attempt_at INTEGER;  -- real time, first claim
        ALTER TABLE deliveries ADD COLUMN outcome_unknown INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE provider_pauses (
            provider TEXT PRIMARY KEY,
            since INTEGER NOT NULL,      -- the first failure of this streak (real time)
            last_at INTEGER NOT NULL,    -- the latest one
            reason TEXT NOT NULL         -- what the service said, and what to fix
        );
        ALTER TABLE contacts ADD COLUMN address2 TEXT;
        """,
    )


@migration
def m008_delivery_pacing(conn: sqlite3.Connection) -> None:
    """What dispatch keeps from the tick that decided a delivery, so it no longer depends
    on a campaign file that may have changed or gone since: the campaign's ``[window]``
    (``pace_window``, JSON ``{"days": [...], "hours": [start, end]}``, NULL for none), its
    ``daily_limit`` (``pace_daily_limit``; NULL on rows recorded before this migration,
    which are paced by their campaign file as before) and the instant after which the
    occasion is too late to be sent (``expires_at``: due time + ``max_lateness``, plus the
    wait for the window the tick found closed; NULL: never).

    Suppressions' addresses are brought to the one normal form the store compares them in
    (:func:`regard.store.area.normal_address`: an e-mail lower-cased whole, a phone
    in E.164); forgotten (hashed) ones already are."""
    run_script(
        conn,
        """
        ALTER TABLE deliveries ADD COLUMN pace_window TEXT;
        ALTER TABLE deliveries ADD COLUMN pace_daily_limit INTEGER;
        ALTER TABLE deliveries ADD COLUMN expires_at INTEGER;
        UPDATE suppressions SET address = normal_address(address)
        WHERE address IS NOT NULL AND address NOT LIKE 'sha256:%'
          AND address NOT LIKE 'hmac-sha256:%';
        """,
    )


@migration
def m009_sync_and_tags(conn: sqlite3.Connection) -> None:
    """Shop exports and sync: stored tags lower-cased (audiences compare tags
    case-insensitively; Python's lower-casing, which SQLite's ASCII-only ``lower()`` cannot
    do for ``Ü``) and ``sync_cursors``: where each source's sync of each resource stopped,
    and what its last run brought. (Shopify's order export names its customer by ``Email``
    only; that import builds its own temporary e-mail index, so that no contacts import
    pays for one.)"""
    rows = conn.execute("SELECT id, tags FROM contacts WHERE tags <> '[]'").fetchall()
    for contact_id, stored in rows:
        tags = json.loads(stored)
        if not isinstance(tags, list):
            continue
        folded = list(dict.fromkeys(t.lower() if isinstance(t, str) else t for t in tags))
        if folded != tags:
            conn.execute(
                "UPDATE contacts SET tags = ? WHERE id = ?",
                (json.dumps(folded, ensure_ascii=False, separators=(",", ":")), contact_id),
            )
    run_script(
        conn,
        """
        CREATE TABLE sync_cursors (
            source TEXT NOT NULL,         -- [sources.NAME]
            resource TEXT NOT NULL,       -- customers | orders
            cursor TEXT,                  -- the API's own mark: a time, or an opaque cursor
            synced_at INTEGER NOT NULL,   -- the last run that reached the end
            contacts INTEGER NOT NULL DEFAULT 0,  -- what that run brought
            events INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (source, resource)
        );
        """,
    )


@migration
def m010_keyed_pseudonyms(conn: sqlite3.Connection) -> None:
    """Forgotten ids and addresses become keyed hashes (:class:`regard.store.area.Pseudonyms`):
    a random key for this store in ``meta``, and every plain SHA-256 digest kept so far
    (``forgotten.id_hash``, the ``forgotten:<hex>`` contact ids of anonymous rows, the
    ``sha256:<hex>`` addresses of suppressions) re-keyed in place."""
    key = secrets.token_bytes(32)
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (PSEUDONYM_KEY, key.hex()))
    keys = Pseudonyms(key)
    conn.create_function("rekey", 1, keys.keyed, deterministic=True)
    conn.execute("UPDATE forgotten SET id_hash = rekey(id_hash)")
    for table in ("events", "deliveries", "suppressions"):
        conn.execute(
            f"UPDATE {table} SET contact_id = 'forgotten:' || rekey(substr(contact_id, 11)) "
            "WHERE contact_id LIKE 'forgotten:%'"
        )
    conn.execute(
        "UPDATE suppressions SET address = ? || rekey(substr(address, 8)) "
        "WHERE address LIKE 'sha256:%'",
        (ADDRESS_PREFIX,),
    )


@migration
def m011_daemons(conn: sqlite3.Connection) -> None:
    """``daemons``: one row per running ``regard daemon`` on this store (on PostgreSQL any
    number of them, on one machine or many), registered at start, its heartbeat renewed
    while it runs, removed when it stops; ``regard status`` lists the live ones. A daemon
    killed outright leaves its row, which goes stale when its heartbeat does."""
    run_script(
        conn,
        """
        CREATE TABLE daemons (
            id TEXT PRIMARY KEY,            -- host:pidns:pid:random, made at start
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            every_seconds INTEGER NOT NULL, -- its scheduler.interval
            started_at INTEGER NOT NULL,
            heartbeat_at INTEGER NOT NULL,
            ticks INTEGER NOT NULL DEFAULT 0,
            failed_ticks INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX daemons_heartbeat ON daemons (heartbeat_at);
        """,
    )


@migration
def m012_currencies(conn: sqlite3.Connection) -> None:
    """``currency_rates``: the ``[currencies]`` of the config the store last ran with (one
    row per currency: what one unit of it is worth in the config's currency). Every sum
    of amounts converts through it (:func:`regard.store.currencies.converted`); events
    keep their own amount and currency."""
    run_script(
        conn,
        """
        CREATE TABLE currency_rates (
            currency TEXT PRIMARY KEY,   -- ISO 4217
            rate REAL NOT NULL           -- one unit of it, in the config's currency
        );
        """,
    )


@migration
def m013_pg_claim_order(conn: sqlite3.Connection) -> None:
    """``deliveries_claim_order``: the pending deliveries of each provider in the order a
    claim takes them (priority, due time, id), so that a claim reads its batch off the
    index instead of sorting the whole due backlog (a claim that locks its rows, as on
    PostgreSQL, cannot sort only its first rows: at 100,000 due it sorted them all on
    disk, 2 s a claim)."""
    run_script(
        conn,
        """
        CREATE INDEX deliveries_claim_order
            ON deliveries (provider, priority DESC, coalesce(not_before, due_at), id)
            WHERE state = 'pending';
        """,
    )
