"""The report as one self-contained HTML page: inline CSS and SVG charts drawn here, no
scripts and nothing fetched from the network, so it opens anywhere and can be mailed."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, tzinfo
from html import escape
from typing import Any

from regard.report.text import (
    CAMPAIGN_COLUMNS,
    RETENTION_LINES,
    campaign_cells,
    figure,
    money,
    percent,
    period,
    points,
    skip_reasons,
)
from regard.report.uplift import verdict_label

PALETTE = ("#2f6f9f", "#d9822b", "#3a9d5d", "#b8457a", "#7a6bb5", "#8c8c3a", "#4aa3a8", "#c0504d")
CONTACTED, CONTROL = "#2f6f9f", "#a0a0a0"

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 960px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; font-size: 1.2rem; }
.period { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #e4e4e4; text-align: right;
         white-space: nowrap; }
td.def, th.def { white-space: normal; text-align: left; }
th:first-child, td:first-child { text-align: left; }
td.def { text-align: left; color: #666; font-size: .9em; }
.verdict { margin: .2rem 0 1rem; } .chart { margin: .6rem 0; }
svg text { font: 12px system-ui, sans-serif; fill: #333; }
.empty { color: #888; font-style: italic; }
"""


def render_html(report: Mapping[str, Any], locale: str, tz: tzinfo = UTC) -> str:
    """The page for a report as built by :func:`regard.report.build_report`; its period
    shown in ``tz``."""
    currency = report["currency"]
    since, until = (escape(day) for day in period(report, tz))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>regard report {since} to {until}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Did it work?</h1>",
        f'<p class="period">{since} to {until}</p>',
        "<h2>Sent per week</h2>",
        sent_per_week_chart(report["campaigns"]),
        campaign_table(report["campaigns"], currency, locale),
        journey_section(report.get("journeys", {})),
        "<h2>Conversion: contacted vs control group</h2>",
        conversion_section(report["campaigns"], currency, locale),
        "<h2>Retention by first-order cohort</h2>",
        cohort_chart(report["retention"]["cohorts"]),
        "<h2>Retention figures</h2>",
        retention_table(report["retention"], currency, locale),
        "</body></html>",
    ]
    return "\n".join(parts)


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(text)}</text>'


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``: 1, 2, 5 × 10^k."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return factor * step
    return 10 * step


def _divisions(top: float) -> int:
    """Gridlines that land on round numbers: 5 for 1 and 5 × 10^k, 4 for 2 × 10^k."""
    leading = f"{top:e}"[0]
    return 4 if leading == "2" else 5


def _grid(
    left: float,
    width: float,
    top_y: float,
    height: float,
    top: float,
    label: Callable[[float], str],
) -> list[str]:
    """Horizontal gridlines with their values on the left."""
    n = _divisions(top)
    out = []
    for i in range(n + 1):
        y = top_y + height - height * i / n
        out.append(
            f'<line x1="{left}" x2="{left + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>'
        )
        out.append(_text(left - 6, y + 4, label(top * i / n), "end"))
    return out


