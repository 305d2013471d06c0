"""The filter grammar of ``[audience]`` and ``[trigger] where``: the kinds of fields, the
operators, and what each accepts. :func:`validate_filter` lists every problem of a filter
with its key path, so a campaign file's errors can name the line.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal

from regard.times import parse_date, parse_instant, zone

Kind = Literal["text", "number", "instant", "date", "bool", "list", "json"]
OPERATORS = ("min", "max", "not", "any", "all", "exists")


CONTACT_KINDS: dict[str, Kind] = {
    "id": "text", "email": "text", "phone": "text", "first_name": "text", "last_name": "text",
    "salutation": "text", "company": "text", "locale": "text", "timezone": "text",
    "country": "text", "street": "text", "postal_code": "text", "city": "text",
    "birthday": "date", "signup_at": "instant", "consent_email": "bool", "consent_sms": "bool",
    "consent_card": "bool", "tags": "list", "first_order_at": "instant",
    "last_order_at": "instant", "order_count": "number", "total_spent": "number",
    "last_event_at": "instant", "created_at": "instant", "updated_at": "instant",
}  # fmt: skip
EVENT_KINDS: dict[str, Kind] = {
    "id": "text", "contact_id": "text", "type": "text", "occurred_at": "instant",
    "amount": "number", "currency": "text",
}  # fmt: skip


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
