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

The counts come from ``store.reports`` (:mod:`regard.store.retention`); this module makes
them figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from regard.store import Store
from regard.store.retention import Cohort
from regard.times import Instant


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


class CohortCurve(TypedDict):
    """One first-order month: its customers and, per month k after it, the share active."""

    cohort: str  # YYYY-MM
    customers: int
    active: list[float]


class RetentionReport(TypedDict):
    """The ``retention`` part of the report document."""

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
    cohorts: list[CohortCurve]


def retention_report(store: Store, since: Instant, until: Instant, horizon: int) -> RetentionReport:
    """The figures for orders and answers in [since, until]; ``horizon`` in seconds."""
    n = store.reports.retention_counts(since, until, horizon)
    aov = _ratio(n.revenue, n.priced_orders)
    frequency = _ratio(n.orders, n.customers)
    churn_rate = _ratio(n.churned, n.customers_at_start)
    value = aov * frequency if aov is not None and frequency is not None else None
    clv = value / churn_rate if value is not None and churn_rate else None
    nps = _ratio(100.0 * (n.promoters - n.detractors), n.nps_answers)
    return RetentionReport(
        customers=n.customers,
        repeat_customers=n.repeat_customers,
        orders=n.orders,
        revenue=n.revenue,
        repeat_purchase_rate=_ratio(n.repeat_customers, n.customers),
        customers_at_start=n.customers_at_start,
        customers_at_end=n.customers_at_end,
        new_customers=n.new_customers,
        churned=n.churned,
        churn_rate=churn_rate,
        retention_rate=_ratio(n.customers_at_end - n.new_customers, n.customers_at_start),
        average_order_value=aov,
        purchase_frequency=frequency,
        customer_value=value,
        customer_lifetime_value=clv,
        nps_answers=n.nps_answers,
        promoters=n.promoters,
        detractors=n.detractors,
        nps=nps,
        churn_horizon_days=horizon / 86400,
        cohorts=cohort_curves(store.reports.cohorts(since, until)),
    )


def cohort_curves(cohorts: Sequence[Cohort]) -> list[CohortCurve]:
    """Each cohort's activity as shares of its size, month by month."""
    return [
        CohortCurve(
            cohort=c.month,
            customers=c.customers,
            active=[active / c.customers for active in c.active],
        )
        for c in cohorts
    ]
