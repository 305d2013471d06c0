"""``regard import contacts|events``: validate every row, upsert by id, all or nothing.

The whole import is one ``Store.write()`` transaction. Rows are validated as they stream
in and written in batches (``executemany`` of an ``INSERT … ON CONFLICT DO UPDATE … WHERE``
that only touches rows that really change), so memory stays flat however big the file.
A bad row stops the writing; the rest of the file is still validated so that every bad
row is listed, then the transaction is rolled back and :class:`RejectedFile` (an
InputError) raised. With ``skip_invalid`` a row whose only bad fields are optional ones
(phone, birthday, …) is imported without them (each drop listed, ``(dropped)``); a row
with a bad required field (an id, an event's contact or time) is skipped and listed.

One file naming the same id on two lines with different values is rejected (with or
without ``skip_invalid``: which line is right is for the shop to say), naming both lines.
It is found without holding the file in memory: every row's (id, line, digest) goes to a
plain temporary table (no index: an append), grouped once at the end. (A trigger noting
rewritten rows was tried: an AFTER UPDATE trigger makes SQLite's upsert of every row
markedly slower.) A plain CSV of events into an empty events table notes nothing at first:
its rows are inserted with ``ON CONFLICT DO NOTHING``, and only an id met again (a row not
inserted), a bad row or a forgotten contact's makes it read the file a second time to note
the lines (:meth:`_Import._note_lines`).

A plain CSV of events is read a batch at a time and validated column by column
(:mod:`regard.store.columns`); the rows off its path go through :func:`parse_event` one
by one, like every row of the other files.

A :class:`RowFormat` reads a shop's own layout (Shopify's CSV exports, WooCommerce's REST
arrays; see :mod:`regard.sources`) into rows of the import's fields. Its event rows may
name their contact by e-mail (``CONTACT_EMAIL``, matched case-insensitively among the
store's contacts) and may carry their contact's own row (``CONTACT_ROW``), upserted first.

Rows of contacts that were forgotten (``regard contacts forget``) are skipped and counted:
an erasure request stays honoured even when the shop's next export still has them.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from regard.config import Config
from regard.errors import InputError
from regard.store import Store
from regard.store.columns import EventBatch, EventColumns
from regard.store.derived import (
    note_contacts,
    note_inserted_since,
    refresh_derived_facts,
    track_event_changes,
)
from regard.store.readers import BadLine, CsvBatch, Ignored, Row, Source, open_rows
from regard.store.rows import (
    BadRow,
    ParsedRow,
    RowContext,
    event_parser,
    parse_contact,
    parse_event,
)
from regard.store.upserts import FRESH, contact_sql, event_sql, insert_sql, runs_of
from regard.times import to_epoch, utcnow

BATCH_ROWS = 2000
# a plain CSV of events is read a batch at a time, column by column (regard.store.columns);
# False reads it row by row, as every other file (the reference the tests compare with)
COLUMNWISE = True
_first = itemgetter(0)
Progress = Callable[[int], None]  # called with the bytes read since the last call
Lines = Iterator[tuple[int, "Row | BadLine | Ignored"]]

# keys a RowFormat's event row may carry besides the import's fields
CONTACT_EMAIL = "_contact_email"
CONTACT_ROW = "_contact"

# the event columns the derived facts are computed from (regard.store.derived.FACTS_SQL)
FACT_COLUMNS = ("contact_id", "type", "occurred_at", "amount", "voided_at")

PLAIN_REQUIRED = {"contacts": ("id",), "events": ("id", "contact_id", "occurred_at")}


@dataclass(frozen=True)
class RowFormat:
    """A shop's own file layout. ``required`` names the columns a CSV must have, per kind;
    ``rows(kind, lines)`` turns the file's rows into import rows (merging rows that belong
    together, such as an order's line items), each with the line it starts on; a row the
    format leaves out on purpose (an order not yet paid) is :class:`Ignored`."""

    name: str
    required: Mapping[str, tuple[str, ...]]
    rows: Callable[[str, Lines], Lines]


@dataclass
class ImportResult:
    """What an import did. ``problems`` are ``FILE:LINE: field: reason`` lines (a dropped
    optional field ends with ``(dropped)``). ``late`` is filled by the caller that knows
    the campaigns (:func:`regard.campaigns.lateness.late_events`)."""

    kind: str
    file: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_forgotten: int = 0
    invalid: int = 0
    dropped: int = 0  # optional fields dropped (with skip_invalid)
    salvageable: int = 0  # bad rows skip_invalid would import without their bad fields
    ignored: int = 0
    contacts_written: int = 0
    derived_refreshed: int = 0
    problems: list[str] = field(default_factory=list)
    # ``FILE:LINE: field: …`` of what was imported but needs the user's eye: the first row
    # of each currency without a rate in [currencies]
    warnings: list[str] = field(default_factory=list)
    late: dict[str, int] = field(default_factory=dict)
    stamp: int = 0  # the import's time (imported_at / updated_at of what it wrote)
    first_new_rowid: int = 1  # events inserted by this import have a rowid from here on

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``regard import``."""
        return {
            "kind": self.kind,
            "file": self.file,
            "rows": self.rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "dropped": self.dropped,
            "ignored": self.ignored,
            "skipped_forgotten": self.skipped_forgotten,
            "problems": self.problems,
            "warnings": self.warnings,
            "late": self.late,
        }


