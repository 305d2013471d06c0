"""The HTML report: well-formed, self-contained, and drawn by a real headless Chromium."""

from __future__ import annotations

import itertools
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

import pytest

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.report import build_report
from regard.report.html import COHORT_CUSTOMERS, COHORT_LINES, pooled_cohorts, render_html
from regard.report.text import report_lines
from regard.report.uplift import explain
from regard.store import Store, open_store
from shop_rows import add_contact, add_delivery, add_event, campaign, moment

BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")


def small_shop(path: Path) -> Store:
    store = open_store(path)
    for i in range(120):
        cid = f"k{i}"
        add_contact(store, cid, first_name="Jörg", last_name="Müller")
        month = 1 + i % 6
        add_event(store, f"f{i}", cid, f"2026-{month:02d}-{1 + i % 27:02d}", amount=20 + i % 50)
        if i % 3 == 0:
            add_event(store, f"r{i}", cid, f"2026-{month + 1:02d}-15", amount=35)
        held = i % 5 == 0
        day = f"2026-{month:02d}-{1 + i % 27:02d}T12:00"
        add_delivery(
            store, "thanks", cid, "held_out" if held else "sent", day, sent=None if held else day
        )
        add_event(store, f"n{i}", cid, "2026-06-20", type="nps", amount=i % 11)
    return store


def page(tmp_path: Path) -> str:
    store = small_shop(tmp_path / "shop.db")
    config = Config.model_validate({"providers": {"outbox": {"type": "file", "path": "o"}}})
    thanks = campaign("thanks", holdout=0.2, goal={"event": "order", "within": "45d"})
    data = build_report(
        store, config, [thanks], since=moment("2026-01-01"), until=moment("2026-08-01")
    )
    return render_html(data, "de")


