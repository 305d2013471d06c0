"""Reading contacts as the rest of regard sees them: one flat mapping of fields,
attributes and derived facts, with instants as aware datetimes; and what ``regard check``
may learn about them without opening the store for writing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypedDict

from regard.store.area import Area
from regard.store.currencies import stored_rates
from regard.store.derived import apply_rates
from regard.store.erase import Erasure, erase_contact
from regard.store.fields import FieldError, phone
from regard.store.readonly import READ_ERRORS, read_only
from regard.times import Instant, from_epoch

CONTACT_FIELDS = (
    "id", "email", "phone", "first_name", "last_name", "salutation", "company", "locale",
    "timezone", "country", "street", "postal_code", "city", "birthday", "signup_at",
    "consent_email", "consent_sms", "consent_card", "tags", "address2",
)  # fmt: skip
DERIVED_FACTS = ("first_order_at", "last_order_at", "order_count", "total_spent", "last_event_at")
INSTANT_FIELDS = frozenset(
    {"signup_at", "first_order_at", "last_order_at", "last_event_at", "created_at", "updated_at"}
)
BOOL_FIELDS = frozenset({"consent_email", "consent_sms", "consent_card"})


def contact_from_row(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """A stored contact row → the flat mapping templates and audiences see.

    Attributes come first so that a real field always wins over an attribute of that name.
    """
    raw = dict(row)
    contact: dict[str, Any] = dict(json.loads(raw.pop("attributes", None) or "{}"))
    for key, value in raw.items():
        if key in INSTANT_FIELDS:
            contact[key] = from_epoch(value) if value is not None else None
        elif key in BOOL_FIELDS:
            contact[key] = None if value is None else bool(value)
        elif key == "tags":
            contact[key] = json.loads(value or "[]")
        elif key == "birthday":
            contact[key] = date.fromisoformat(value) if value else None
        else:
            contact[key] = value
    if contact.get("total_spent") is not None:
        contact["total_spent"] = round(float(contact["total_spent"]), 2)
    return contact


_INSTANT, _BOOL, _TAGS, _BIRTHDAY = 1, 2, 3, 4


def _kind(name: str) -> int:
    if name in INSTANT_FIELDS:
        return _INSTANT
    if name in BOOL_FIELDS:
        return _BOOL
    return {"tags": _TAGS, "birthday": _BIRTHDAY}.get(name, 0)


class ContactReader:
    """:func:`contact_from_row` for many rows of one query, each column's conversion chosen
    once: ``columns`` are the contact's keys in order, each with the index of its value in a
    row; ``attributes`` among them is read first. Called with a row's values, the reader
    makes exactly the mapping :func:`contact_from_row` makes of that row."""

    def __init__(self, columns: Sequence[tuple[str, int]]) -> None:
        self.attributes = next((i for name, i in columns if name == "attributes"), None)
        self.plan = [(name, i, _kind(name)) for name, i in columns if name != "attributes"]
        # the columns read as they are stored (or as a flag): what :class:`ContactRow`
        # answers without converting the whole row
        self.direct = {name: (i, kind) for name, i, kind in self.plan if kind in (0, _BOOL)}
        self.direct.pop("total_spent", None)  # rounded as a float
        self.columns = {name: (i, kind) for name, i, kind in self.plan}

    def attributes_of(self, values: Sequence[Any]) -> dict[str, Any]:
        """The row's attributes (what the mapping holds under keys that are no column)."""
        if self.attributes is not None:
            stored = values[self.attributes]
            if stored and stored != "{}":
                return dict(json.loads(stored))
        return {}

    def value(self, values: Sequence[Any], name: str) -> Any:
        """Column ``name``'s value as the whole mapping holds it."""
        i, kind = self.columns[name]
        value = _converted(values[i], kind)
        if name == "total_spent" and value is not None:
            return round(float(value), 2)
        return value

    def __call__(self, values: Sequence[Any]) -> dict[str, Any]:
        contact = self.attributes_of(values)
        for name, i, kind in self.plan:
            contact[name] = values[i] if not kind else _converted(values[i], kind)
        if contact.get("total_spent") is not None:
            contact["total_spent"] = round(float(contact["total_spent"]), 2)
        return contact