def import_contacts(
    store: Store,
    config: Config,
    path: str | Path,
    *,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    stdin: IO[bytes] | None = None,
    rename: Mapping[str, str] | None = None,
    format: RowFormat | None = None,
) -> ImportResult:
    """Import contacts from ``path`` (``.csv``, ``.jsonl``, ``.json`` or ``-`` for JSONL on
    stdin), its columns renamed by ``rename`` (file name → field), read in ``format``
    (None: regard's own fields).

    Raises RejectedFile listing every bad row (and writes nothing) unless ``skip_invalid``.
    """
    return _Import(store, config, "contacts", skip_invalid, progress, format).run(
        path, stdin, rename
    )


def import_events(
    store: Store,
    config: Config,
    path: str | Path,
    *,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    stdin: IO[bytes] | None = None,
    rename: Mapping[str, str] | None = None,
    format: RowFormat | None = None,
) -> ImportResult:
    """Import events from ``path``; their contacts must be in the store already (or come
    with the row, in a format that has them). Derived facts of every contact whose events
    changed are recomputed before the commit."""
    return _Import(store, config, "events", skip_invalid, progress, format).run(path, stdin, rename)


class _Import:
    def __init__(
        self,
        store: Store,
        config: Config,
        kind: str,
        skip_invalid: bool,
        progress: Progress | None,
        format: RowFormat | None,
    ) -> None:
        self.store = store
        self.conn = store.conn
        self.kind = kind
        self.skip_invalid = skip_invalid
        self.progress = progress
        self.format = format
        self.parse = parse_contact if kind == "contacts" else parse_event
        region = config.sender.country.upper() or None
        self.context = RowContext(timezone=config.tz, default_region=region)
        self.now = to_epoch(utcnow())
        self.sql = contact_sql if kind == "contacts" else event_sql
        self.changed = 0
        self.lines: list[tuple[str, int, int]] = []  # (id, line, digest) of the batch
        self.emails: dict[str, str | None] = {}
        self.emails_indexed = False
        self.had_events = False  # whether an event row can be a rewrite of a stored one
        # (id, line, digest) of each row noted only when it matters (see _read_batches)
        self.deferred = False
        self.repeated = False  # an id was met again (with deferred lines)
        self.parsers: dict[tuple[str, ...], Callable[[dict[str, Any]], ParsedRow]] = {}
        # amounts in a currency without a rate: currency → [first line, rows]
        self.priced = frozenset({config.currency, *config.currencies})
        self.base = config.currency
        self.unpriced: dict[str, list[int]] = {}

    def run(
        self, path: str | Path, stdin: IO[bytes] | None, rename: Mapping[str, str] | None
    ) -> ImportResult:
        required = (self.format.required if self.format else PLAIN_REQUIRED)[self.kind]
        with (
            open_rows(path, required=required, stdin=stdin, rename=dict(rename or {})) as source,
            self.store.write() as conn,
        ):
            result = ImportResult(kind=self.kind, file=source.name, stamp=self.now)
            rows: Lines = iter(())
            batches: Iterator[CsvBatch] | None = None
            if (
                COLUMNWISE
                and source.kind == "csv"
                and self.format is None
                and self.kind == "events"
            ):
                # a plain CSV of events: read a batch at a time, column by column
                batches = source.csv_batches(BATCH_ROWS)
                first_batch = list(itertools.islice(batches, 1))
                batches = itertools.chain(first_batch, batches)
            else:
                rows = source.rows()
            if source.kind == "csv" and self.format is None:
                # a ;-separated file is Excel's in a German locale: amounts as 1.234,50
                # (the separator is known once the header is read, with the first row)
                if batches is None:
                    first = list(itertools.islice(rows, 1))
                    rows = itertools.chain(first, rows)
                self.context = replace(self.context, decimal_comma=source.delimiter == ";")
            forgotten = {r[0] for r in conn.execute("SELECT id_hash FROM forgotten")}
            before = self._count()
            if self.kind == "events":
                last = conn.execute("SELECT max(rowid) FROM events").fetchone()[0]
                result.first_new_rowid = (last or 0) + 1
                track_event_changes(conn, inserts=False, updates=False)
                self.had_events = last is not None
            _watch_rewrites(conn, self.kind)
            reported = 0
            batch: list[tuple[int, ParsedRow]] = []
            contacts: list[tuple[int, ParsedRow]] = []
            if self.format is not None:
                rows = self.format.rows(self.kind, rows)
            name, plain, lines = source.name, self.format is None, self.lines
            fast: Callable[[dict[str, Any]], ParsedRow] | None = None
            layout: tuple[str, ...] = ()
            parsed: ParsedRow | None
            if batches is not None:
                # into an empty table, an id twice shows as a row not inserted: the lines
                # are noted (a second reading) only when that happened, or a row was bad
                self.deferred = not self.had_events
                read_as = _signature(path)
                self._read_batches(source, batches, result, forgotten)
                if self.deferred and (self.repeated or result.problems or result.skipped_forgotten):
                    if _signature(path) != read_as:
                        raise InputError(
                            f"{source.name}: the file changed while it was being imported; "
                            "nothing was imported (import it again once it is written whole)"
                        )
                    self._note_lines(path, required, rename)
            for line, row in rows:
                result.rows += 1
                contact = None
                if plain and self.kind == "events" and type(row) is dict:
                    # the common case without detours: a plain event row of the layout seen
                    # before (every row of a CSV file), through its compiled parser
                    if fast is None or tuple(row) != layout:
                        layout = tuple(row)
                        fast = self._fast_parser(layout)
                    try:
                        parsed = fast(row)
                        lines.append((parsed.id, line, hash(parsed[1:3])))
                    except BadRow:
                        parsed = self._parse(name, line, row, result, self.parse)
                else:
                    if isinstance(row, Ignored):
                        result.rows -= 1
                        result.ignored += 1
                        continue
                    contact = self._ride_along(name, line, row, result)
                    parsed = self._parse(name, line, row, result, self.parse)
                if parsed is None or self._forgotten(parsed, forgotten, result):
                    continue
                if contact is not None:
                    contacts.append((line, contact))
                if "currency" in parsed.key:
                    self._note_currency(line, parsed)
                batch.append((line, parsed))
                if len(batch) >= BATCH_ROWS:
                    self._flush(source.name, batch, contacts, result)
                    batch, contacts = [], []
                    reported = self._report(source.bytes_read, reported)
            self._flush(source.name, batch, contacts, result)
            self._report(source.bytes_read, reported)
            _by_line(source.name, result.problems)
            conflicts = _conflicting_lines(conn, source.name, self.kind)
            _stop_watching(conn)
            if conflicts:
                result.problems[:0] = conflicts
                raise RejectedFile(result, duplicates=len(conflicts))
            if result.problems and not self.skip_invalid:
                raise RejectedFile(result)
            if self.kind == "events":
                if self.had_events:
                    note_inserted_since(conn, result.first_new_rowid)
                result.derived_refreshed = refresh_derived_facts(
                    conn, every_event=not self.had_events
                )
            result.inserted = self._count() - before
            result.updated = self.changed - result.inserted
            result.unchanged = (
                result.rows - result.invalid - result.skipped_forgotten - self.changed
            )
            result.warnings = self._currency_warnings(source.name)
            return result

    def _read_batches(
        self, source: Source, batches: Iterator[CsvBatch], result: ImportResult, forgotten: set[str]
    ) -> None:
        """Read, check and write a plain CSV file of events a batch at a time: the rows
        :class:`EventColumns` reads column by column, the others (and every row of a
        layout it does not read) one by one, as any row."""
        name = source.name
        columns = source.columns or ()
        fast = EventColumns.applies(columns)
        reader = EventColumns(columns, self.context, self.now) if fast else None
        # the upsert of its rows (with their properties' stored form, when they have some)
        sql_key = () if reader is None else (*reader.key, FRESH) if reader.props else reader.key
        reported = 0
        for batch in batches:
            result.rows += len(batch.rows) + len(batch.bad)
            for line, bad in batch.bad:
                self._parse(name, line, bad, result, self.parse)
            slow: Sequence[int] = range(len(batch.rows))
            read: EventBatch | None = None
            if reader is not None and batch.rows:
                read = reader.parse(batch.lines, batch.rows, digests=not self.deferred)
                slow = read.slow
                if not self.deferred:
                    self._insert_lines(read)
                if forgotten:
                    self._leave_out_forgotten(read, forgotten, result)
                if "currency" in sql_key:
                    self._note_currencies(sql_key, read)
            one_by_one: list[tuple[int, ParsedRow]] = []
            for n in slow:
                line = batch.lines[n]
                parsed = self._parse(
                    name, line, dict(zip(columns, batch.rows[n], strict=True)), result, self.parse
                )
                if parsed is None or self._forgotten(parsed, forgotten, result):
                    continue
                if "currency" in parsed.key:
                    self._note_currency(line, parsed)
                one_by_one.append((line, parsed))
            self._flush(name, one_by_one, [], result, (sql_key, read) if read else None)
            reported = self._report(source.bytes_read, reported)

    def _insert_lines(self, read: EventBatch) -> None:
        self.conn.executemany(
            "INSERT INTO temp.import_lines VALUES (?, ?, ?)",
            zip(map(_first, read.params), read.lines, read.digests, strict=True),
        )

    def _forgotten(self, parsed: ParsedRow, forgotten: set[str], result: ImportResult) -> bool:
        """True, and counted, when the row is of a contact forgotten before (never stored
        again)."""
        owner = parsed.contact_id or parsed.id
        if forgotten and self.store.pseudonyms.contact(owner) in forgotten:
            result.skipped_forgotten += 1
            return True
        return False

    def _note_lines(
        self, path: str | Path, required: tuple[str, ...], rename: Mapping[str, str] | None
    ) -> None:
        """Read the file again to note every row's (id, line, digest) for the same-id-twice
        check, as the reading that wrote the rows would have (problems are not listed
        again)."""
        scratch = ImportResult(kind=self.kind, file="")
        self.deferred = False
        with open_rows(path, required=required, rename=dict(rename or {})) as source:
            reader: EventColumns | None = None
            for batch in source.csv_batches(BATCH_ROWS):
                columns = source.columns or ()
                slow: Sequence[int] = range(len(batch.rows))
                if EventColumns.applies(columns):
                    reader = reader or EventColumns(columns, self.context, self.now)
                    read = reader.parse(batch.lines, batch.rows)
                    self._insert_lines(read)
                    slow = read.slow
                for n in slow:
                    row = dict(zip(columns, batch.rows[n], strict=True))
                    self._parse(source.name, batch.lines[n], row, scratch, self.parse)
                self.conn.executemany("INSERT INTO temp.import_lines VALUES (?, ?, ?)", self.lines)
                self.lines.clear()

    def _leave_out_forgotten(
        self, read: EventBatch, forgotten: set[str], result: ImportResult
    ) -> None:
        """Drop the rows of forgotten contacts from ``read`` (each contact hashed once)."""
        pseudonym = self.store.pseudonyms.contact
        gone = {c for c in set(read.contact_ids) if pseudonym(c) in forgotten}
        if not gone:
            return
        keep = [n for n, c in enumerate(read.contact_ids) if c not in gone]
        result.skipped_forgotten += len(read.params) - len(keep)
        read.params = [read.params[n] for n in keep]
        read.lines = [read.lines[n] for n in keep]
        read.contact_ids = [read.contact_ids[n] for n in keep]

    def _note_currencies(self, key: tuple[str, ...], read: EventBatch) -> None:
        """:meth:`_note_currency` for the rows of a column-wise batch."""
        at = 1 + key.index("currency")
        codes = set(map(itemgetter(at), read.params)) - self.priced - {None}
        if not codes or "amount" not in key:
            return
        amount_at = 1 + key.index("amount")
        for line, params in zip(read.lines, read.params, strict=True):
            code = params[at]
            if code in codes and params[amount_at] is not None:
                self.unpriced.setdefault(code, [line, 0])[1] += 1

    def _note_currency(self, line: int, parsed: ParsedRow) -> None:
        """Note an event whose amount is in a currency the config has no rate for."""
        code = parsed.values[parsed.key.index("currency")]
        if code is None or code in self.priced or "amount" not in parsed.key:
            return
        if parsed.values[parsed.key.index("amount")] is None:
            return
        self.unpriced.setdefault(code, [line, 0])[1] += 1

    def _currency_warnings(self, name: str) -> list[str]:
        """One line per currency without a rate, naming its first row (regard.store.currencies)."""
        base = self.base
        return [
            f"{name}:{first}: currency: no rate for {code} in [currencies] of the config "
            f"({rows} {'row' if rows == 1 else 'rows'} with an amount in {code}): until "
            f"there is one, these amounts count as {base} as they are in total_spent, "
            f"milestones and the report; add {code} = <what one {code} is worth in {base}>"
            for code, (first, rows) in sorted(self.unpriced.items())
        ]

    def _ride_along(
        self, name: str, line: int, row: Row | BadLine, result: ImportResult
    ) -> ParsedRow | None:
        """A format's event row: its contact row (parsed), and its contact found by e-mail."""
        if self.format is None or self.kind != "events" or not isinstance(row, dict):
            return None
        contact: ParsedRow | None = None
        contact_row = row.pop(CONTACT_ROW, None)
        if isinstance(contact_row, dict):
            contact = self._parse(name, line, contact_row, result, parse_contact, count=False)
        if CONTACT_EMAIL in row:
            email = row.pop(CONTACT_EMAIL)
            found = self._contact_by_email(email) if isinstance(email, str) else None
            if found is not None:
                row["contact_id"] = found
            elif isinstance(email, str) and email.strip():
                row["contact_id"] = None
                row["_unknown_email"] = email.strip()
        return contact

    def _contact_by_email(self, email: str) -> str | None:
        key = email.strip().lower()
        if not key:
            return None
        if not self.emails_indexed:
            # once per import: the store's e-mails, any case, each with its first contact id
            for statement in (
                "CREATE TEMP TABLE IF NOT EXISTS import_emails "
                "(email TEXT PRIMARY KEY COLLATE NOCASE, id TEXT NOT NULL)",
                "DELETE FROM temp.import_emails",
                # folded here too: PostgreSQL has no NOCASE (its translation drops it)
                "INSERT INTO temp.import_emails (email, id) SELECT lower_address(email), id "
                "FROM contacts WHERE email IS NOT NULL ORDER BY id ON CONFLICT (email) DO NOTHING",
            ):
                self.conn.execute(statement)
            self.emails_indexed = True
        if key not in self.emails:
            if len(self.emails) > 100_000:
                self.emails.clear()
            found = self.conn.execute(
                "SELECT id FROM temp.import_emails WHERE email = ?", (key,)
            ).fetchone()
            self.emails[key] = found[0] if found else None
        return self.emails[key]

    def _parse(
        self,
        name: str,
        line: int,
        row: Row | BadLine,
        result: ImportResult,
        parse: Callable[[dict[str, Any], RowContext], ParsedRow],
        count: bool = True,
    ) -> ParsedRow | None:
        if isinstance(row, BadLine):
            result.problems.append(f"{name}:{line}: row: {row.reason}")
            result.invalid += 1
            return None
        unknown_email = row.pop("_unknown_email", None) if self.format else None
        try:
            if parse is parse_event:
                parsed = self._fast_parser(tuple(row))(row)
            else:
                parsed = parse(row, self.context)
        except BadRow as bad:
            if unknown_email is not None:
                bad.problems = [p for p in bad.problems if p.field != "contact_id"]
                bad.salvaged = None
            if bad.salvaged is not None and self.skip_invalid:
                result.problems.extend(
                    f"{name}:{line}: {p.field}: {p.reason} (dropped)" for p in bad.problems
                )
                result.dropped += len(bad.problems)
                parsed = bad.salvaged
            else:
                result.problems.extend(
                    f"{name}:{line}: {p.field}: {p.reason}" for p in bad.problems
                )
                if unknown_email is not None:
                    result.problems.append(self._no_contact(name, line, unknown_email))
                if count:
                    result.invalid += 1
                    result.salvageable += bad.salvaged is not None
                return None
        if unknown_email is not None:
            result.problems.append(self._no_contact(name, line, unknown_email))
            result.invalid += count
            return None
        if count:
            self.lines.append((parsed.id, line, hash(parsed[1:3])))
        return parsed

    def _fast_parser(self, layout: tuple[str, ...]) -> Callable[[dict[str, Any]], ParsedRow]:
        """The compiled event parser of rows with these columns (:func:`event_parser`)."""
        fast = self.parsers.get(layout)
        if fast is None:
            if len(self.parsers) > 256:  # JSON rows of ever new shapes
                self.parsers.clear()
            fast = self.parsers[layout] = event_parser(layout, self.context)
        return fast

    @staticmethod
    def _no_contact(name: str, line: int, email: str) -> str:
        return (
            f"{name}:{line}: Email: no contact has the e-mail {email!r} "
            "(import the customer export first)"
        )

    def _flush(
        self,
        name: str,
        batch: list[tuple[int, ParsedRow]],
        contacts: list[tuple[int, ParsedRow]],
        result: ImportResult,
        read: tuple[tuple[str, ...], EventBatch] | None = None,
    ) -> None:
        """Write a batch: ``batch``'s rows, and those ``read`` column-wise (its upsert's
        columns, and the rows) — unless the file is being rejected."""
        if self.lines and not self.deferred:
            self.conn.executemany("INSERT INTO temp.import_lines VALUES (?, ?, ?)", self.lines)
        self.lines.clear()
        if contacts and not (result.problems and not self.skip_invalid):
            for key, params in runs_of(contacts, self.now):
                self.conn.executemany(contact_sql(key), params)
            result.contacts_written += len(contacts)
        if self.kind == "events" and (batch or read):
            batch = self._known_contacts_only(name, batch, result, read and read[1])
        if result.problems and not self.skip_invalid:
            return  # the file is rejected: validate on, write nothing more
        runs = list(runs_of(batch, self.now))
        if read is not None and read[1].params:
            runs.append((read[0], read[1].params))
        if self.had_events and runs:
            self._note_rewrites(runs)
        for key, params in runs:
            if self.deferred:
                # an empty table at the start: a row not inserted has an id met before
                # (the same-id-twice check then decides; a committed import has inserted
                # each id's only values, as the upsert would have)
                cursor = self.conn.executemany(insert_sql(key), params)
                self.repeated |= cursor.rowcount < len(params)
            else:
                cursor = self.conn.executemany(self.sql(key), params)
            self.changed += cursor.rowcount

    def _known_contacts_only(
        self,
        name: str,
        batch: list[tuple[int, ParsedRow]],
        result: ImportResult,
        read: EventBatch | None = None,
    ) -> list[tuple[int, ParsedRow]]:
        """``batch`` without the rows whose contact is not in the store (each listed as a
        problem); the same for the rows of ``read``, which is changed in place. One query
        for both."""
        wanted = {p.contact_id for _, p in batch}
        if read is not None:
            wanted.update(read.contact_ids)
        unknown = {
            r[0]
            for r in self.conn.execute(
                "SELECT value FROM json_each(?) WHERE value NOT IN (SELECT id FROM contacts)",
                (json.dumps(list(wanted)),),
            )
        }
        if not unknown:
            return batch
        kept = []
        for line, parsed in batch:
            if parsed.contact_id not in unknown:
                kept.append((line, parsed))
            else:
                self._unknown_contact(name, line, parsed.contact_id, result)
        if read is not None:
            keep = []
            for n, contact_id in enumerate(read.contact_ids):
                if contact_id in unknown:
                    self._unknown_contact(name, read.lines[n], contact_id, result)
                else:
                    keep.append(n)
            read.params = [read.params[n] for n in keep]
            read.lines = [read.lines[n] for n in keep]
            read.contact_ids = [read.contact_ids[n] for n in keep]
        return kept

    @staticmethod
    def _unknown_contact(
        name: str, line: int, contact_id: str | None, result: ImportResult
    ) -> None:
        result.problems.append(
            f"{name}:{line}: contact_id: unknown contact {contact_id!r} "
            "(import it with `regard import contacts` first)"
        )
        result.invalid += 1

    def _note_rewrites(self, runs: list[tuple[tuple[str, ...], list[tuple[Any, ...]]]]) -> None:
        """Note the contacts (old and new) of the stored events this batch changes in a
        column the derived facts read. ``runs`` are the batch's upserts: (columns,
        parameter rows ``(id, *values, …)``). (New events are noted at the end, all at
        once; an id that repeats within the file is new or rejected.)"""
        wanted = json.dumps([params[0] for _, rows in runs for params in rows])
        stored = {
            r[0]: r[1:]
            for r in self.conn.execute(
                f"SELECT id, {', '.join(FACT_COLUMNS)} FROM events "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (wanted,),
            )
        }
        if not stored:
            return
        noted: set[str] = set()
        for key, rows in runs:
            at = [(n, 1 + key.index(c)) for n, c in enumerate(FACT_COLUMNS) if c in key]
            contact_at = 1 + key.index("contact_id")
            for params in rows:
                old = stored.get(params[0])
                if old is not None and any(params[p] != old[n] for n, p in at):
                    noted.update((old[0], params[contact_at] or old[0]))
        note_contacts(self.conn, noted)

    def _count(self) -> int:
        count: int = self.conn.execute(f"SELECT count(*) FROM {self.kind}").fetchone()[0]
        return count

    def _report(self, done: int, reported: int) -> int:
        if self.progress is not None and done > reported:
            self.progress(done - reported)
        return done


