"""The filter grammar of ``[audience]`` and ``[trigger] where``, compiled to parameterised SQL.

A filter is a table of field → condition; every condition must hold:

- a scalar: the field equals it (for a list field such as ``tags``: contains it);
- a list: the field is one of them (a list field: contains at least one);
- a table of operators: ``min`` / ``max`` (inclusive bounds), ``not`` (none of these),
  ``any`` (one of these), ``all`` (a list field contains all of these), ``exists``.

Every field is seen as a set of *elements*: a plain field has one element when it has a
value and none when it is missing (NULL or empty text); a list has its items; an attribute
holding a JSON list has its items. A missing value therefore never equals anything, never
satisfies ``min``/``max``/``any``/``all``, and always satisfies ``not``.

:func:`compile_filter` turns a filter into an SQL condition with ``?`` placeholders; no value
is ever pasted into the SQL. :func:`matches` evaluates the same grammar in Python on a
mapping; the two agree (the tests check it on random contacts).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any, Literal

from regard.campaigns.grammar import (
    CONTACT_KINDS,
    EVENT_KINDS,
    OPERATORS,
    Kind,
    check_filter,
    contact_kind,
    event_kind,
    validate_filter,
)
from regard.times import parse_date, parse_instant, to_epoch, zone

__all__ = [
    "CONTACT_KINDS",
    "EVENT_KINDS",
    "OPERATORS",
    "Column",
    "Kind",
    "compile_filter",
    "contact_column",
    "contact_kind",
    "event_column",
    "event_kind",
    "json_path",
    "matches",
    "validate_filter",
]


@dataclass(frozen=True)
class Column:
    """How a filter reaches one field in SQL.

    ``sql`` is an expression of the field's value; ``kind`` says how values compare. For
    ``kind="json"`` (attributes, event properties) ``sql`` is the JSON document and ``path``
    the JSON path of the value inside it (bound as a parameter, never pasted).
    """

    sql: str
    kind: Kind
    path: str | None = None


def json_path(name: str) -> str:
    """The JSON path of a top-level key: ``$."name"``."""
    if '"' in name or "\\" in name:
        raise ValueError(f"{name!r}: a field name cannot contain quotes or backslashes")
    return f'$."{name}"'


def contact_column(name: str, alias: str = "c") -> Column:
    """The stored column of contact field ``name`` in table alias ``alias``; attributes via
    ``json_extract``. Derived facts are the stored ones (as of the last import)."""
    kind = contact_kind(name)
    if kind == "json":
        return Column(f"{alias}.attributes", "json", json_path(name))
    return Column(f"{alias}.{name}", kind)


def event_column(name: str, alias: str = "e") -> Column:
    """The stored column of event field ``name``; properties via ``json_extract``."""
    kind = event_kind(name)
    if kind == "json":
        return Column(f"{alias}.properties", "json", json_path(name))
    return Column(f"{alias}.{name}", kind)


# -- values: one normal form for SQL parameters and Python comparisons ----------------------

Domain = Literal["text", "number", "instant", "date", "bool"]
_KIND_DOMAIN: dict[str, Domain] = {
    "text": "text", "list": "text", "number": "number", "instant": "instant",
    "date": "date", "bool": "bool",
}  # fmt: skip


def _normal(kind: Kind, value: Any, tz: tzinfo) -> tuple[Domain, Any]:
    """A filter value as (domain, comparable): instants → epoch, dates → ISO, bools → 1/0."""
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


def _ops(cond: Any) -> list[tuple[str, Any]]:
    """A condition as (operator, argument) pairs: scalar → eq, list → any."""
    if isinstance(cond, Mapping):
        return [(op, arg if op in ("min", "max", "exists") or isinstance(arg, list) else [arg])
                for op, arg in cond.items()]  # fmt: skip
    if isinstance(cond, list):
        return [("any", cond)]
    return [("any", [cond])]


def _tz(tz: tzinfo | str) -> tzinfo:
    return zone(tz) if isinstance(tz, str) else tz


# -- SQL ------------------------------------------------------------------------------------

_TRUE_WORDS = ("true", "yes", "1")
_FALSE_WORDS = ("false", "no", "0")


def _element_sql(domain: Domain, value: str, type_: str | None) -> str:
    """The element ``value`` coerced into ``domain`` (NULL when it is not of that domain).

    ``type_`` is the JSON type column for elements of lists and attributes, None for plain
    columns (whose type is their kind)."""
    if type_ is None:
        return f"NULLIF({value}, '')" if domain == "text" else value
    if domain == "text":
        return f"(CASE WHEN {type_} = 'text' AND {value} <> '' THEN {value} END)"
    if domain == "number":
        return (
            f"(CASE WHEN {type_} IN ('integer', 'real') THEN {value} "
            f"WHEN {type_} = 'text' AND json_valid({value}) "
            f"AND json_type({value}) IN ('integer', 'real') THEN CAST({value} AS REAL) END)"
        )
    if domain == "bool":
        words = " ".join(f"WHEN '{w}' THEN 1" for w in _TRUE_WORDS) + " "
        words += " ".join(f"WHEN '{w}' THEN 0" for w in _FALSE_WORDS)
        return (
            f"(CASE WHEN {type_} = 'true' THEN 1 WHEN {type_} = 'false' THEN 0 "
            f"WHEN {type_} = 'text' THEN (CASE lower({value}) {words} END) END)"
        )
    raise ValueError(f"no {domain} values in JSON")  # instants and dates are typed columns


class _Sql:
    """SQL text and its parameters, built in order so placeholders and values line up."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, text: str, *params: Any) -> None:
        self.parts.append(text)
        self.params.extend(params)

    def text(self) -> str:
        return "".join(self.parts)


