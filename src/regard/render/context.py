"""What a template sees: ``contact``, ``event``, ``occasion``, ``campaign``, ``sender``, ``now``.

Mappings are wrapped in :class:`Record` so that ``{{ contact.nickname }}`` for a field that
does not exist says "contact has no field 'nickname'", and a field without a value (NULL)
is :class:`~regard.render.environment.Empty`: false in ``{% if %}``, an error when printed.
``event.items`` is the event's ``items`` property (a Record has no dict methods in the way).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from jinja2 import StrictUndefined

from regard.store.contacts import ContactRow
from regard.times import from_epoch


class Missing(StrictUndefined):
    """A name or field that does not exist: printing, testing or iterating it is an error."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        hint = self._undefined_hint
        if hint:
            return hint
        obj = self._undefined_obj
        if isinstance(obj, Record):
            return f"{obj._label} has no field {self._undefined_name!r}"
        return super()._undefined_message


class Empty(Missing):
    """A field that exists but has no value for this contact (NULL in the store).

    It is false in ``{% if %}``, empty in loops and takes ``| default(...)``, but printing it
    is an error: a message must never read "Hallo ,".
    """

    __slots__ = ()

    def __bool__(self) -> bool:  # type: ignore[override]
        return False

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return iter(())

    def __len__(self) -> int:  # type: ignore[override]
        return 0

    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return other is None or isinstance(other, Empty)

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return not self.__eq__(other)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(None)

    def __contains__(self, item: object) -> bool:  # type: ignore[override]
        return False


class Record:
    """A read-only mapping for templates, named after where it came from (``contact``).

    Its own attributes are private, so templates see only the data's fields."""

    __slots__ = ("_data", "_label")

    def __init__(self, label: str, data: Mapping[str, Any]) -> None:
        self._label = label
        self._data = data

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        # most fields are plain values (or already wrapped): no label to build for them
        if type(value) in _DIRECT or (value is not None and not isinstance(value, _CONTAINERS)):
            return value
        return wrap(f"{self._label}.{key}", value)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<{self._label}>"

    __str__ = __repr__


_PLAIN = frozenset({str, int, float, bool})
# what a field is returned as it is without asking further (Empty and Record: wrapped already)
_DIRECT = frozenset({str, int, float, bool, datetime, Empty, Record})
_CONTAINERS = (Mapping, list, tuple)


def wrap(label: str, value: Any) -> Any:
    """A value as templates see it: None → Empty, mappings → Record, lists item by item."""
    if value is None:
        return Empty(hint=f"{label} is empty here (test it with {{% if {label} %}})")
    if isinstance(value, Record):
        return value
    if isinstance(value, Mapping):
        return Record(label, value)
    if isinstance(value, list | tuple):
        return [wrap(f"{label}[{i}]", v) for i, v in enumerate(value)]
    return value


def unwrap(value: Any) -> Any:
    """The plain data behind a Record (filters work on plain values)."""
    return value._data if isinstance(value, Record) else value


EVENT_INSTANTS = ("occurred_at", "imported_at", "voided_at")


class Amount(float):
    """An event's amount that knows its currency, so ``{{ event.amount | money }}`` shows a
    USD order in dollars: the config's currency is only for amounts without their own."""

    __slots__ = ("currency",)
    currency: str

    def __new__(cls, value: float, currency: str) -> Amount:
        amount = super().__new__(cls, value)
        amount.currency = currency
        return amount


def event_view(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event with its properties at the top (its own fields win), ``properties`` kept,
    and instants given as epoch seconds turned into datetimes."""
    properties = event.get("properties")
    if isinstance(properties, str):
        import json

        properties = json.loads(properties or "{}")
    view: dict[str, Any] = dict(properties) if isinstance(properties, Mapping) else {}
    view.update({k: v for k, v in event.items() if k != "properties"})
    view["properties"] = dict(properties) if isinstance(properties, Mapping) else {}
    for key in EVENT_INSTANTS:
        if isinstance(view.get(key), int):
            view[key] = from_epoch(view[key])
    amount, currency = view.get("amount"), view.get("currency")
    if isinstance(amount, int | float) and not isinstance(amount, bool) and currency:
        view["amount"] = Amount(amount, str(currency))
    return view


_CONTACT_INSTANTS = ("signup_at", "first_order_at", "last_order_at", "last_event_at")


def contact_view(contact: Mapping[str, Any]) -> Mapping[str, Any]:
    """A contact as templates see it (instants as datetimes)."""
    if isinstance(contact, ContactRow):
        if contact.has_columns(_CONTACT_INSTANTS):
            # a tick's contact row: its instants are datetimes already, and each field is
            # converted when the template reads it (a message reads a dozen of them)
            return contact
        contact = contact.whole()
    view = dict(contact)
    for key in _CONTACT_INSTANTS:
        if isinstance(view.get(key), int):
            view[key] = from_epoch(view[key])
    return view


def no_event(trigger: str) -> Empty:
    """What ``event`` is for campaigns whose trigger has no event."""
    return Empty(hint=f"there is no event for a campaign with trigger {trigger}")


__all__ = [
    "Amount",
    "Empty",
    "Missing",
    "Record",
    "contact_view",
    "event_view",
    "no_event",
    "unwrap",
    "wrap",
]
