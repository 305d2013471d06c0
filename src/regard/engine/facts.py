"""Derived facts as of an instant, as SQL over the events of one contact: compiled by the
store (:mod:`regard.store.filters`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.store import filters
from regard.times import Instant


def facts_select(at: int, contact: str = "c.id") -> str:
    """``<expr> AS asof_<fact>, …`` for every derived fact."""
    return filters.facts_select(Instant(at), contact)


def audience_filter(audience: Mapping[str, Any], at: int, tz: str) -> tuple[str, list[Any]]:
    """The campaign's ``[audience]`` as an SQL condition on contacts ``c``, its derived
    facts as of ``at``. An empty audience is everyone."""
    return filters.audience_condition(audience, Instant(at), tz)