def _converted(value: Any, kind: int) -> Any:
    """A stored column's value of ``kind`` (:func:`_kind`) as the contact's mapping holds it."""
    if not kind:
        return value
    if kind == _TAGS:
        return [] if not value or value == "[]" else json.loads(value)
    if value is None:
        return None
    if kind == _INSTANT:
        return datetime.fromtimestamp(value, UTC)
    if kind == _BOOL:
        return bool(value)
    return date.fromisoformat(value) if value else None


_ABSENT = object()  # a key the contact's mapping does not hold


class ContactRow(Mapping[str, Any]):
    """A contact as a :class:`ContactReader` reads its row, each field converted when it is
    asked for: a tick's checks ask a few columns (address, consent, order count, time
    zone) of every candidate, a template a dozen fields of a contact, and neither needs
    the whole mapping. What it answers is what the whole mapping (:meth:`whole`, made
    only when it is iterated or counted) holds. Pickled as the reader and the row's values
    (the reader once per pickle), so the render worker converts what it reads, not the
    tick."""

    __slots__ = ("_attributes", "_contact", "_reader", "_values")

    def __init__(self, reader: ContactReader, values: tuple[Any, ...]) -> None:
        self._reader, self._values = reader, values
        self._contact: dict[str, Any] | None = None
        self._attributes: dict[str, Any] | None = None

    def whole(self) -> dict[str, Any]:
        """The whole mapping (made once)."""
        if self._contact is None:
            self._contact = self._reader(self._values)
        return self._contact

    def _attributes_read(self) -> dict[str, Any]:
        if self._attributes is None:
            self._attributes = self._reader.attributes_of(self._values)
        return self._attributes

    def get(self, key: str, default: Any = None) -> Any:
        if self._contact is not None:
            return self._contact.get(key, default)
        reader = self._reader
        direct = reader.direct.get(key)
        if direct is not None:  # the common case first: a column read as it is stored
            value = self._values[direct[0]]
            return bool(value) if direct[1] and value is not None else value
        found = self._found(key)
        return default if found is _ABSENT else found

    def __getitem__(self, key: str) -> Any:
        found = self._contact.get(key, _ABSENT) if self._contact is not None else self._found(key)
        if found is _ABSENT:
            raise KeyError(key)
        return found

    def _found(self, key: str) -> Any:
        """What the whole mapping holds under ``key`` (:data:`_ABSENT`: nothing), read
        from the row alone: a column wins over an attribute of its name."""
        if key in self._reader.columns:
            return self._reader.value(self._values, key)
        if key == "total_spent":  # an attribute of that name is rounded as a float
            return self.whole().get(key, _ABSENT)
        return self._attributes_read().get(key, _ABSENT)

    def has_columns(self, names: Iterable[str]) -> bool:
        """Whether every one of ``names`` is a column of the row (not an attribute)."""
        return all(name in self._reader.columns for name in names)

    def __contains__(self, key: object) -> bool:
        if self._contact is not None:
            return key in self._contact
        return key in self._reader.columns or key in self._attributes_read()

    def __iter__(self) -> Iterator[str]:
        return iter(self.whole())

    def __len__(self) -> int:
        return len(self.whole())

    def __repr__(self) -> str:
        return f"ContactRow({self.whole()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ContactRow, (self._reader, self._values))


