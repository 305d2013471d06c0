"""The PostgreSQL store's schema: its own migrations, reaching the same end state as SQLite's.

SQLite's migrations (:mod:`regard.store.schema`) grew the schema step by step, rebuilding
tables where SQLite cannot alter them. A PostgreSQL store starts at the end of that road:
:data:`BASELINE` makes, in one step, the tables and indexes that migrations ``m001`` to
:data:`BASELINE_THROUGH` leave on SQLite (the same names, columns, keys and indexes, in
PostgreSQL's types of the same range) and the store's SQL functions
(:data:`FUNCTIONS`); it is recorded under all those migrations' names. Every later
migration is written once, in portable DDL, and runs on both engines through the
connection (``INTEGER`` and ``REAL`` become ``BIGINT`` and ``DOUBLE PRECISION`` there).

Columns only PostgreSQL has: ``rowid`` of ``events``, ``suppressions`` and ``delivery_log``,
the order of insertion that SQLite keeps as its implicit rowid (and the store orders and ranges by);
rows read through the store leave them out unless a statement names them.
"""

from __future__ import annotations

import hashlib

BASELINE_THROUGH = "m010_keyed_pseudonyms"

FUNCTIONS = r"""
-- The SQL functions the store's statements call, made on PostgreSQL with the names and
-- the meaning they have on SQLite (its JSON1 functions, strftime, and the two functions
-- regard registers on every SQLite connection). Re-run on every migration: CREATE OR
-- REPLACE keeps them current.

-- a JSON value as SQLite's JSON1 hands it to SQL: text unquoted, numbers as their text,
-- true/false as 1/0, null as NULL, arrays and objects as JSON text
CREATE OR REPLACE FUNCTION regard_json_value(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(j)
    WHEN 'string' THEN j #>> '{}'
    WHEN 'number' THEN j::text
    WHEN 'boolean' THEN CASE WHEN j = 'true'::jsonb THEN '1' ELSE '0' END
    WHEN 'null' THEN NULL
    ELSE j::text END
$$;

-- SQLite's json_type names: null, true, false, integer, real, text, array, object
CREATE OR REPLACE FUNCTION regard_json_type(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE jsonb_typeof(j)
    WHEN 'string' THEN 'text'
    WHEN 'number' THEN CASE WHEN j::text ~ '[.eE]' THEN 'real' ELSE 'integer' END
    WHEN 'boolean' THEN j::text
    ELSE jsonb_typeof(j) END
$$;

-- the value at a SQLite JSON path ($, $.key, $."key", $[0], $.a[1].b); NULL when absent
CREATE OR REPLACE FUNCTION regard_json_at(doc text, path text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN path = '$' THEN doc::jsonb
    ELSE jsonb_path_query_first(doc::jsonb, ('strict ' || path)::jsonpath, '{}', true) END
$$;

CREATE OR REPLACE FUNCTION json_extract(doc text, path text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT regard_json_value(regard_json_at(doc, path))
$$;

CREATE OR REPLACE FUNCTION json_type(doc text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT regard_json_type(doc::jsonb)
$$;

CREATE OR REPLACE FUNCTION json_type(doc text, path text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT regard_json_type(regard_json_at(doc, path))
$$;

CREATE OR REPLACE FUNCTION json_valid(doc text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF doc IS NULL THEN RETURN NULL; END IF;
  PERFORM doc::jsonb;
  RETURN true;
EXCEPTION WHEN others THEN
  RETURN false;
END
$$;

-- the same for json (not jsonb) values, which keep their text as written: SQLite's
-- minified arrays and objects stay as they are
CREATE OR REPLACE FUNCTION regard_json_value(j json) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE json_typeof(j)
    WHEN 'string' THEN j #>> '{}'
    WHEN 'number' THEN btrim(j::text)
    WHEN 'boolean' THEN CASE WHEN btrim(j::text) = 'true' THEN '1' ELSE '0' END
    WHEN 'null' THEN NULL
    ELSE j::text END
$$;

CREATE OR REPLACE FUNCTION regard_json_type(j json) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE json_typeof(j)
    WHEN 'string' THEN 'text'
    WHEN 'number' THEN CASE WHEN j::text ~ '[.eE]' THEN 'real' ELSE 'integer' END
    WHEN 'boolean' THEN btrim(j::text)
    ELSE json_typeof(j) END
$$;

-- the children of a JSON value as SQLite's json_each lists them (key: the index of an
-- array element, as text; the name of an object member), a scalar as one row
CREATE OR REPLACE FUNCTION regard_json_children(j json)
RETURNS TABLE (key text, value text, type text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (e.n - 1)::text, regard_json_value(e.v), regard_json_type(e.v)
    FROM json_array_elements(CASE WHEN json_typeof(j) = 'array' THEN j ELSE '[]' END)
         WITH ORDINALITY AS e(v, n)
  UNION ALL
  SELECT o.k, regard_json_value(o.v), regard_json_type(o.v)
    FROM json_each(CASE WHEN json_typeof(j) = 'object' THEN j ELSE '{}' END) AS o(k, v)
  UNION ALL
  SELECT NULL, regard_json_value(j), regard_json_type(j)
   WHERE json_typeof(j) NOT IN ('array', 'object')
$$;

-- a JSON array of texts (SQLite's one way to bind a list) as a text[]: `x = ANY (…)`
-- uses the column's index, and since it is IMMUTABLE, the planner folds it to the array
-- it is when the parameter is known (an ARRAY(SELECT …) subquery it cannot look into
-- made it guess one row, and sort a whole due backlog at every claim instead of reading
-- the claim's index in order); not STRICT: NULL is the empty list, as json_each(NULL)
CREATE OR REPLACE FUNCTION regard_text_array(list text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY(SELECT jsonb_array_elements_text(CAST(list AS jsonb)))
$$;

CREATE OR REPLACE FUNCTION json_each(doc text)
RETURNS TABLE (key text, value text, type text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT * FROM regard_json_children(doc::json)
$$;

CREATE OR REPLACE FUNCTION json_each(doc text, path text)
RETURNS TABLE (key text, value text, type text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT * FROM regard_json_children(regard_json_at(doc, path)::json)
$$;

-- RFC 7396 merge patch, as SQLite's json_patch: a null in the patch removes the key; the
-- result minified, members in the order of the target, then the patch's new ones (json,
-- not jsonb: jsonb would reorder them and space them out)
CREATE OR REPLACE FUNCTION regard_merge_patch(target json, patch json) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  k text;
  v json;
  parts text[] := '{}';
  seen text[] := '{}';
  found json;
BEGIN
  IF patch IS NULL THEN
    RETURN NULL;
  END IF;
  IF json_typeof(patch) <> 'object' THEN
    RETURN patch::text;
  END IF;
  IF target IS NOT NULL AND json_typeof(target) = 'object' THEN
    FOR k, v IN SELECT * FROM json_each(target) LOOP
      found := patch -> k;
      seen := seen || k;
      IF found IS NULL THEN
        parts := parts || (to_json(k)::text || ':' || v::text);
      ELSIF json_typeof(found) <> 'null' THEN
        parts := parts || (to_json(k)::text || ':' || regard_merge_patch(v, found));
      END IF;
    END LOOP;
  END IF;
  FOR k, v IN SELECT * FROM json_each(patch) LOOP
    IF json_typeof(v) <> 'null' AND NOT (k = ANY (seen)) THEN
      parts := parts || (to_json(k)::text || ':' || regard_merge_patch(NULL, v));
      seen := seen || k;
    END IF;
  END LOOP;
  RETURN '{' || array_to_string(parts, ',') || '}';
END
$$;

CREATE OR REPLACE FUNCTION json_patch(target text, patch text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN target IS NOT NULL THEN regard_merge_patch(target::json, patch::json) END
$$;

-- regard's merge_patch, which the import's upserts call for a wide patch (on SQLite a
-- one-pass Python function; here the same merge as json_patch)
CREATE OR REPLACE FUNCTION merge_patch(target text, patch text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT json_patch(target, patch)
$$;

-- SQLite's json_set(doc, '$.key', value) for a text value at a top-level key
CREATE OR REPLACE FUNCTION json_set(doc text, path text, value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT jsonb_set(doc::jsonb, ARRAY[btrim(substr(path, 3), '"')], to_jsonb(value), true)::text
$$;

-- SQLite's strftime(format, instant, 'unixepoch') for the formats the store uses
CREATE OR REPLACE FUNCTION strftime(format text, instant bigint, modifier text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN modifier = 'unixepoch' THEN
    to_char(to_timestamp(instant) AT TIME ZONE 'UTC',
      replace(replace(replace(replace(replace(replace(format,
        '%Y', 'YYYY'), '%m', 'MM'), '%d', 'DD'), '%H', 'HH24'), '%M', 'MI'), '%S', 'SS'))
  END
$$;

-- SQLite's date(instant, 'unixepoch', 'weekday 0', '-6 days'): the Monday starting the
-- week of the instant (UTC), YYYY-MM-DD
CREATE OR REPLACE FUNCTION date(instant bigint, m1 text, m2 text, m3 text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN m1 = 'unixepoch' AND m2 = 'weekday 0' AND m3 = '-6 days' THEN
    to_char(date_trunc('week', to_timestamp(instant) AT TIME ZONE 'UTC'), 'YYYY-MM-DD')
  END
$$;

-- sum(a = b): SQLite's comparisons are 0/1 and add up; the sum of no values is NULL
CREATE OR REPLACE FUNCTION regard_sum_bool(total bigint, b boolean) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN b IS NULL THEN total ELSE coalesce(total, 0) + b::int END
$$;

CREATE OR REPLACE AGGREGATE sum(boolean) (SFUNC = regard_sum_bool, STYPE = bigint);

-- SQLite's two-argument (scalar) max and min: NULL when either is NULL
CREATE OR REPLACE FUNCTION max(a anycompatible, b anycompatible) RETURNS anycompatible
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN a >= b THEN a ELSE b END
$$;

CREATE OR REPLACE FUNCTION min(a anycompatible, b anycompatible) RETURNS anycompatible
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN a <= b THEN a ELSE b END
$$;

-- round(real, digits), which SQLite has and PostgreSQL keeps for numeric only
CREATE OR REPLACE FUNCTION round(x double precision, digits integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT round(x::numeric, digits)::double precision
$$;

-- regard.store.area.normal_address: e-mail lower-cased whole, a phone number in E.164
CREATE OR REPLACE FUNCTION normal_address(address text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  t text;
  p text;
BEGIN
  IF address IS NULL THEN
    RETURN NULL;
  END IF;
  t := regexp_replace(address, '^\s+|\s+$', '', 'g');
  IF t LIKE 'hmac-sha256:%' OR t LIKE 'sha256:%' THEN
    RETURN t;
  END IF;
  IF position('@' IN t) > 0 THEN
    RETURN lower(t COLLATE "und-x-icu");
  END IF;
  p := regexp_replace(t, '[\s().\-/]', '', 'g');
  IF p LIKE '00%' THEN
    p := '+' || substr(p, 3);
  END IF;
  IF p ~ '^\+[1-9][0-9]{5,14}$' THEN
    RETURN p;
  END IF;
  RETURN t;
END
$$;

CREATE OR REPLACE FUNCTION lower_address(address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT normal_address(address)
$$;

CREATE OR REPLACE FUNCTION regard_hmac_sha256(key bytea, message bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  k bytea;
  inner_pad bytea;
  outer_pad bytea;
BEGIN
  IF length(key) > 64 THEN
    key := sha256(key);
  END IF;
  k := key || decode(repeat('00', 64 - length(key)), 'hex');
  inner_pad := k;
  outer_pad := k;
  FOR i IN 0..63 LOOP
    inner_pad := set_byte(inner_pad, i, get_byte(k, i) # 54);
    outer_pad := set_byte(outer_pad, i, get_byte(k, i) # 92);
  END LOOP;
  RETURN sha256(outer_pad || sha256(inner_pad || message));
END
$$;

-- regard.store.area.Pseudonyms.address under this store's key (in meta)
CREATE OR REPLACE FUNCTION address_hash(address text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT 'hmac-sha256:' || encode(regard_hmac_sha256(decode(m.value, 'hex'),
         convert_to(encode(sha256(convert_to(normal_address(address), 'UTF8')), 'hex'), 'UTF8')),
         'hex')
    FROM meta AS m
   WHERE m.key = 'pseudonym_key' AND address IS NOT NULL
$$;

-- the contacts whose events an import changes, noted while `regard.track_events` is set
-- for the transaction (SQLite: temporary triggers, which PostgreSQL has not)
CREATE OR REPLACE FUNCTION regard_note_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  mode text := current_setting('regard.track_events', true);
BEGIN
  IF mode IS NULL OR mode = '' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF mode = 'all' THEN
      INSERT INTO pg_temp.affected_contacts (id) VALUES (NEW.contact_id);
    END IF;
  ELSIF TG_OP = 'UPDATE' THEN
    IF (OLD.contact_id, OLD.type, OLD.occurred_at, OLD.amount, OLD.voided_at)
       IS DISTINCT FROM (NEW.contact_id, NEW.type, NEW.occurred_at, NEW.amount, NEW.voided_at) THEN
      INSERT INTO pg_temp.affected_contacts (id) VALUES (OLD.contact_id), (NEW.contact_id);
    END IF;
  ELSE
    INSERT INTO pg_temp.affected_contacts (id) VALUES (OLD.contact_id);
  END IF;
  RETURN NULL;
END
$$;
"""

