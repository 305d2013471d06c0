"""The filter grammar (:mod:`regard.grammar`) compiled to parameterised SQL.

:func:`compile_filter` turns a filter into an SQL condition with ``?`` placeholders; no value
is ever pasted into the SQL. :func:`regard.campaigns.audience.matches` evaluates the same
grammar in Python on a mapping; the two agree (the tests check it on random contacts).

:func:`audience_condition` is a campaign's ``[audience]`` on contacts ``c`` with the derived
facts as of a tick's instant; :func:`event_condition` a trigger's ``where`` on an event row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from regard.grammar import (
    CASELESS,
    FALSE_WORDS,
    TRUE_WORDS,
    Domain,
    Kind,
    as_zone,
    check_filter,
    contact_kind,
    event_kind,
    fold_wanted,
    normal_value,
    operations,
)
from regard.store.contacts import DERIVED_FACTS
from regard.store.currencies import converted
from regard.times import Instant

__all__ = [
    "Column",
    "audience_condition",
    "compile_filter",
    "contact_column",
    "event_column",
    "event_condition",
    "fact_sql",
    "json_path",
    "order_facts",
]


@dataclass(frozen=True)
class Column:
    """How a filter reaches one field in SQL.

    ``sql`` is an expression of the field's value; ``kind`` says how values compare. For
    ``kind="json"`` (attributes, event properties) ``sql`` is the JSON document and ``path``
    the JSON path of the value inside it (bound as a parameter, never pasted). ``caseless``
    elements compare lower-cased (tags).
    """

    sql: str
    kind: Kind
    path: str | None = None
    caseless: bool = False


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
    return Column(f"{alias}.{name}", kind, caseless=name in CASELESS)


def event_column(name: str, alias: str = "e") -> Column:
    """The stored column of event field ``name``; properties via ``json_extract``."""
    kind = event_kind(name)
    if kind == "json":
        return Column(f"{alias}.properties", "json", json_path(name))
    return Column(f"{alias}.{name}", kind)


# -- derived facts as of an instant ---------------------------------------------------------


def visible(alias: str, at: Instant) -> str:
    """SQL: event ``alias`` exists as of ``at`` as far as its voiding goes — it was not
    voided, or voided only after ``at`` (a cancelled or refunded order vanishes from every
    instant at or after its ``voided_at``). ``occurred_at <= at`` is the caller's part."""
    return f"({alias}.voided_at IS NULL OR {alias}.voided_at > {int(at)})"


def _seen(at: Instant) -> str:
    """SQL: event ``x`` had occurred by ``at`` and was not voided by then."""
    return f"x.occurred_at <= {at} AND {visible('x', at)}"


def fact_sql(name: str, at: Instant, contact: str = "c.id") -> str:
    """The SQL expression for derived fact ``name`` of ``contact`` as of ``at``.

    A tick at T sees the store as of T: ``order_count``, ``total_spent``, ``first_order_at``,
    ``last_order_at`` and ``last_event_at`` are computed from the events that had occurred by
    T and were not voided by T (through the (contact, type, time) index), never read from
    the stored "now" facts.
    ``at`` is an integer the engine computed, so it is written into the SQL as a literal
    (audience filters bring their own positional parameters).
    """
    at = Instant(int(at))
    seen = _seen(at)
    orders = f"FROM events x WHERE x.contact_id = {contact} AND x.type = 'order' AND {seen}"
    expressions = {
        "order_count": f"(SELECT count(*) {orders})",
        "total_spent": f"(SELECT round(coalesce(sum({converted('x')}), 0), 2) {orders})",
        "first_order_at": f"(SELECT min(x.occurred_at) {orders})",
        "last_order_at": f"(SELECT max(x.occurred_at) {orders})",
        "last_event_at": (
            f"(SELECT max(x.occurred_at) FROM events x WHERE x.contact_id = {contact} AND {seen})"
        ),
    }
    return expressions[name]


