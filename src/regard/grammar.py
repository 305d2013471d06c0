"""The filter grammar of ``[audience]`` and ``[trigger] where``: the kinds of fields, the
operators, and what each accepts. :func:`validate_filter` lists every problem of a filter
with its key path, so a campaign file's errors can name the line.

It sits below the store because two evaluations share it: the store compiles a filter to
SQL (:mod:`regard.store.filters`), and :func:`regard.campaigns.audience.matches` evaluates
it in Python. Both read a value through :func:`normal_value` and a condition through
:func:`operations`, so they cannot drift apart.

A filter is a table of field → condition; every condition must hold:

- a scalar: the field equals it (for a list field such as ``tags``: contains it);
- a list: the field is one of them (a list field: contains at least one);
- a table of operators: ``min`` / ``max`` (inclusive bounds), ``not`` (none of these),
  ``any`` (one of these), ``all`` (a list field contains all of these), ``exists``.

Every field is seen as a set of *elements*: a plain field has one element when it has a
value and none when it is missing (NULL or empty text); a list has its items; an attribute
holding a JSON list has its items. A missing value therefore never equals anything, never
satisfies ``min``/``max``/``any``/``all``, and always satisfies ``not``.

Tags compare case-insensitively (``CASELESS``): the filter's values are lower-cased
(:func:`fold_wanted`) and so is each element, with the ASCII-only lowering SQLite's
``lower()`` does (:func:`fold_element`; the importer stores tags fully lower-cased already).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, tzinfo
from typing import Any, Literal

from regard.times import parse_date, parse_instant, to_epoch, zone

Kind = Literal["text", "number", "instant", "date", "bool", "list", "json"]
OPERATORS = ("min", "max", "not", "any", "all", "exists")

# A filter table (audience, trigger ``where``): key → scalar | list | {min,max,not,any,all,exists}.
Filter = dict[str, Any]


CONTACT_KINDS: dict[str, Kind] = {
    "id": "text", "email": "text", "phone": "text", "first_name": "text", "last_name": "text",
    "salutation": "text", "company": "text", "locale": "text", "timezone": "text",
    "country": "text", "street": "text", "address2": "text", "postal_code": "text", "city": "text",
    "birthday": "date", "signup_at": "instant", "consent_email": "bool", "consent_sms": "bool",
    "consent_card": "bool", "tags": "list", "first_order_at": "instant",
    "last_order_at": "instant", "order_count": "number", "total_spent": "number",
    "last_event_at": "instant", "created_at": "instant", "updated_at": "instant",
}  # fmt: skip
EVENT_KINDS: dict[str, Kind] = {
    "id": "text", "contact_id": "text", "type": "text", "occurred_at": "instant",
    "amount": "number", "currency": "text",
}  # fmt: skip


# list fields whose elements compare case-insensitively
CASELESS = frozenset({"tags"})
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_wanted(value: Any) -> Any:
    """A filter value of a caseless field, as compared: text lower-cased."""
    return value.lower() if isinstance(value, str) else value


def fold_element(value: Any) -> Any:
    """A stored element of a caseless field, as SQLite's ``lower()`` sees it (ASCII only)."""
    return value.translate(_ASCII_LOWER) if isinstance(value, str) else value


def contact_kind(name: str) -> Kind:
    """The kind of a contact field; any other name is an attribute."""
    return CONTACT_KINDS.get(name, "json")


def event_kind(name: str) -> Kind:
    """The kind of an event field; any other name is a property."""
    return EVENT_KINDS.get(name, "json")


Problem = tuple[tuple[str, ...], str]


def validate_filter(
    filter: Any, kind_of: Callable[[str], Kind] = contact_kind, *, known: Sequence[str] = ()
) -> list[Problem]:
    """Every problem of a filter as (key path inside the filter, reason); empty if valid.

    ``known`` are the field names a misspelt name is compared against: a name close to
    one of them is reported rather than read as an attribute that no contact has.
    """
    if not isinstance(filter, Mapping):
        return [((), f"expected a table of field = condition, not {_show(filter)}")]
    problems: list[Problem] = []
    for name, cond in filter.items():
        kind = kind_of(name)
        if kind == "json":
            guess = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8)
            if guess:
                problems.append(((name,), f"unknown field (did you mean {guess[0]!r}?)"))
                continue
            if '"' in name or "\\" in name:
                problems.append(((name,), "a field name cannot contain quotes or backslashes"))
                continue
        problems.extend(((name, *loc), reason) for loc, reason in _condition_problems(kind, cond))
    return problems


def _condition_problems(kind: Kind, cond: Any) -> list[Problem]:
    if isinstance(cond, Mapping):
        if not cond:
            return [((), "an empty table: give min, max, not, any, all or exists")]
        problems: list[Problem] = []
        for op, arg in cond.items():
            if op not in OPERATORS:
                guess = difflib.get_close_matches(str(op), OPERATORS, n=1, cutoff=0.5)
                hint = f"did you mean {guess[0]!r}? " if guess else ""
                problems.append(((op,), f"unknown operator ({hint}one of {', '.join(OPERATORS)})"))
                continue
            reason = _operator_problem(kind, op, arg)
            if reason:
                problems.append(((op,), reason))
        return problems
    if isinstance(cond, list):
        return [((), r) for r in [_list_problem(kind, cond)] if r]
    reason = _value_problem(kind, cond)
    return [((), reason)] if reason else []