class Contacts(Area):
    """The ``contacts`` table, read (imports write it: :mod:`regard.store.importer`)."""

    def get(self, contact_id: str) -> dict[str, Any] | None:
        """One contact by id (None if unknown) as :func:`contact_from_row` makes it, its
        derived facts as stored by the last import (a tick sees them as of its own
        instant: :meth:`regard.store.occasions.Occasions.candidates`)."""
        row = self.conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
        return contact_from_row(row) if row is not None else None

    def use_rates(self, rates: Mapping[str, float]) -> bool:
        """Convert every sum of amounts with ``rates``, the config's ``[currencies]``
        (currency → worth of one unit in the config's currency; :mod:`.currencies`).
        Rates that differ from the stored ones replace them, and every contact's stored
        facts are recomputed, in one transaction; returns whether anything changed (a
        store already up to date is only read)."""
        if stored_rates(self.conn) == {code: float(rate) for code, rate in rates.items()}:
            return False
        with self.store.write() as conn:
            return apply_rates(conn, rates)

    def find(self, key: str) -> str | None:
        """The id of the contact ``key`` names: its id, else its e-mail (compared folded),
        else its phone (as typed or written as E.164); None when none does. When several
        contacts share the address, the first by id."""
        row = self.conn.execute("SELECT id FROM contacts WHERE id = ?", (key,)).fetchone()
        if row is not None:
            return str(row[0])
        phones = [key]
        try:
            e164 = phone("phone", key, None)
        except FieldError:
            e164 = None
        if e164:
            phones.append(e164)
        row = self.conn.execute(
            "SELECT id FROM contacts WHERE lower_address(email) = lower_address(?) "
            "OR phone IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT 1",
            (key.strip(), json.dumps(phones)),
        ).fetchone()
        return None if row is None else str(row[0])

    def attributes(self, contact_id: str) -> dict[str, Any] | None:
        """The contact's own attributes (the columns of its import that are not fields), in
        the order stored; None for an unknown contact."""
        row = self.conn.execute(
            "SELECT attributes FROM contacts WHERE id = ?", (contact_id,)
        ).fetchone()
        if row is None:
            return None
        attributes: dict[str, Any] = json.loads(row[0] or "{}")
        return attributes

    def forgotten_at(self, contact_id: str) -> Instant | None:
        """When ``contact_id`` was erased (``regard contacts forget``), or None if never."""
        row = self.conn.execute(
            "SELECT forgotten_at FROM forgotten WHERE id_hash = ?",
            (self.store.pseudonyms.contact(contact_id),),
        ).fetchone()
        return None if row is None else Instant(row[0])

    def latest_deliveries(self, contact_id: str, limit: int) -> list[ContactDelivery]:
        """The contact's ``limit`` most recently decided deliveries, newest first."""
        rows = self.conn.execute(
            "SELECT id, campaign, occasion, channel, state, reason, created_at, sent_at "
            "FROM deliveries WHERE contact_id = ? ORDER BY created_at DESC, id LIMIT ?",
            (contact_id, limit),
        )
        return [
            ContactDelivery(
                id=r[0],
                campaign=r[1],
                occasion=r[2],
                channel=r[3],
                state=r[4],
                reason=r[5],
                created_at=Instant(r[6]),
                sent_at=None if r[7] is None else Instant(r[7]),
            )
            for r in rows
        ]

    def forget(self, contact_id: str) -> Erasure:
        """Erase the contact's personal data from the store, in one transaction: see
        :mod:`regard.store.erase` for what goes and what stays. Raises InputError for an id
        that is neither in the store nor forgotten before."""
        return erase_contact(self.store, contact_id)

    def locales(self) -> dict[str, str | None]:
        """Every contact's locale (None where it has none), by contact id."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT id, locale FROM contacts")}


class ContactDelivery(TypedDict):
    """One delivery of a contact, as ``regard contacts show`` lists it."""

    id: str
    campaign: str
    occasion: str
    channel: str
    state: str
    reason: str | None
    created_at: Instant  # when the tick decided it
    sent_at: Instant | None


@dataclass(frozen=True)
class ContactSample:
    """What a store tells ``regard check`` about real contacts: attribute names with an
    example value each, and how many contacts speak each locale."""

    attributes: dict[str, Any] = field(default_factory=dict)
    locales: dict[str, int] = field(default_factory=dict)


def read_contact_sample(
    path: Path | str, *, default_locale: str, limit: int = 200
) -> ContactSample:
    """Attribute examples (up to ``limit`` names) and locale counts of the store file at
    ``path``, contacts without a locale counted under ``default_locale``.

    Opens the file read-only: never creates, migrates or changes a store. An empty sample
    when there is no store file, or it cannot be read (not a store, an older schema).
    """
    try:
        conn = read_only(path)
    except READ_ERRORS:
        return ContactSample()
    if conn is None:
        return ContactSample()
    try:
        rows = conn.execute(
            "SELECT j.key, min(j.value) FROM contacts, json_each(contacts.attributes) AS j "
            "WHERE j.type NOT IN ('null') GROUP BY j.key LIMIT ?",
            (limit,),
        ).fetchall()
        attributes = {r[0]: json.loads(r[1]) if _is_json(r[1]) else r[1] for r in rows}
        rows = conn.execute(
            "SELECT coalesce(nullif(locale, ''), ?) AS l, count(*) FROM contacts GROUP BY l",
            (default_locale,),
        ).fetchall()
        return ContactSample(attributes=attributes, locales={r[0]: r[1] for r in rows})
    except READ_ERRORS:
        return ContactSample()
    finally:
        conn.close()


def _is_json(value: Any) -> bool:
    return isinstance(value, str) and value[:1] in ("[", "{")