BASELINE = r"""
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
    signup_at BIGINT,
    consent_email BIGINT,       -- 1 / 0 / NULL (not given)
    consent_sms BIGINT,
    consent_card BIGINT,
    tags TEXT NOT NULL DEFAULT '[]',        -- JSON list
    attributes TEXT NOT NULL DEFAULT '{}',  -- JSON object: any other column
    -- derived facts, maintained on every import (as of now; the engine derives
    -- them as of T from events when it looks at the past)
    first_order_at BIGINT,
    last_order_at BIGINT,
    order_count BIGINT NOT NULL DEFAULT 0,
    total_spent DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_event_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
, address2 TEXT);
CREATE INDEX contacts_birthday ON contacts (substr(birthday, 6, 5));
CREATE INDEX contacts_last_order_at ON contacts (last_order_at);
CREATE INDEX contacts_email ON contacts (email);
CREATE TABLE suppressions (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY,  -- the order of insertion (SQLite's rowid)
    contact_id TEXT,          -- NULL when the suppression is by address only
    channel TEXT NOT NULL,    -- email | sms | card | webhook | '*' (all)
    address TEXT,             -- the e-mail / phone, or 'sha256:<hex>' once forgotten (m010: hmac-sha256:)
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL
, kind TEXT NOT NULL DEFAULT 'unsubscribed', source TEXT);
CREATE INDEX suppressions_contact ON suppressions (contact_id, channel);
CREATE INDEX suppressions_address ON suppressions (address);
CREATE TABLE ticks (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,       -- run | daemon | dry-run
    at BIGINT NOT NULL,      -- the instant T evaluated
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    pid BIGINT,
    result TEXT               -- JSON summary
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE forgotten (
    id_hash TEXT PRIMARY KEY,     -- sha256 hex of the contact id
    forgotten_at BIGINT NOT NULL
);
CREATE TABLE events (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY,  -- the order of insertion (SQLite's rowid)
    id TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL,
    type TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    amount DOUBLE PRECISION,
    currency TEXT,
    properties TEXT NOT NULL DEFAULT '{}',  -- JSON object
    imported_at BIGINT NOT NULL
, voided_at BIGINT);
CREATE INDEX contacts_signup_at ON contacts (signup_at);
CREATE INDEX contacts_signup_day ON contacts (strftime('%m-%d', signup_at, 'unixepoch'));
CREATE INDEX contacts_first_order_day
    ON contacts (strftime('%m-%d', first_order_at, 'unixepoch'));
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX suppressions_kind ON suppressions (kind, channel);
CREATE INDEX events_voided ON events (voided_at) WHERE voided_at IS NOT NULL;
CREATE INDEX events_contact_type_time ON events (contact_id, type, occurred_at, voided_at);
CREATE INDEX events_type_time ON events (type, occurred_at, voided_at);
CREATE TABLE inbound (
    source TEXT NOT NULL,        -- the [sources.NAME]
    day TEXT NOT NULL,           -- YYYY-MM-DD in the config's time zone
    received BIGINT NOT NULL,   -- requests answered 200 that day
    last_at BIGINT NOT NULL,    -- the last one
    last_topic TEXT,
    PRIMARY KEY (source, day)
);
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,                 -- also the Idempotency-Key / webhook-id
    campaign TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    occasion TEXT NOT NULL,
    event_id TEXT,                       -- the triggering event, where there is one
    channel TEXT NOT NULL,
    provider TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('pending', 'sending', 'sent', 'dead', 'held_out', 'skipped', 'cancelled', 'unconfirmed')),
    reason TEXT,                         -- why skipped / dead
    priority BIGINT NOT NULL DEFAULT 0,
    due_at BIGINT NOT NULL,             -- when the occasion was due
    created_at BIGINT NOT NULL,         -- the tick (T) that decided it
    not_before BIGINT,                  -- pending: earliest next attempt (backoff, window, daily limit)
    sent_at BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,                    -- sending: who claimed it
    lease_until BIGINT,                 -- sending: claim expires (crash recovery)
    message TEXT,                        -- JSON {to, subject, text, html, card}, rendered at enqueue
    provider_message_id TEXT,
    last_error TEXT,                     -- the provider's last answer
    cost DOUBLE PRECISION,
    updated_at BIGINT NOT NULL, purpose TEXT NOT NULL DEFAULT 'marketing', exit_event TEXT, exit_from BIGINT, exit_where TEXT, first_attempt_at BIGINT, outcome_unknown BIGINT NOT NULL DEFAULT 0, pace_window TEXT, pace_daily_limit BIGINT, expires_at BIGINT,
    UNIQUE (campaign, contact_id, occasion)
);
CREATE INDEX deliveries_dispatch ON deliveries (state, not_before);
CREATE INDEX deliveries_contact_time ON deliveries (contact_id, created_at);
CREATE INDEX deliveries_campaign_state ON deliveries (campaign, state);
CREATE INDEX deliveries_campaign_sent ON deliveries (campaign, state, sent_at);
CREATE INDEX deliveries_pending_exit ON deliveries (exit_where)
    WHERE state = 'pending' AND exit_event IS NOT NULL;
CREATE TABLE delivery_log (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY,  -- the order of insertion (SQLite's rowid)
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX delivery_log_delivery ON delivery_log (delivery_id, at);
CREATE TABLE provider_pauses (
    provider TEXT PRIMARY KEY,
    since BIGINT NOT NULL,      -- the first failure of this streak (real time)
    last_at BIGINT NOT NULL,    -- the latest one
    reason TEXT NOT NULL         -- what the service said, and what to fix
);
CREATE TABLE sync_cursors (
    source TEXT NOT NULL,         -- [sources.NAME]
    resource TEXT NOT NULL,       -- customers | orders
    cursor TEXT,                  -- the API's own mark: a time, or an opaque cursor
    synced_at BIGINT NOT NULL,   -- the last run that reached the end
    contacts BIGINT NOT NULL DEFAULT 0,  -- what that run brought
    events BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (source, resource)
);
CREATE INDEX events_rowid ON events (rowid);
CREATE TRIGGER events_note_changes AFTER INSERT OR UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION regard_note_event_change();
"""

# kept in ``settings`` under FUNCTIONS_KEY: a store whose functions differ gets them anew
FUNCTIONS_KEY = "postgresql_functions"
FUNCTIONS_VERSION = hashlib.sha256(FUNCTIONS.encode("utf-8")).hexdigest()[:16]
