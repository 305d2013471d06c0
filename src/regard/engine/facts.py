"""Derived facts as of an instant, as SQL over the events of one contact.

A tick at T sees the store as of T: ``order_count``, ``total_spent``, ``first_order_at``,
``last_order_at`` and ``last_event_at`` are computed from the events that had occurred by
T (through the (contact, type, time) index), never read from the stored "now" facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.store.contacts import DERIVED_FACTS


def fact_sql(name: str, at: int, contact: str = "c.id") -> str:
    """The SQL expression for derived fact ``name`` of ``contact`` as of ``at``.

    ``at`` is an integer the engine computed, so it is written into the SQL as a literal
    (audience filters bring their own positional parameters).
    """
    at = int(at)
    orders = f"FROM events x WHERE x.contact_id = {contact} AND x.type = 'order' AND x.occurred_at <= {at}"
    expressions = {
        "order_count": f"(SELECT count(*) {orders})",
        "total_spent": f"(SELECT round(coalesce(sum(x.amount), 0), 2) {orders})",
        "first_order_at": f"(SELECT min(x.occurred_at) {orders})",
        "last_order_at": f"(SELECT max(x.occurred_at) {orders})",
        "last_event_at": (
            f"(SELECT max(x.occurred_at) FROM events x"
            f" WHERE x.contact_id = {contact} AND x.occurred_at <= {at})"
        ),
    }
    return expressions[name]


def facts_select(at: int, contact: str = "c.id") -> str:
    """``<expr> AS asof_<fact>, …`` for every derived fact."""
    return ", ".join(f"{fact_sql(name, at, contact)} AS asof_{name}" for name in DERIVED_FACTS)


def audience_filter(audience: Mapping[str, Any], at: int, tz: str) -> tuple[str, list[Any]]:
    """The campaign's ``[audience]`` as an SQL condition on contacts ``c``, its derived
    facts as of ``at``. An empty audience is everyone."""
    if not audience:
        return "1", []
    from regard.campaigns.audience import Column, compile_filter, contact_column

    def resolve(name: str) -> Column:
        column = contact_column(name, "c")
        if name in DERIVED_FACTS:
            return Column(fact_sql(name, at), column.kind)
        return column

    condition: tuple[str, list[Any]] = compile_filter(audience, resolve, tz=tz)
    return condition