def _operator_problem(kind: Kind, op: str, arg: Any) -> str | None:
    if op == "exists":
        return None if isinstance(arg, bool) else f"exists is true or false, not {_show(arg)}"
    if op in ("min", "max"):
        if kind in ("list", "bool"):
            what = "a list" if kind == "list" else "true or false"
            return f"{op} needs a number, date, time or text field; this field is {what}"
        if kind == "json" and isinstance(arg, bool):
            return f"{op} needs a number, date or text, not {_show(arg)}"
        return _value_problem(kind, arg)
    if op == "all" and kind not in ("list", "json"):
        return "all needs a list field such as tags"
    if op == "not" and not isinstance(arg, list):
        return _value_problem(kind, arg)
    if not isinstance(arg, list):
        return f'{op} takes a list, like {op} = ["a", "b"]'
    return _list_problem(kind, arg)


def _list_problem(kind: Kind, values: list[Any]) -> str | None:
    if not values:
        return "an empty list matches nothing"
    for i, value in enumerate(values):
        reason = _value_problem(kind, value)
        if reason:
            return f"item {i + 1}: {reason}"
    return None


_EXAMPLES = {
    "text": 'text, like "DE"',
    "list": 'text, like "vip"',
    "number": "a number, like 100",
    "instant": 'a date or time, like "2026-01-01" or "2026-01-01T09:00:00"',
    "date": 'a date, like "1990-05-17"',
    "bool": "true or false",
    "json": 'text, a number, true/false or a date, like "gold" or 3',
}


def _value_problem(kind: Kind, value: Any) -> str | None:
    expected = f"expected {_EXAMPLES[kind]}, not {_show(value)}"
    if isinstance(value, Mapping | list):
        return expected
    if kind in ("text", "list"):
        if not isinstance(value, str):
            return expected
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return expected
    elif kind == "bool":
        if not isinstance(value, bool):
            return expected
    elif kind == "instant":
        if isinstance(value, str):
            try:
                parse_instant(value, zone("UTC"))
            except ValueError as exc:
                return str(exc)
        elif not isinstance(value, date):
            return expected
    elif kind == "date":
        if isinstance(value, str):
            try:
                parse_date(value)
            except ValueError as exc:
                return str(exc)
        elif isinstance(value, datetime) or not isinstance(value, date):
            return expected
    elif isinstance(value, datetime) or not isinstance(value, str | int | float | date):
        return expected
    if isinstance(value, str) and not value:
        return "an empty text never matches; use exists = false for a missing value"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{_show(value)} is not a number to compare with"
    return None


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value) if isinstance(value, str) else str(value)


def check_filter(filter: Any, kind_of: Callable[[str], Kind] = contact_kind) -> None:
    """Raise ValueError listing the problems of ``filter`` (for callers without a file)."""
    problems = validate_filter(filter, kind_of)
    if problems:
        raise ValueError("; ".join(f"{'.'.join(loc)}: {reason}" for loc, reason in problems))


# -- values: one normal form for SQL parameters and Python comparisons ----------------------

Domain = Literal["text", "number", "instant", "date", "bool"]
_KIND_DOMAIN: dict[str, Domain] = {
    "text": "text", "list": "text", "number": "number", "instant": "instant",
    "date": "date", "bool": "bool",
}  # fmt: skip
# how a text element reads as true or false (attributes, event properties)
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")


def normal_value(kind: Kind, value: Any, tz: tzinfo) -> tuple[Domain, Any]:
    """A filter value as (domain, comparable): instants → epoch, dates → ISO, bools → 1/0.

    ``tz`` is the zone of naive dates and times (the config's timezone)."""
    if kind == "json":
        if isinstance(value, bool):
            return "bool", int(value)
        if isinstance(value, int | float):
            return "number", value
        if isinstance(value, date):
            return "text", value.isoformat()
        return "text", str(value)
    domain = _KIND_DOMAIN[kind]
    if domain == "instant":
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=tz)
            return domain, to_epoch(aware)
        if isinstance(value, date):
            return domain, to_epoch(parse_instant(value.isoformat(), tz))
        return domain, to_epoch(parse_instant(str(value), tz))
    if domain == "date":
        return domain, (value if isinstance(value, date) else parse_date(str(value))).isoformat()
    if domain == "bool":
        return domain, int(bool(value))
    return domain, value


def operations(cond: Any) -> list[tuple[str, Any]]:
    """A condition as (operator, argument) pairs: scalar → eq, list → any."""
    if isinstance(cond, Mapping):
        return [(op, arg if op in ("min", "max", "exists") or isinstance(arg, list) else [arg])
                for op, arg in cond.items()]  # fmt: skip
    if isinstance(cond, list):
        return [("any", cond)]
    return [("any", [cond])]


def as_zone(tz: tzinfo | str) -> tzinfo:
    """A zone given by name or as itself."""
    return zone(tz) if isinstance(tz, str) else tz