def _watch_rewrites(conn: Any, table: str) -> None:
    """Start noting what a same-id-twice check needs (see the module's docstring)."""
    for statement in (
        "CREATE TEMP TABLE IF NOT EXISTS import_lines (id TEXT, line INTEGER, digest INTEGER)",
        "DELETE FROM temp.import_lines",
    ):
        conn.execute(statement)


def _stop_watching(conn: Any) -> None:
    conn.execute("DROP TABLE IF EXISTS temp.import_lines")


def _conflicting_lines(conn: Any, name: str, table: str) -> list[str]:
    """``FILE:LINE: id: …`` for each id this import wrote from two lines that differ."""
    rows = conn.execute(
        """
        SELECT id, line, digest FROM temp.import_lines
        WHERE id IN (SELECT id FROM temp.import_lines GROUP BY id HAVING count(DISTINCT digest) > 1)
        ORDER BY id, line
        """
    )
    seen: dict[str, tuple[int, int]] = {}
    problems: list[tuple[int, str]] = []
    for row_id, line, digest in rows:
        first = seen.setdefault(row_id, (line, digest))
        if first[1] != digest and first[0] != line:
            problems.append(
                (
                    line,
                    f"{name}:{line}: id: {row_id!r} is also on line {first[0]}, with other "
                    f"values (lines {first[0]} and {line}: one {table[:-1]} per id)",
                )
            )
            seen[row_id] = (first[0], digest)
    return [text for _, text in sorted(problems)]