def _ramp(share: float) -> str:
    """From a light blue (the oldest cohort) to a dark blue (the newest)."""
    light, dark = (158, 202, 225), (8, 48, 107)
    r, g, b = (round(a + (z - a) * share) for a, z in zip(light, dark, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _legend(names: list[str], colours: list[str], x: float, y: float) -> list[str]:
    out = []
    for i, (name, colour) in enumerate(zip(names, colours, strict=True)):
        yy = y + i * 18
        out.append(f'<rect x="{x:.1f}" y="{yy - 10:.1f}" width="12" height="12" fill="{colour}"/>')
        out.append(_text(x + 18, yy, name))
    return out


def sent_per_week_chart(campaigns: dict[str, Any]) -> str:
    """Stacked bars: per week, the messages sent by each campaign."""
    series = {cid: c["sent_per_week"] for cid, c in campaigns.items() if c["sent_per_week"]}
    weeks = sorted({w for per in series.values() for w in per})
    if not weeks:
        return '<p class="empty">Nothing was sent in this period.</p>'
    names = list(series)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    totals = [sum(series[n].get(w, 0) for n in names) for w in weeks]
    top = _nice_max(max(totals))
    left, right, plot_top, plot_h = 48, 200, 12, 220
    width = max(560, left + right + 14 * len(weeks))
    plot_w = width - left - right
    bar = plot_w / len(weeks)
    body = []
    body += _grid(left, plot_w, plot_top, plot_h, top, lambda v: f"{v:g}")
    shown_year = ""
    label_every = max(1, math.ceil(44 / bar))  # a label (MM-DD) is about 36 pixels wide
    for wi, week in enumerate(weeks):
        x = left + wi * bar
        base = plot_top + plot_h
        for name, colour in zip(names, colours, strict=True):
            n = series[name].get(week, 0)
            if not n:
                continue
            h = plot_h * n / top
            base -= h
            body.append(
                f'<rect x="{x + 1:.1f}" y="{base:.1f}" width="{max(bar - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(name)}, week of '
                f"{escape(week)}: {n}</title></rect>"
            )
        if wi % label_every == 0:
            body.append(_text(x + bar / 2, plot_top + plot_h + 20, week[5:], "middle"))
            if week[:4] != shown_year:  # the year under the first day of each year shown
                shown_year = week[:4]
                body.append(_text(x + bar / 2, plot_top + plot_h + 34, shown_year, "middle"))
    body += _legend(names, colours, left + plot_w + 16, plot_top + 12)
    return _svg(width, plot_top + plot_h + 42, body, "messages sent per week and campaign")


def conversion_section(campaigns: dict[str, Any], currency: str, locale: str) -> str:
    goals = {cid: c["conversion"] for cid, c in campaigns.items() if "conversion" in c}
    if not goals:
        return '<p class="empty">No campaign has a [goal] to measure.</p>'
    out = [conversion_chart(goals)]
    for cid, c in goals.items():
        line = (
            f"<strong>{escape(cid)}</strong>: contacted {percent(c['contacted_rate'])} "
            f"({c['contacted_converted']} of {c['contacted']}), control "
            f"{percent(c['holdout_rate'])} ({c['held_out_converted']} of {c['held_out']})"
        )
        if c["uplift"] is not None:
            line += (
                f"; uplift {points(c['uplift'])}, 95% interval {points(c['ci_low'])} to "
                f"{points(c['ci_high'])}"
            )
        if c["cost_per_incremental_conversion"] is not None:
            line += (
                f"; {money(c['cost_per_incremental_conversion'], currency, locale)} per "
                "incremental conversion"
            )
        out.append(f'<p class="verdict">{line}. {escape(c["summary"])}.</p>')
    return "\n".join(out)


def conversion_chart(goals: dict[str, Any]) -> str:
    """Per campaign: the two rates as bars, and the uplift with its interval around zero."""
    row_h, left, bars_w, gap, diff_w = 56, 150, 260, 40, 260
    width = left + bars_w + gap + diff_w + 20
    height = 30 + row_h * len(goals) + 20
    highest = max(max(c["contacted_rate"] or 0, c["holdout_rate"] or 0) for c in goals.values())
    rate_top = min(1.0, _nice_max(highest)) if highest > 0 else 1.0
    spread = max(
        [abs(v) for c in goals.values() for v in (c["ci_low"], c["ci_high"]) if v is not None]
        or [0.1]
    )
    spread = max(0.01, min(1.0, spread * 1.1))
    dx0 = left + bars_w + gap
    zero = dx0 + diff_w / 2
    body = [
        _text(left, 16, f"conversion rate (0 to {percent(rate_top)})"),
        _text(zero, 16, "uplift with 95% interval", "middle"),
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="22" y2="{height - 22}" stroke="#888" stroke-dasharray="3 3"/>',
        _text(dx0, height - 6, points(-spread), "start"),
        _text(zero, height - 6, "0", "middle"),
        _text(dx0 + diff_w, height - 6, points(spread), "end"),
    ]
    for i, (cid, c) in enumerate(goals.items()):
        y = 30 + i * row_h
        body.append(_text(4, y + 22, cid))
        for j, (key, colour, label) in enumerate(
            (("contacted_rate", CONTACTED, "contacted"), ("holdout_rate", CONTROL, "control"))
        ):
            rate = c[key] or 0.0
            w = bars_w * rate / rate_top
            yy = y + 4 + j * 20
            body.append(
                f'<rect x="{left}" y="{yy:.1f}" width="{max(w, 0.5):.1f}" height="16" '
                f'fill="{colour}"><title>{escape(label)}: {percent(c[key])}</title></rect>'
            )
            body.append(_text(left + w + 4, yy + 12, f"{label} {percent(c[key])}"))
        if c["uplift"] is None:
            body.append(_text(zero, y + 24, verdict_label(c["verdict"]), "middle"))
            continue

        def at(v: float) -> float:
            return float(zero + (diff_w / 2) * max(-1.0, min(1.0, v / spread)))

        cy = y + 22
        colour = (
            "#3a9d5d"
            if c["verdict"] == "better"
            else "#c0504d"
            if c["verdict"] == "worse"
            else "#555"
        )
        body.append(
            f'<line x1="{at(c["ci_low"]):.1f}" x2="{at(c["ci_high"]):.1f}" y1="{cy}" y2="{cy}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        body.append(
            f'<circle cx="{at(c["uplift"]):.1f}" cy="{cy}" r="5" fill="{colour}">'
            f"<title>uplift {points(c['uplift'])} ({points(c['ci_low'])} to "
            f"{points(c['ci_high'])})</title></circle>"
        )
        body.append(_text(at(c["uplift"]), cy + 18, points(c["uplift"]), "middle"))
    return _svg(width, height, body, "conversion of contacted vs control, and the uplift")


# the cohort chart draws at most this many lines, each of at least this many customers
# where the shop has them: months are pooled into quarters, half-years or years until so
COHORT_LINES, COHORT_CUSTOMERS = 5, 15
_POOLS = ((1, "{y}-{m:02d}"), (3, "{y} Q{q}"), (6, "{y} H{q}"), (12, "{y}"))


def pooled_cohorts(cohorts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The cohorts the chart draws: months pooled into the shortest calendar span
    (month, quarter, half-year, year) that gives at most ``COHORT_LINES`` lines of at least
    ``COHORT_CUSTOMERS`` customers each (years, the latest lines, when nothing does). A
    pool's share in month k is of its customers whose cohort has reached month k."""
    usable = [c for c in cohorts if len(c["active"]) > 1]
    pooled: list[dict[str, Any]] = []
    for span, label in _POOLS:
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for c in usable:
            year, month = int(c["cohort"][:4]), int(c["cohort"][5:7])
            q = (month - 1) // span + 1
            groups.setdefault(label.format(y=year, m=month, q=q), []).append(c)
        pooled = [_pool(name, members) for name, members in groups.items()]
        fits = len(pooled) <= COHORT_LINES
        if fits and min((p["customers"] for p in pooled), default=0) >= COHORT_CUSTOMERS:
            return pooled
    return pooled[-COHORT_LINES:]


def _pool(name: str, members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    months = max(len(c["active"]) for c in members)
    active = []
    for k in range(months):
        reached = [c for c in members if len(c["active"]) > k]
        size = sum(c["customers"] for c in reached)
        active.append(sum(c["active"][k] * c["customers"] for c in reached) / size)
    return {"cohort": name, "customers": sum(c["customers"] for c in members), "active": active}


def cohort_chart(cohorts: Sequence[Mapping[str, Any]]) -> str:
    """One line per first-order month (or quarter, half-year, year, for a shop whose months
    are small: :func:`pooled_cohorts`): the share of the cohort ordering in month k."""
    cohorts = pooled_cohorts(cohorts)
    if not cohorts:
        return '<p class="empty">Not enough history for a cohort curve yet.</p>'
    months = max(len(c["active"]) for c in cohorts) - 1
    top = _nice_max(max(v for c in cohorts for v in c["active"][1:]) or 0.01)
    top = min(top, 1.0)
    left, right, plot_top, plot_h, plot_w = 56, 200, 12, 220, 480
    body = []
    body += _grid(left, plot_w, plot_top, plot_h, top, lambda v: f"{100 * v:g}%")
    for k in range(1, months + 1):
        x = left + plot_w * (k - 1) / max(1, months - 1)
        body.append(_text(x, plot_top + plot_h + 20, str(k), "middle"))
    body.append(
        _text(left + plot_w / 2, plot_top + plot_h + 36, "months after the first order", "middle")
    )
    names, colours = [], []
    for i, cohort in enumerate(cohorts):
        colour = _ramp(i / max(1, len(cohorts) - 1))
        points_ = [
            (
                left + plot_w * (k - 1) / max(1, months - 1),
                plot_top + plot_h - plot_h * min(v, top) / top,
            )
            for k, v in enumerate(cohort["active"])
            if k >= 1
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points_)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in points_:
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>')
        names.append(f"{cohort['cohort']} ({cohort['customers']})")
        colours.append(colour)
    body += _legend(names, colours, left + plot_w + 16, plot_top + 12)
    return _svg(
        left + plot_w + right, plot_top + plot_h + 44, body, "retention by first-order cohort"
    )


def campaign_table(campaigns: dict[str, Any], currency: str, locale: str) -> str:
    if not campaigns:
        return ""
    head = "".join(f"<th>{h}</th>" for h in CAMPAIGN_COLUMNS)
    head += '<th class="def">skipped because</th>'
    rows = []
    for cid, c in campaigns.items():
        cells = [escape(cid), *campaign_cells(c, currency, locale)]
        rows.append(
            "<tr>"
            + "".join(f"<td>{v}</td>" for v in cells)
            + f'<td class="def">{escape(skip_reasons(c))}</td></tr>'
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def journey_section(journeys: Mapping[str, Any]) -> str:
    """Each chain of follow-ups as one table: its steps, who exited, and the whole
    journey's conversion against the first step's control group."""
    out = []
    for first, j in journeys.items():
        head = "".join(
            f"<th>{h}</th>" for h in ("step", "due", "sent", "held out", "exited", "pending")
        )
        rows = "".join(
            f"<tr><td>{n}. {escape(s['campaign'])}</td><td>{s['due']}</td><td>{s['sent']}</td>"
            f"<td>{s['held_out']}</td><td>{s['exited']}</td><td>{s['pending']}</td></tr>"
            for n, s in enumerate(j["steps"], start=1)
        )
        c = j["conversion"]
        result = (
            f"; the whole journey: contacted {percent(c['contacted_rate'])}, held out "
            f"{percent(c['holdout_rate'])}: {escape(c['summary'])}"
            if c is not None
            else ""
        )
        out.append(
            f"<h2>Journey {escape(first)}</h2><table><tr>{head}</tr>{rows}</table>"
            f'<p class="def">{j["entered"]} entered, {j["exited"]} exited '
            f"({percent(j['exited_share'])}); a contact held out of {escape(first)} gets no "
            f"follow-up{result}</p>"
        )
    return "".join(out)


def retention_table(r: Mapping[str, Any], currency: str, locale: str) -> str:
    rows = []
    for key, label, kind, definition in RETENTION_LINES:
        shown = figure(r, key, kind, currency, locale)
        rows.append(
            f"<tr><td>{escape(label)}</td><td>{escape(shown)}</td>"
            f'<td class="def">{escape(definition)}</td></tr>'
        )
    return "<table>" + "".join(rows) + "</table>"
