"""Records already in the import's field names — from the ingest API, a shop's webhooks
and sync — validated together and upserted in one write transaction, all or nothing.

Files go through :mod:`regard.store.importer`; both write with :mod:`regard.store.upserts`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from regard.config import Config
from regard.errors import InputError
from regard.store import Store
from regard.store.derived import refresh_contacts
from regard.store.rows import BadRow, ParsedRow, RowContext, parse_contact, parse_event
from regard.store.upserts import contact_sql, event_sql, runs_of
from regard.times import to_epoch, utcnow


@dataclass
class RecordsResult:
    """What :func:`import_records` took: the contacts and events written (changed or not),
    the events voided, and the records of forgotten contacts left out."""

    contacts: int = 0
    events: int = 0
    voided: int = 0
    skipped_forgotten: int = 0
    dropped: list[str] = field(default_factory=list)


class RejectedRecords(InputError):
    """Records that fail validation, rejected together: nothing was written. ``problems``
    are ``contacts[0].email: reason`` / ``events[2].occurred_at: reason`` lines (0-based)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


REQUIRED_EVENT_FIELDS = frozenset({"id", "contact_id", "occurred_at"})


def import_records(
    store: Store,
    config: Config,
    contacts: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    *,
    voids: Sequence[tuple[str, int]] = (),
    lenient: bool = False,
    now: int | None = None,
) -> RecordsResult:
    """Upsert ``contacts``, then ``events`` (rows with the import's field names, Part 1 plus
    ``voided_at``), then set ``voided_at`` of the already stored events ``voids`` names
    (``(event id, instant)``; an event voided before keeps its time) — in ONE write
    transaction, all or nothing: a problem anywhere raises :class:`RejectedRecords` and
    nothing is written. An event's contact must be among ``contacts`` or in the store.

    ``lenient`` (what a shop's webhook needs: the shop will not fix its data for us): an
    invalid optional field is dropped (listed in ``dropped``) and the record kept; only a
    bad ``id`` (or an event's ``contact_id`` / ``occurred_at``) rejects. Records of
    forgotten contacts are left out and counted. Called inside a caller's ``write()``, it
    is a savepoint of that transaction.
    """
    stamp = to_epoch(utcnow()) if now is None else now
    region = config.sender.country.upper() or None
    ctx = RowContext(timezone=config.tz, default_region=region)
    store.contacts.use_rates(config.currencies)  # a daemon's webhooks see a changed rate
    result = RecordsResult()
    problems: list[str] = []
    parsed_contacts = _parse_records(
        "contacts", contacts, parse_contact, ctx, frozenset({"id"}), lenient, problems, result
    )
    parsed_events = _parse_records(
        "events", events, parse_event, ctx, REQUIRED_EVENT_FIELDS, lenient, problems, result
    )
    if problems:
        raise RejectedRecords(problems)
    with store.write() as conn:
        owners = {p.id for _, p in parsed_contacts} | {p.contact_id for _, p in parsed_events}
        hashes = json.dumps(sorted(store.pseudonyms.contact(o) for o in owners if o))
        forgotten = {
            r[0]
            for r in conn.execute(
                "SELECT id_hash FROM forgotten WHERE id_hash IN (SELECT value FROM json_each(?))",
                (hashes,),
            )
        }

        def remembered(owner: str) -> bool:
            if forgotten and store.pseudonyms.contact(owner) in forgotten:
                result.skipped_forgotten += 1
                return False
            return True

        kept_contacts = [(n, p) for n, p in parsed_contacts if remembered(p.id)]
        for key, params in runs_of(kept_contacts, stamp):
            conn.executemany(contact_sql(key), params)
        result.contacts = len(kept_contacts)
        kept_events = [(n, p) for n, p in parsed_events if remembered(p.contact_id or "")]
        wanted = json.dumps(sorted({p.contact_id for _, p in kept_events}))
        known = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM contacts WHERE id IN (SELECT value FROM json_each(?))", (wanted,)
            )
        }
        for n, p in kept_events:
            if p.contact_id not in known:
                problems.append(
                    f"events[{n}].contact_id: unknown contact {p.contact_id!r} "
                    "(send it among the contacts, or import it first)"
                )
        if problems:
            raise RejectedRecords(problems)
        if kept_events or voids:
            # the facts to recompute: the events' contacts, before (one may move) and after
            touched = {p.id for _, p in kept_events} | {event_id for event_id, _ in voids}
            affected = {p.contact_id or "" for _, p in kept_events} | {
                r[0]
                for r in conn.execute(
                    "SELECT contact_id FROM events WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(sorted(touched)),),
                )
            }
            for key, params in runs_of(kept_events, stamp):
                conn.executemany(event_sql(key), params)
            for event_id, at in voids:
                result.voided += conn.execute(
                    "UPDATE events SET voided_at = ?, imported_at = ? "
                    "WHERE id = ? AND voided_at IS NULL",
                    (at, stamp, event_id),
                ).rowcount
            refresh_contacts(conn, affected)
        result.events = len(kept_events)
    return result


def _parse_records(
    kind: str,
    records: Sequence[Mapping[str, Any]],
    parse: Callable[[dict[str, Any], RowContext], ParsedRow],
    ctx: RowContext,
    required: frozenset[str],
    lenient: bool,
    problems: list[str],
    result: RecordsResult,
) -> list[tuple[int, ParsedRow]]:
    parsed: list[tuple[int, ParsedRow]] = []
    for n, record in enumerate(records):
        if not isinstance(record, Mapping):
            problems.append(f"{kind}[{n}]: must be an object with the import's fields")
            continue
        row = dict(record)
        try:
            parsed.append((n, parse(row, ctx)))
            continue
        except BadRow as bad:
            fatal = [p for p in bad.problems if not lenient or p.field in required]
            if fatal:
                problems.extend(f"{kind}[{n}].{p.field}: {p.reason}" for p in fatal)
                continue
            for p in bad.problems:
                result.dropped.append(f"{kind}[{n}].{p.field}: {p.reason}")
                row.pop(p.field, None)
        try:
            parsed.append((n, parse(row, ctx)))
        except BadRow as bad:  # a problem that named a field the row does not have
            problems.extend(f"{kind}[{n}].{p.field}: {p.reason}" for p in bad.problems)
    return parsed
