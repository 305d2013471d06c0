"""The counts behind the shop's retention figures: orders, active customers, NPS answers
and first-order cohorts over a period [since, until]. Part of ``store.reports``; the
figures themselves (rates, values) are computed by :mod:`regard.report.retention`.

A customer is *active* at an instant t when they ordered within the churn horizon before t.
"""

from __future__ import annotations

from dataclasses import dataclass

from regard.store.area import Area
from regard.store.currencies import converted
from regard.times import Instant

# the month of an epoch column as one integer (year × 12 + month), UTC
_MONTH = (
    "(CAST(strftime('%Y', {0}, 'unixepoch') AS INTEGER) * 12"
    " + CAST(strftime('%m', {0}, 'unixepoch') AS INTEGER))"
)


@dataclass(frozen=True)
class RetentionCounts:
    """What happened in a period, counted; ``horizon`` is the churn horizon."""

    customers: int  # who ordered in the period
    repeat_customers: int  # who ordered at least twice in it
    orders: int
    priced_orders: int  # orders with an amount
    revenue: float  # the sum of those amounts
    customers_at_start: int  # active at the start
    customers_at_end: int  # active at the end
    new_customers: int  # of those active at the end, whose first order ever is in the period
    churned: int  # active at the start, not at the end
    nps_answers: int  # contacts with an NPS answer in the period (their latest counts)
    promoters: int  # latest answer 9–10
    detractors: int  # latest answer 0–6


@dataclass(frozen=True)
class Cohort:
    """The customers whose first order ever fell in one calendar month (UTC) of the period.

    ``active[k]`` is how many of them ordered in month k after that month, for k = 0 up to
    the month of the period's end.
    """

    month: str  # YYYY-MM
    customers: int
    active: tuple[int, ...]


class RetentionQueries(Area):
    """Order and answer counts (mixed into ``store.reports``)."""

    def retention_counts(self, since: Instant, until: Instant, horizon: int) -> RetentionCounts:
        """The counts for orders and NPS answers in [since, until]; ``horizon`` in seconds."""
        params = {"since": since, "until": until, "horizon": horizon}
        customers, repeat, orders, priced, revenue = self.conn.execute(
            f"""
            WITH per AS (
                SELECT contact_id, count(*) AS n, count(amount) AS priced,
                       sum({converted("events")}) AS total
                FROM events
                WHERE type = 'order' AND (voided_at IS NULL OR voided_at > :until) AND occurred_at BETWEEN :since AND :until
                GROUP BY contact_id
            )
            SELECT count(*), count(CASE WHEN n >= 2 THEN 1 END), coalesce(sum(n), 0),
                   coalesce(sum(priced), 0), coalesce(sum(total), 0)
            FROM per
            """,
            params,
        ).fetchone()
        start, end, new, churned = self.conn.execute(
            """
            WITH first AS (
                SELECT contact_id, min(occurred_at) AS first_at FROM events
                WHERE type = 'order' AND (voided_at IS NULL OR voided_at > :until) GROUP BY contact_id
            ),
            at_start AS (
                SELECT DISTINCT contact_id FROM events
                WHERE type = 'order' AND (voided_at IS NULL OR voided_at > :until) AND occurred_at >= :since - :horizon
                  AND occurred_at < :since
            ),
            at_end AS (
                SELECT DISTINCT contact_id FROM events
                WHERE type = 'order' AND (voided_at IS NULL OR voided_at > :until) AND occurred_at > :until - :horizon
                  AND occurred_at <= :until
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
        answers, promoters, detractors = self.conn.execute(
            """
            WITH latest AS (
                SELECT amount, row_number() OVER (
                    PARTITION BY contact_id ORDER BY occurred_at DESC, id DESC) AS rank
                FROM events
                WHERE type = 'nps' AND (voided_at IS NULL OR voided_at > :until) AND amount IS NOT NULL
                  AND occurred_at BETWEEN :since AND :until
            )
            SELECT count(*), count(CASE WHEN amount >= 9 THEN 1 END),
                   count(CASE WHEN amount <= 6 THEN 1 END)
            FROM latest WHERE rank = 1
            """,
            params,
        ).fetchone()
        return RetentionCounts(
            customers=customers,
            repeat_customers=repeat,
            orders=orders,
            priced_orders=priced,
            revenue=float(revenue),
            customers_at_start=start,
            customers_at_end=end,
            new_customers=new,
            churned=churned,
            nps_answers=answers,
            promoters=promoters,
            detractors=detractors,
        )

    def cohorts(self, since: Instant, until: Instant) -> list[Cohort]:
        """Per month of the period in which customers placed their first order ever: its
        size and how many of them ordered in each month after it (see :class:`Cohort`),
        months in order."""
        sizes: dict[str, int] = {}
        last_k: dict[str, int] = {}
        active: dict[tuple[str, int], int] = {}
        end_month = _MONTH.format(":until")
        rows = self.conn.execute(
            f"""
            WITH first AS (
                SELECT contact_id, min(occurred_at) AS first_at FROM events
                WHERE type = 'order' AND (voided_at IS NULL OR voided_at > :until) GROUP BY contact_id
            ),
            cohort AS (
                SELECT contact_id, strftime('%Y-%m', first_at, 'unixepoch') AS cohort,
                       {_MONTH.format("first_at")} AS m0
                FROM first WHERE first_at BETWEEN :since AND :until
            ),
            activity AS (
                SELECT DISTINCT c.contact_id, c.cohort,
                       {_MONTH.format("e.occurred_at")} - c.m0 AS k
                FROM cohort c JOIN events e
                  ON e.contact_id = c.contact_id AND e.type = 'order' AND (e.voided_at IS NULL OR e.voided_at > :until) AND e.occurred_at <= :until
            )
            SELECT cohort, NULL AS k, count(*) AS n, max({end_month} - m0) AS last_k
            FROM cohort GROUP BY cohort
            UNION ALL
            SELECT cohort, k, count(*), NULL FROM activity GROUP BY cohort, k
            """,
            {"since": since, "until": until},
        )
        for cohort, k, n, last in rows:
            if k is None:
                sizes[cohort] = n
                last_k[cohort] = last
            else:
                active[(cohort, k)] = n
        return [
            Cohort(
                month=cohort,
                customers=size,
                active=tuple(active.get((cohort, k), 0) for k in range(last_k[cohort] + 1)),
            )
            for cohort, size in sorted(sizes.items())
        ]
