"""The shop's retention figures over a period [since, until], from orders and NPS answers.

Definitions (also in ``regard report --help`` and docs/report.md). A customer is *active*
at an instant t when they ordered within the churn horizon before t.

- repeat purchase rate: customers with at least two orders in the period / customers
  with at least one order in the period.
- churn rate: of the customers active at the start, the share no longer active at the
  end (no order within the horizon before the end).
- customer retention rate: (E − N) / S, with S the customers active at the start, E those
  active at the end and N those of E whose first order ever fell in the period (new).
- average order value: order total / orders with an amount, in the period.
- purchase frequency: orders / customers who ordered, in the period.
- customer value: average order value × purchase frequency; a simple customer lifetime
  value: customer value / churn rate (a customer stays 1 / churn rate periods on average).
- NPS: the latest answer (``nps`` event, amount 0–10) of each contact in the period;
  % promoters (9–10) minus % detractors (0–6), from −100 to 100.
- retention curve by cohort: customers grouped by the calendar month (UTC) of their first
  order; for month k after it, the share of the cohort who ordered in that month.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class Retention:
    customers: int
    repeat_customers: int
    orders: int
    revenue: float
    repeat_purchase_rate: float | None
    customers_at_start: int
    customers_at_end: int
    new_customers: int
    churned: int
    churn_rate: float | None
    retention_rate: float | None
    average_order_value: float | None
    purchase_frequency: float | None
    customer_value: float | None
    customer_lifetime_value: float | None
    nps_answers: int
    promoters: int
    detractors: int
    nps: float | None
    churn_horizon_days: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def retention_figures(conn: sqlite3.Connection, since: int, until: int, horizon: int) -> Retention:
    """The figures for orders and answers in [since, until]; ``horizon`` in seconds."""
    params = {"since": since, "until": until, "horizon": horizon}
    customers, repeat, orders, priced, revenue = conn.execute(
        """
        WITH per AS (
            SELECT contact_id, count(*) AS n, count(amount) AS priced, sum(amount) AS total
            FROM events
            WHERE type = 'order' AND occurred_at BETWEEN :since AND :until
            GROUP BY contact_id
        )
        SELECT count(*), count(CASE WHEN n >= 2 THEN 1 END), coalesce(sum(n), 0),
               coalesce(sum(priced), 0), coalesce(sum(total), 0)
        FROM per
        """,
        params,
    ).fetchone()
    start, end, new, churned = conn.execute(
        """
        WITH first AS (
            SELECT contact_id, min(occurred_at) AS first_at FROM events
            WHERE type = 'order' GROUP BY contact_id
        ),
        at_start AS (
            SELECT DISTINCT contact_id FROM events
            WHERE type = 'order' AND occurred_at >= :since - :horizon AND occurred_at < :since
        ),
        at_end AS (
            SELECT DISTINCT contact_id FROM events
            WHERE type = 'order' AND occurred_at > :until - :horizon AND occurred_at <= :until
        )
        SELECT
          (SELECT count(*) FROM at_start),
          (SELECT count(*) FROM at_end),
          (SELECT count(*) FROM at_end JOIN first USING (contact_id)
             WHERE first.first_at >= :since),
          (SELECT count(*) FROM at_start
             WHERE contact_id NOT IN (SELECT contact_id FROM at_end))
        """,
        params,
    ).fetchone()
    answers, promoters, detractors = conn.execute(
        """
        WITH latest AS (
            SELECT amount, row_number() OVER (
                PARTITION BY contact_id ORDER BY occurred_at DESC, id DESC) AS rank
            FROM events
            WHERE type = 'nps' AND amount IS NOT NULL
              AND occurred_at BETWEEN :since AND :until
        )
        SELECT count(*), count(CASE WHEN amount >= 9 THEN 1 END),
               count(CASE WHEN amount <= 6 THEN 1 END)
        FROM latest WHERE rank = 1
        """,
        params,
    ).fetchone()
    aov = _ratio(revenue, priced)
    frequency = _ratio(orders, customers)
    churn_rate = _ratio(churned, start)
    value = aov * frequency if aov is not None and frequency is not None else None
    clv = value / churn_rate if value is not None and churn_rate else None
    nps = _ratio(100.0 * (promoters - detractors), answers)
    return Retention(
        customers=customers,
        repeat_customers=repeat,
        orders=orders,
        revenue=float(revenue),
        repeat_purchase_rate=_ratio(repeat, customers),
        customers_at_start=start,
        customers_at_end=end,
        new_customers=new,
        churned=churned,
        churn_rate=churn_rate,
        retention_rate=_ratio(end - new, start),
        average_order_value=aov,
        purchase_frequency=frequency,
        customer_value=value,
        customer_lifetime_value=clv,
        nps_answers=answers,
        promoters=promoters,
        detractors=detractors,
        nps=nps,
        churn_horizon_days=horizon / 86400,
    )


_MONTH = "(CAST(strftime('%Y', {0}, 'unixepoch') AS INTEGER) * 12 + CAST(strftime('%m', {0}, 'unixepoch') AS INTEGER))"


def cohort_curves(conn: sqlite3.Connection, since: int, until: int) -> list[dict[str, Any]]:
    """Per first-order month in the period: its size and, for month k = 0, 1, … up to the
    period's end, the share of the cohort who ordered in month k after their first order."""
    sizes: dict[str, int] = {}
    last_k: dict[str, int] = {}
    active: dict[tuple[str, int], int] = {}
    end_month = f"{_MONTH.format(':until')}"
    rows = conn.execute(
        f"""
        WITH first AS (
            SELECT contact_id, min(occurred_at) AS first_at FROM events
            WHERE type = 'order' GROUP BY contact_id
        ),
        cohort AS (
            SELECT contact_id, strftime('%Y-%m', first_at, 'unixepoch') AS cohort,
                   {_MONTH.format("first_at")} AS m0
            FROM first WHERE first_at BETWEEN :since AND :until
        ),
        activity AS (
            SELECT DISTINCT c.contact_id, c.cohort, {_MONTH.format("e.occurred_at")} - c.m0 AS k
            FROM cohort c JOIN events e
              ON e.contact_id = c.contact_id AND e.type = 'order' AND e.occurred_at <= :until
        )
        SELECT cohort, NULL AS k, count(*) AS n, max({end_month} - m0) AS last_k
        FROM cohort GROUP BY cohort
        UNION ALL
        SELECT cohort, k, count(*), NULL FROM activity GROUP BY cohort, k
        """,
        {"since": since, "until": until},
    )
    for row in rows:
        if row["k"] is None:
            sizes[row["cohort"]] = row["n"]
            last_k[row["cohort"]] = row["last_k"]
        else:
            active[(row["cohort"], row["k"])] = row["n"]
    return [
        {
            "cohort": cohort,
            "customers": size,
            "active": [active.get((cohort, k), 0) / size for k in range(last_k[cohort] + 1)],
        }
        for cohort, size in sorted(sizes.items())
    ]
