"""The report as plain text for a terminal: one table of campaigns, a short paragraph per
goal, and the retention figures with their one-line definitions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from babel.numbers import format_currency

RETENTION_LINES = (
    ("repeat_purchase_rate", "repeat purchase rate", "percent",
     "customers with ≥ 2 orders / customers with ≥ 1 order, in the period"),
    ("churn_rate", "churn rate", "percent",
     "customers active at the start with no order within the horizon before the end"),
    ("retention_rate", "customer retention rate", "percent",
     "(E − N) / S: active at the end, minus new, over active at the start"),
    ("average_order_value", "average order value", "money", "order total / orders"),
    ("purchase_frequency", "purchase frequency", "number", "orders / customers who ordered"),
    ("customer_lifetime_value", "customer lifetime value", "money",
     "average order value × purchase frequency / churn rate"),
    ("nps", "NPS", "nps", "% promoters (9–10) − % detractors (0–6), latest answer each"),
)  # fmt: skip
CAMPAIGN_COLUMNS = (
    "campaign", "due", "sent", "held out", "skipped", "pending", "unconfirmed", "dead", "cost",
)  # fmt: skip


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def points(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f} pts"


def money(value: float | None, currency: str, locale: str) -> str:
    return "–" if value is None else format_currency(value, currency, locale=locale)


def figure(r: Mapping[str, Any], key: str, kind: str, currency: str, locale: str) -> str:
    """One retention figure formatted by its kind (percent, money, nps, number)."""
    value = r[key]
    if value is None:
        return "–"
    if kind == "percent":
        return percent(value)
    if kind == "money":
        return money(value, currency, locale)
    if kind == "nps":
        return f"{value:+.0f}"
    return f"{value:.2f}"


def campaign_cells(c: dict[str, Any], currency: str, locale: str) -> list[str]:
    """One campaign's figures, in the order of ``CAMPAIGN_COLUMNS`` after its id."""
    return [
        str(c["due"]),
        str(c["sent"]),
        str(c["held_out"]),
        str(sum(c["skipped"].values())),
        str(c["pending"]),
        str(c.get("unconfirmed", 0)),
        str(c["dead"]),
        money(c["cost"], currency, locale) if c["cost"] is not None else "",
    ]


def skip_reasons(c: dict[str, Any]) -> str:
    """Why a campaign's deliveries were skipped, e.g. ``no consent 3, suppressed 1``."""
    return ", ".join(f"{r} {n}" for r, n in c["skipped"].items())


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(cell: str) -> str:
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), cell)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Columns aligned: the first left, the others right; a control character in a cell
    (a newline in a campaign's id) is written as its escape, so no cell starts a line."""
    header, rows = [_escaped(c) for c in header], [[_escaped(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return [line(header), *(line(r) for r in rows)]


def period(report: Mapping[str, Any], tz: tzinfo = UTC) -> tuple[str, str]:
    """The report's first and last day in ``tz``: the days the user asked for, not the
    UTC dates of their boundaries (``--since 2026-11-01`` in Berlin starts on 31 October, UTC)."""
    since, until = (
        datetime.fromisoformat(report[key]).astimezone(tz).date().isoformat()
        for key in ("since", "until")
    )
    return since, until


def report_lines(report: Mapping[str, Any], locale: str, tz: tzinfo = UTC) -> list[str]:
    """The whole report as lines of text; its period shown in ``tz``."""
    currency = report["currency"]
    since, until = period(report, tz)
    lines = [f"Report {since} to {until}", ""]
    campaigns: dict[str, Any] = report["campaigns"]
    if campaigns:
        rows = [[cid, *campaign_cells(c, currency, locale)] for cid, c in campaigns.items()]
        lines += table(list(CAMPAIGN_COLUMNS), rows)
        for cid, c in campaigns.items():
            if c["skipped"]:
                lines.append(f"  {cid} skipped: {skip_reasons(c)}")
    else:
        lines.append("No campaigns and no deliveries in this period.")
    for first, j in report.get("journeys", {}).items():
        lines += ["", *journey_lines(first, j, currency, locale)]
    for cid, c in campaigns.items():
        if "conversion" in c:
            lines += ["", *conversion_lines(cid, c["conversion"], currency, locale)]
    lines += ["", *retention_lines(report["retention"], currency, locale)]
    return lines


def journey_lines(first: str, j: dict[str, Any], currency: str, locale: str) -> list[str]:
    """One journey: its steps' counts, the share that exited, its conversion."""
    lines = [f"journey {first}: {' → '.join(s['campaign'] for s in j['steps'])}"]
    rows = [
        [
            f"  {n}. {s['campaign']}" + (f" (+{s['delay_days']:g}d)" if s["follows"] else ""),
            str(s["due"]),
            str(s["sent"]),
            str(s["held_out"]),
            str(s["exited"]),
            str(sum(s["skipped"].values()) - s["skipped"].get("exited", 0)),
            str(s["pending"]),
        ]
        for n, s in enumerate(j["steps"], start=1)
    ]
    lines += table(["  step", "due", "sent", "held out", "exited", "other skips", "pending"], rows)
    lines.append(
        f"  {j['entered']} entered (first step sent), {j['exited']} exited "
        f"({percent(j['exited_share'])}); a contact held out of {first} gets no follow-up"
    )
    if j["conversion"] is not None:
        lines += [
            "  " + line
            for line in conversion_lines("the whole journey", j["conversion"], currency, locale)
        ]
    return lines


def conversion_lines(cid: str, c: dict[str, Any], currency: str, locale: str) -> list[str]:
    goal = c["goal"]
    lines = [f"{cid}: did it work? ({goal['event']} within {goal['within_days']:g} days)"]
    lines.append(
        f"  contacted {percent(c['contacted_rate'])} ({c['contacted_converted']} of "
        f"{c['contacted']})   held out {percent(c['holdout_rate'])} "
        f"({c['held_out_converted']} of {c['held_out']})"
    )
    if c["uplift"] is not None:
        relative = (
            f", relative {c['relative_uplift']:+.0%}" if c["relative_uplift"] is not None else ""
        )
        lines.append(
            f"  uplift {points(c['uplift'])} (95% interval {points(c['ci_low'])} to "
            f"{points(c['ci_high'])}){relative}"
        )
        extra = f"  ≈ {c['incremental_conversions']:.1f} incremental conversions"
        if c["cost_per_incremental_conversion"] is not None:
            per = money(c["cost_per_incremental_conversion"], currency, locale)
            extra += f", {per} each"
        lines.append(extra)
    lines.append(f"  → {c['summary']}")
    return lines


def retention_lines(r: Mapping[str, Any], currency: str, locale: str) -> list[str]:
    lines = [
        f"Retention ({r['customers']} customers, {r['orders']} orders; "
        f"churn horizon {r['churn_horizon_days']:g} days)"
    ]
    rows = []
    for key, label, kind, definition in RETENTION_LINES:
        shown = figure(r, key, kind, currency, locale)
        if key == "nps" and r[key] is not None:
            shown += f" ({r['nps_answers']} answers)"
        rows.append([f"  {label}", shown, f"  {definition}"])
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines += [f"{a.ljust(widths[0])}  {b.rjust(widths[1])}{c}" for a, b, c in rows]
    return lines