def order_facts(at: Instant, contacts: str, alias: str = "f") -> tuple[str, dict[str, str]]:
    """The order facts as of ``at`` of the contacts that the SQL ``contacts`` (a SELECT of
    contact ids) names, in one grouped pass over their orders rather than four correlated
    subqueries per contact: a subquery to LEFT JOIN as ``alias`` ON ``alias``.contact_id,
    and the expression of each of the four facts over it (a contact without orders as of
    ``at`` has no row: the same values as :func:`fact_sql` gives it)."""
    seen = _seen(Instant(int(at)))
    sql = (
        "(SELECT x.contact_id AS contact_id, count(*) AS order_count,"
        f" round(coalesce(sum({converted('x')}), 0), 2) AS total_spent,"
        " min(x.occurred_at) AS first_order_at, max(x.occurred_at) AS last_order_at"
        f" FROM events x WHERE x.contact_id IN ({contacts}) AND x.type = 'order' AND {seen}"
        " GROUP BY x.contact_id)"
    )
    return sql, {
        "order_count": f"coalesce({alias}.order_count, 0)",
        "total_spent": f"coalesce({alias}.total_spent, round(0, 2))",
        "first_order_at": f"{alias}.first_order_at",
        "last_order_at": f"{alias}.last_order_at",
    }


def audience_condition(
    audience: Mapping[str, Any],
    at: Instant,
    tz: tzinfo | str,
    facts: Mapping[str, str] | None = None,
) -> tuple[str, list[Any]]:
    """A campaign's ``[audience]`` as an SQL condition on contacts ``c``, its derived facts
    as of ``at`` (those in ``facts`` as the SQL given there, e.g. :func:`order_facts`'s).
    An empty audience is everyone."""
    if not audience:
        return "1 = 1", []
    given = facts or {}

    def resolve(name: str) -> Column:
        column = contact_column(name, "c")
        if name in DERIVED_FACTS:
            return Column(given.get(name) or fact_sql(name, at), column.kind)
        return column

    return compile_filter(audience, resolve, tz=tz)


def event_condition(
    where: Mapping[str, Any], alias: str, tz: tzinfo | str
) -> tuple[str, list[Any]]:
    """A trigger's ``where`` (the grammar on the event's ``amount``, ``currency`` and
    properties) as an SQL condition on the event row ``alias``."""
    return compile_filter(where, lambda name: event_column(name, alias), tz=tz)


# -- SQL ------------------------------------------------------------------------------------


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
            f"(CASE WHEN {type_} IN ('integer', 'real') THEN CAST({value} AS REAL) "
            f"WHEN {type_} = 'text' AND json_valid({value}) "
            f"AND json_type({value}) IN ('integer', 'real') THEN CAST({value} AS REAL) END)"
        )
    if domain == "bool":
        words = " ".join(f"WHEN '{w}' THEN 1" for w in TRUE_WORDS) + " "
        words += " ".join(f"WHEN '{w}' THEN 0" for w in FALSE_WORDS)
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
    contacts; :func:`audience_condition` passes one that computes derived facts as of the
    tick). ``tz`` is the zone of naive dates and times in the filter (the config's
    timezone). An empty filter is ``1 = 1`` (everyone). Raises ValueError for an invalid filter.
    """
    kinds = {name: resolve(name).kind for name in filter}
    check_filter(filter, lambda name: kinds[name])
    zone_ = as_zone(tz)
    out = _Sql()
    first = True
    for name, cond in filter.items():
        column = resolve(name)
        for op, arg in operations(cond):
            if not first:
                out.add(" AND ")
            first = False
            _operator_sql(out, column, op, arg, zone_)
    if first:
        return "1 = 1", []
    return out.text(), out.params


def _operator_sql(out: _Sql, column: Column, op: str, arg: Any, tz: tzinfo) -> None:
    if op == "exists":
        out.add("" if arg else "NOT ")
        _some_element(out, column, lambda o, _v, _t: o.add("1 = 1"))
        return
    if op in ("min", "max"):
        domain, value = normal_value(column.kind, arg, tz)
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
            out.add(f"coalesce({_element_sql(domain, column.sql, None)} {sign} ?, 1 = 0)", value)
        return
    values = [normal_value(column.kind, v, tz) for v in arg]
    if column.caseless:
        values = [(domain, fold_wanted(v)) for domain, v in values]
    if op == "all":
        out.add("(")
        for i, one in enumerate(values):
            if i:
                out.add(" AND ")
            _some_element(out, column, _equals_one_of([one], column.caseless))
        out.add(")")
        return
    out.add("NOT " if op == "not" else "")
    _some_element(out, column, _equals_one_of(values, column.caseless))


ElementTest = Callable[[_Sql, str, str | None], None]


def _equals_one_of(values: list[tuple[Domain, Any]], caseless: bool = False) -> ElementTest:
    def test(out: _Sql, value: str, type_: str | None) -> None:
        if caseless:
            value = f"lower({value})"
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
        out.add(", 1 = 0)")
