"""Amounts in several currencies: every sum converts to the config's currency one way.

The config's ``[currencies]`` (``CHF = 1.04``: one CHF is worth 1.04 of the config's
currency) is kept in the table ``currency_rates``
(:func:`regard.store.derived.apply_rates`, which every command that has both the config
and the store calls once). Each SQL sum of amounts (``total_spent`` stored and as of T,
milestones, the report's revenue) writes the amount as :func:`converted`, so all of them
read the same rates. Events keep the amount and the currency they came with: a changed
rate applies to every amount from the next command on, old orders included, and the
stored derived facts are recomputed then, once.

An amount without a currency, or in the config's own currency, counts as it is. An event
in a currency without a rate is refused at import (``regard.store.rows``); one stored
before its rate was removed from the config counts as it is.
"""

from __future__ import annotations

import sqlite3


def converted(alias: str) -> str:
    """SQL: the amount of event row ``alias`` in the config's currency (NULL without one).

    Without any rate (a shop in one currency) it is the amount itself: the uncorrelated
    test is evaluated once per statement, and no row looks a rate up."""
    return (
        f"(CASE WHEN (SELECT 1 FROM currency_rates LIMIT 1) IS NULL THEN {alias}.amount "
        f"ELSE {alias}.amount * coalesce((SELECT r.rate FROM currency_rates r "
        f"WHERE r.currency = {alias}.currency), 1) END)"
    )


def stored_rates(conn: sqlite3.Connection) -> dict[str, float]:
    """The rates the store converts with now: currency → worth of one unit."""
    rows = conn.execute("SELECT currency, rate FROM currency_rates")
    return {str(code): float(rate) for code, rate in rows}