def test_page_is_self_contained_with_three_well_formed_charts(tmp_path: Path) -> None:
    html = page(tmp_path)
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?https?:""", html)  # nothing from the network
    charts = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(charts) == 3
    for chart in charts:
        root = ET.fromstring(chart)  # each chart is well-formed XML
        assert root.get("aria-label")
    assert "rect" in charts[0] and "circle" in charts[1] and "polyline" in charts[2]
    assert "Müller" not in html  # no personal data in a report page


def test_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs chromium-headless-shell)")
    target = tmp_path / "report.html"
    target.write_text(page(tmp_path), encoding="utf-8")
    shot = tmp_path / "report.png"
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    done = subprocess.run(
        [*args, f"--screenshot={shot}", "--window-size=1000,1600", target.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    width, height, pixels = read_png(shot.read_bytes())
    assert (width, height) == (1000, 1600)
    assert pixels > 0.02  # more than a blank page: text, bars and lines were drawn
    dom = subprocess.run(
        [*args, "--dump-dom", target.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr
    # the browser parsed every chart as SVG (an unparsable one would be dropped or empty)
    assert dom.stdout.count("<svg") == 3
    assert dom.stdout.count("<polyline") >= 1 and dom.stdout.count("<circle") >= 1


def read_png(data: bytes) -> tuple[int, int, float]:
    """Width, height and the share of bytes of the decoded image that are not white."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    inked = sum(1 for b in raw[:: max(1, len(raw) // 200_000)] if b not in (0, 255))
    return width, height, inked / len(raw[:: max(1, len(raw) // 200_000)])


def chart_of(html: str, label: str) -> str:
    (chart,) = (c for c in re.findall(r"<svg.*?</svg>", html, flags=re.S) if label in c)
    return chart


def report_of(store: Store, *campaigns: Campaign, until: str = "2026-08-01") -> dict[str, Any]:
    config = Config.model_validate({"providers": {"outbox": {"type": "file", "path": "o"}}})
    return build_report(
        store, config, list(campaigns), since=moment("2026-01-01"), until=moment(until)
    )


def test_page_and_text_give_one_verdict(tmp_path: Path) -> None:
    """A campaign whose every contact was held out: the text says there are too few
    contacts to tell, and so does the page, in its paragraph and its chart."""
    store = open_store(tmp_path / "shop.db")
    for i in range(12):
        add_contact(store, f"k{i}")
        add_event(store, f"o{i}", f"k{i}", "2026-02-01", amount=30)
        add_delivery(store, "thanks", f"k{i}", "held_out", "2026-02-02T12:00")
    thanks = campaign("thanks", holdout=0.2, goal={"event": "order", "within": "45d"})
    data = report_of(store, thanks)
    text = "\n".join(report_lines(data, "de"))
    html = render_html(data, "de")
    said = explain(data["campaigns"]["thanks"]["conversion"]["verdict"])
    assert said == "too few contacts to tell yet" and said in text
    chart = chart_of(html, "conversion of contacted vs control, and the uplift")
    assert said in chart and "no control group" not in html


def test_week_axis_names_the_year(tmp_path: Path) -> None:
    store = open_store(tmp_path / "shop.db")
    for i in range(30):
        add_contact(store, f"k{i}")
        day = f"{2025 + i // 15}-{1 + i % 12:02d}-05T12:00"
        add_delivery(store, "thanks", f"k{i}", "sent", day, sent=day)
    data = build_report(
        store,
        Config.model_validate({"providers": {"outbox": {"type": "file", "path": "o"}}}),
        [campaign("thanks")],
        since=moment("2025-01-01"),
        until=moment("2026-12-31"),
    )
    chart = chart_of(render_html(data, "de"), "messages sent per week and campaign")
    labels = [t.text for t in ET.fromstring(chart).iter("{http://www.w3.org/2000/svg}text")]
    assert "2025" in labels and "2026" in labels  # under the first week shown of each year


def test_cohort_chart_of_a_small_shop_draws_few_lines_of_enough_customers(
    tmp_path: Path,
) -> None:
    """50 customers whose first orders spread over nine months: not nine lines of five
    or six customers each, but a few of at least fifteen (months pooled into quarters)."""
    store = open_store(tmp_path / "shop.db")
    for i in range(50):
        add_contact(store, f"k{i}")
        month = 1 + i % 9
        add_event(store, f"f{i}", f"k{i}", f"2026-{month:02d}-03", amount=20)
        if i % 2:
            add_event(store, f"r{i}", f"k{i}", f"2026-{month + 1:02d}-20", amount=20)
    data = report_of(store, until="2026-11-30")
    assert len([c for c in data["retention"]["cohorts"] if len(c["active"]) > 1]) == 9
    pooled = pooled_cohorts(data["retention"]["cohorts"])
    assert 1 < len(pooled) <= COHORT_LINES
    assert all(p["customers"] >= COHORT_CUSTOMERS for p in pooled)
    assert sum(p["customers"] for p in pooled) == 50
    # a pooled share is of the customers behind it: half of them ordered the next month
    assert all(p["active"][1] == pytest.approx(0.5, abs=0.1) for p in pooled)
    chart = chart_of(render_html(data, "de"), "retention by first-order cohort")
    assert chart.count("<polyline") == len(pooled)


def test_cohort_chart_of_a_large_shop_keeps_its_months(tmp_path: Path) -> None:
    cohorts = [
        {"cohort": f"2026-{m:02d}", "customers": 400, "active": [1.0, 0.3, 0.2]}
        for m in range(1, 5)
    ]
    assert [p["cohort"] for p in pooled_cohorts(cohorts)] == [c["cohort"] for c in cohorts]
    many = [
        {"cohort": f"{y}-{m:02d}", "customers": 400, "active": [1.0, 0.3]}
        for y in (2025, 2026)
        for m in range(1, 13)
    ]
    assert [p["cohort"] for p in pooled_cohorts(many)] == [
        "2025 H1",
        "2025 H2",
        "2026 H1",
        "2026 H2",
    ]


CHART_TEXTS = """(() => {
  const out = {};
  for (const svg of document.querySelectorAll('svg')) {
    const b = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].map(t => {
      const r = t.getBoundingClientRect();
      return [r.left, r.right, r.top, r.bottom, t.textContent];
    });
    out[svg.getAttribute('aria-label')] = {
      box: [b.left, b.right, b.top, b.bottom], texts: texts,
      lines: svg.querySelectorAll('polyline').length,
    };
  }
  return out;
})()"""


def shop_of(path: Path, customers: int, months: int) -> Store:
    """``customers`` whose first orders and messages spread over ``months`` months."""
    store = open_store(path)
    for i in range(customers):
        cid = f"k{i}"
        add_contact(store, cid)
        year, month = 2025 + (i % months) // 12, 1 + (i % months) % 12
        add_event(store, f"f{i}", cid, f"{year}-{month:02d}-{1 + i % 27:02d}", amount=30)
        if i % 3:
            add_event(store, f"r{i}", cid, f"{year + month // 12}-{month % 12 + 1:02d}-28")
        day = f"{year}-{month:02d}-{1 + i % 27:02d}T12:00"
        add_delivery(store, "thanks", cid, "sent", day, sent=day)
    return store


@pytest.mark.parametrize(("customers", "months"), [(50, 9), (2_000, 24)])
def test_charts_are_readable_in_chromium_at_any_shop_size(
    tmp_path: Path, customers: int, months: int
) -> None:
    """In a real Chromium: no two labels of the sent-per-week and cohort charts overlap,
    every label lies inside its chart, and the cohort chart has at most five lines."""
    from test_way_back_browser import BROWSERS as binaries
    from test_way_back_browser import Browser

    binary = next((b for b in binaries if shutil.which(b)), None)
    if binary is None:
        pytest.skip("no Chromium on this machine (.ci/run installs chromium-headless-shell)")
    store = shop_of(tmp_path / "shop.db", customers, months)
    config = Config.model_validate({"providers": {"outbox": {"type": "file", "path": "o"}}})
    data = build_report(
        store, config, [campaign("thanks")], since=moment("2025-01-01"), until=moment("2026-12-31")
    )
    target = tmp_path / "report.html"
    target.write_text(render_html(data, "de"), encoding="utf-8")
    browser = Browser(binary, str(tmp_path / "profile"))
    try:
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=1000, height=1600, deviceScaleFactor=1, mobile=False,
        )  # fmt: skip
        browser.open(target.as_uri())
        charts = browser.evaluate(CHART_TEXTS)
    finally:
        browser.close()
    for label in ("messages sent per week and campaign", "retention by first-order cohort"):
        chart = charts[label]
        left, right, top, bottom = chart["box"]
        texts = chart["texts"]
        for x0, x1, y0, y1, text in texts:
            assert left <= x0 and x1 <= right and top <= y0 and y1 <= bottom, (label, text)
        for a, b in itertools.combinations(texts, 2):
            overlap_x = min(a[1], b[1]) - max(a[0], b[0])
            overlap_y = min(a[3], b[3]) - max(a[2], b[2])
            assert overlap_x <= 0.5 or overlap_y <= 0.5, (label, a[4], b[4])
    assert 1 <= charts["retention by first-order cohort"]["lines"] <= COHORT_LINES