def _signature(path: str | Path) -> tuple[int, int, int]:
    """What tells a file rewritten since from the one read: its inode, size and mtime."""
    found = os.stat(path)
    return found.st_ino, found.st_size, found.st_mtime_ns


def _by_line(name: str, problems: list[str]) -> None:
    """Sort ``FILE:LINE: …`` problems by line alone, which keeps a row's fields in file
    order (unknown contacts are found a batch later than the row's other problems)."""
    skip = len(name) + 1
    problems.sort(key=lambda p: int(p[skip:].split(":", 1)[0]))


class RejectedFile(InputError):
    """A file with bad rows, rejected whole: nothing was written. ``problems`` lists every
    bad field as ``FILE:LINE: field: reason``; ``summary`` says what to do."""

    def __init__(self, result: ImportResult, duplicates: int = 0) -> None:
        self.problems = result.problems
        if duplicates:
            ids = "id" if duplicates == 1 else "ids"
            self.summary = (
                f"{result.file}: {duplicates} {ids} on two lines with different values; "
                "nothing was imported (keep one line per id)"
            )
        else:
            good = result.rows - result.invalid - result.skipped_forgotten
            rows = "row" if result.invalid == 1 else "rows"
            if result.salvageable:
                hint = (
                    f"import {good + result.salvageable} rows, dropping the bad optional "
                    "fields and skipping rows with a bad required one"
                )
            else:
                hint = f"import the {good} good rows"
            self.summary = (
                f"{result.file}: {result.invalid} bad {rows}; nothing was imported "
                f"(fix them, or pass --skip-invalid to {hint})"
            )
        super().__init__("\n".join([*self.problems, self.summary]))