def compile_filter(
    filter: Mapping[str, Any],
    resolve: Callable[[str], Column] = contact_column,
    *,
    tz: tzinfo | str = "UTC",
) -> tuple[str, list[Any]]:
    """An SQL condition for ``filter`` and its parameters, in placeholder order.

    ``resolve`` maps a field name to its :class:`Column` (:func:`contact_column` for stored
    contacts; the engine passes one that computes derived facts as of the tick). ``tz`` is
    the zone of naive dates and times in the filter (the config's timezone). An empty filter
    is ``1`` (everyone). Raises ValueError for an invalid filter.
    """
    kinds = {name: resolve(name).kind for name in filter}
    check_filter(filter, lambda name: kinds[name])
    zone_ = _tz(tz)
    out = _Sql()
    first = True
    for name, cond in filter.items():
        column = resolve(name)
        for op, arg in _ops(cond):
            if not first:
                out.add(" AND ")
            first = False
            _operator_sql(out, column, op, arg, zone_)
    if first:
        return "1", []
    return out.text(), out.params


def _operator_sql(out: _Sql, column: Column, op: str, arg: Any, tz: tzinfo) -> None:
    if op == "exists":
        out.add("" if arg else "NOT ")
        _some_element(out, column, lambda o, _v, _t: o.add("1"))
        return
    if op in ("min", "max"):
        domain, value = _normal(column.kind, arg, tz)
        sign = ">=" if op == "min" else "<="
        if column.kind == "json":
            out.add(
                f"EXISTS (SELECT 1 FROM (SELECT json_extract({column.sql}, ?) AS value, "
                f"json_type({column.sql}, ?) AS type) AS j WHERE j.type NOT IN ('array', 'object') "
                f"AND {_element_sql(domain, 'j.value', 'j.type')} {sign} ?)",
                column.path,
                column.path,
                value,
            )
        else:
            out.add(f"coalesce({_element_sql(domain, column.sql, None)} {sign} ?, 0)", value)
        return
    values = [_normal(column.kind, v, tz) for v in arg]
    if op == "all":
        out.add("(")
        for i, one in enumerate(values):
            if i:
                out.add(" AND ")
            _some_element(out, column, _equals_one_of([one]))
        out.add(")")
        return
    out.add("NOT " if op == "not" else "")
    _some_element(out, column, _equals_one_of(values))


ElementTest = Callable[[_Sql, str, str | None], None]


def _equals_one_of(values: list[tuple[Domain, Any]]) -> ElementTest:
    def test(out: _Sql, value: str, type_: str | None) -> None:
        by_domain: dict[Domain, list[Any]] = {}
        for domain, v in values:
            by_domain.setdefault(domain, []).append(v)
        out.add("(")
        for i, (domain, group) in enumerate(by_domain.items()):
            marks = ", ".join("?" for _ in group)
            out.add(f"{' OR ' if i else ''}{_element_sql(domain, value, type_)} IN ({marks})")
            out.params.extend(group)
        out.add(")")

    return test


def _some_element(out: _Sql, column: Column, test: ElementTest) -> None:
    """``EXISTS`` an element of the column's value for which ``test`` holds (always a
    true/false value, never NULL, so ``NOT`` of it is safe)."""
    if column.kind == "json":
        out.add(f"EXISTS (SELECT 1 FROM json_each({column.sql}, ?) AS j WHERE ", column.path)
        out.add("j.type <> 'null' AND NOT (j.type = 'text' AND j.value = '') AND ")
        test(out, "j.value", "j.type")
        out.add(")")
    elif column.kind == "list":
        out.add(f"EXISTS (SELECT 1 FROM json_each(coalesce({column.sql}, '[]')) AS j WHERE ")
        out.add("j.type <> 'null' AND NOT (j.type = 'text' AND j.value = '') AND ")
        test(out, "j.value", "j.type")
        out.add(")")
    else:
        present = f"{column.sql} IS NOT NULL"
        if column.kind == "text":
            present += f" AND {column.sql} <> ''"
        out.add(f"coalesce(({present}) AND ")
        test(out, column.sql, None)
        out.add(", 0)")


# -- Python ---------------------------------------------------------------------------------

_JSON_NUMBER = re.compile(
    r"[ \t\n\r]*-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[ \t\n\r]*"
)


def _element_value(domain: Domain, value: Any, typed: bool) -> Any:
    """Python twin of :func:`_element_sql`: ``typed`` for plain columns of a known kind."""
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
            return 1 if word in _TRUE_WORDS else 0 if word in _FALSE_WORDS else None
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
    """Whether ``record`` (a contact from ``store.contacts.get``, or an event with its properties)
    passes ``filter``: the Python evaluation of what :func:`compile_filter` asks SQLite."""
    check_filter(filter, kind_of)
    zone_ = _tz(tz)
    for name, cond in filter.items():
        kind = kind_of(name)
        typed = kind not in ("list", "json")
        elements = _elements(kind, record, name)
        for op, arg in _ops(cond):
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
        domain, bound = _normal(kind, arg, tz)
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

    wanted = [_normal(kind, v, tz) for v in arg]
    if op == "all":
        return all(contains(w) for w in wanted)
    found = any(contains(w) for w in wanted)
    return not found if op == "not" else found
