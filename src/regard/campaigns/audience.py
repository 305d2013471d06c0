"""The filter grammar of ``[audience]`` and ``[trigger] where``, evaluated in Python.

The grammar itself (kinds, operators, what each accepts) is :mod:`regard.grammar`; the
store compiles it to SQL (:func:`regard.store.filters.compile_filter`), and :func:`matches`
is its Python twin on a mapping: the two agree (the tests check it on random contacts).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from regard.grammar import (
    CASELESS,
    CONTACT_KINDS,
    EVENT_KINDS,
    FALSE_WORDS,
    OPERATORS,
    TRUE_WORDS,
    Domain,
    Kind,
    as_zone,
    check_filter,
    contact_kind,
    event_kind,
    fold_element,
    fold_wanted,
    normal_value,
    operations,
    validate_filter,
)
from regard.times import to_epoch, zone

__all__ = [
    "CONTACT_KINDS",
    "EVENT_KINDS",
    "OPERATORS",
    "Kind",
    "contact_kind",
    "event_kind",
    "matches",
    "validate_filter",
]


# -- Python ---------------------------------------------------------------------------------

_JSON_NUMBER = re.compile(
    r"[ \t\n\r]*-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[ \t\n\r]*"
)


def _element_value(domain: Domain, value: Any, typed: bool) -> Any:
    """Python twin of the store's SQL coercion of an element: ``typed`` for plain columns of a known kind."""
    if value is None:
        return None
    if domain == "text":
        return value if isinstance(value, str) and value != "" else None
    if domain == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return value
        if isinstance(value, Decimal):
            return float(value)
        if not typed and isinstance(value, str) and _JSON_NUMBER.fullmatch(value):
            return float(value)
        return None
    if domain == "bool":
        if isinstance(value, bool):
            return int(value)
        if typed and isinstance(value, int):
            return value
        if not typed and isinstance(value, str) and value.isascii():
            word = value.lower()
            return 1 if word in TRUE_WORDS else 0 if word in FALSE_WORDS else None
        return None
    if domain == "instant":
        if isinstance(value, datetime):
            return to_epoch(value if value.tzinfo else value.replace(tzinfo=zone("UTC")))
        return value if isinstance(value, int) else None
    if isinstance(value, date):
        return value.isoformat()
    return value if isinstance(value, str) else None


def _lookup(record: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    if name in record:
        return True, record[name]
    for nested in ("attributes", "properties"):
        inner = record.get(nested)
        if isinstance(inner, Mapping) and name in inner:
            return True, inner[name]
    return False, None


def _elements(kind: Kind, record: Mapping[str, Any], name: str) -> list[Any]:
    found, value = _lookup(record, name)
    if not found or value is None:
        return []
    if kind in ("list", "json") and isinstance(value, list | Mapping):
        items = list(value.values()) if isinstance(value, Mapping) else list(value)
    else:
        items = [value]
    return [v for v in items if v is not None and v != ""]


def matches(
    filter: Mapping[str, Any],
    record: Mapping[str, Any],
    *,
    kind_of: Callable[[str], Kind] = contact_kind,
    tz: tzinfo | str = "UTC",
) -> bool:
    """Whether ``record`` (a contact from ``store.contacts.get``, or an event with its
    properties) passes ``filter``: the Python evaluation of what
    :func:`regard.store.filters.compile_filter` asks SQLite."""
    check_filter(filter, kind_of)
    zone_ = as_zone(tz)
    for name, cond in filter.items():
        kind = kind_of(name)
        typed = kind not in ("list", "json")
        elements = _elements(kind, record, name)
        if kind == "list" and name in CASELESS:
            elements = [fold_element(e) for e in elements]
        for op, arg in operations(cond):
            if not _holds(kind, typed, elements, record, name, op, arg, zone_):
                return False
    return True


def _holds(
    kind: Kind,
    typed: bool,
    elements: list[Any],
    record: Mapping[str, Any],
    name: str,
    op: str,
    arg: Any,
    tz: tzinfo,
) -> bool:
    if op == "exists":
        return bool(elements) == bool(arg)
    if op in ("min", "max"):
        domain, bound = normal_value(kind, arg, tz)
        _, raw = _lookup(record, name)
        if isinstance(raw, list | Mapping) or not elements:
            return False
        value = _element_value(domain, raw, typed)
        if value is None:
            return False
        return bool(value >= bound if op == "min" else value <= bound)

    def contains(wanted: tuple[Domain, Any]) -> bool:
        domain, target = wanted
        return any(_element_value(domain, e, typed) == target for e in elements)

    wanted = [normal_value(kind, v, tz) for v in arg]
    if kind == "list" and name in CASELESS:
        wanted = [(domain, fold_wanted(v)) for domain, v in wanted]
    if op == "all":
        return all(contains(w) for w in wanted)
    found = any(contains(w) for w in wanted)
    return not found if op == "not" else found
