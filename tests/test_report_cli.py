"""``regard report`` through the real CLI: the JSON document's shape exactly as SPEC.md
describes it, the terminal table, the HTML file, and the errors a user can make."""

from __future__ import annotations

import pytest

from conftest import Workspace
from regard.store import open_store
from shop_rows import add_contact, add_delivery, add_event

CAMPAIGN = """\
name = "Wir vermissen dich"
channel = "email"
provider = "outbox"
template = "winback"
holdout = 0.2

[trigger]
type = "inactivity"
after = "60d"

[goal]
event = "order"
within = "30d"
"""
PLAIN = """\
channel = "email"
provider = "outbox"
template = "winback"

[trigger]
type = "post_purchase"
"""
TEMPLATE = """\
{% block subject %}Wir vermissen dich{% endblock %}
{% block text %}{{ contact | greeting }}, schau mal wieder vorbei!{% endblock %}
"""


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    workspace.write("campaigns/winback.toml", CAMPAIGN)
    workspace.write("campaigns/thanks.toml", PLAIN)
    workspace.write("templates/winback.j2", TEMPLATE)
    store = open_store(workspace.store_target)
    for i in range(40):
        cid = f"k{i}"
        add_contact(store, cid, first_name="Jürgen", email=f"k{i}@example.org")
        held = i % 4 == 0
        add_delivery(
            store,
            "winback",
            cid,
            "held_out" if held else "sent",
            "2026-03-02T09:00",
            sent=None if held else "2026-03-02T09:00",
        )
        if i % 3 == 0:
            add_event(store, f"o{i}", cid, "2026-03-10", amount=40)
        add_event(store, f"n{i}", cid, "2026-03-05", type="nps", amount=i % 11)
    add_delivery(store, "winback", "k1", "skipped", "2026-03-03", reason="no_consent")
    add_delivery(store, "thanks", "k2", "dead", "2026-03-03", reason="422 Unprocessable")
    store.close()
    return workspace


def test_report_json_has_the_contract_shape(shop: Workspace) -> None:
    data = shop.cli_json("report", "--since", "2026-01-01", "--until", "2026-06-30")
    assert {"campaigns", "retention"} <= set(data)
    assert set(data["campaigns"]) == {"winback", "thanks"}
    for entry in data["campaigns"].values():
        for key in ("sent", "held_out", "pending", "dead"):
            assert isinstance(entry[key], int)
        assert isinstance(entry["skipped"], dict)
    winback = data["campaigns"]["winback"]
    assert (winback["sent"], winback["held_out"], winback["skipped"]) == (30, 10, {"no_consent": 1})
    assert data["campaigns"]["thanks"]["dead"] == 1
    assert "conversion" not in data["campaigns"]["thanks"]  # no [goal]
    conversion = winback["conversion"]
    for key in ("contacted_rate", "holdout_rate", "uplift", "ci_low", "ci_high"):
        assert isinstance(conversion[key], float)
    # contacts k0, k3, … ordered: held out are i % 4 == 0, so i % 12 == 0 → 4 of 10;
    # contacted: i % 3 == 0 and i % 4 != 0 → 10 of 30
    assert conversion["holdout_rate"] == pytest.approx(0.4)
    assert conversion["contacted_rate"] == pytest.approx(1 / 3)
    assert conversion["ci_low"] < conversion["uplift"] < conversion["ci_high"]
    retention = data["retention"]
    for key in (
        "repeat_purchase_rate",
        "churn_rate",
        "retention_rate",
        "average_order_value",
        "purchase_frequency",
        "nps",
    ):
        assert key in retention
    assert retention["average_order_value"] == pytest.approx(40.0)
    assert data["since"] == "2025-12-31T23:00:00Z"  # naive dates are in Europe/Berlin
    assert data["until"] == "2026-06-30T21:59:59Z"  # a bare --until date is its whole day


def test_report_table_and_html(shop: Workspace) -> None:
    html = shop.root / "report.html"
    result = shop.cli("report", "--since", "2026-01-01")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "winback" in out and "held out" in out
    assert "did it work?" in out and "95% interval" in out
    assert "too few contacts to tell yet" in out  # 10 held out
    assert "repeat purchase rate" in out and "NPS" in out
    # --html writes the page and says so; the text report is not printed as well
    written = shop.cli("report", "--since", "2026-01-01", "--html", str(html))
    assert written.exit_code == 0, written.output
    assert written.stdout == f"Wrote {html}\n"
    page = html.read_text(encoding="utf-8")
    assert page.count("<svg") == 3
    # the page says what the text says, in the paragraph and in the chart
    assert page.count("too few contacts to tell yet") == out.count("too few contacts to tell yet")
    assert "no control group" not in page and "no control group" not in out
    # the period as asked for, in the config's time zone, not its UTC boundaries
    period = shop.cli("report", "--since", "2026-01-01", "--until", "2026-06-30")
    assert period.stdout.startswith("Report 2026-01-01 to 2026-06-30\n")
    shop.cli("report", "--since", "2026-01-01", "--until", "2026-06-30", "--html", str(html))
    assert '<p class="period">2026-01-01 to 2026-06-30</p>' in html.read_text(encoding="utf-8")


def test_report_one_campaign(shop: Workspace) -> None:
    data = shop.cli_json("report", "--since", "2026-01-01", "--campaign", "thanks")
    assert list(data["campaigns"]) == ["thanks"]


def test_report_refuses_unknown_campaign_and_bad_dates(shop: Workspace) -> None:
    unknown = shop.cli("report", "--campaign", "nope")
    assert unknown.exit_code == 2 and "nope" in unknown.output
    bad = shop.cli("report", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.output
    backwards = shop.cli("report", "--since", "2026-05-01", "--until", "2026-04-01")
    assert backwards.exit_code == 2


def test_report_help_defines_the_figures(shop: Workspace) -> None:
    text = shop.cli("report", "--help").stdout
    for phrase in ("repeat purchase rate", "churn rate", "(E − N) / S", "NPS", "Newcombe"):
        assert phrase in text


def test_report_on_an_empty_workspace(workspace: Workspace) -> None:
    result = workspace.cli("report")
    assert result.exit_code == 0, result.output
    assert "No campaigns and no deliveries in this period." in result.stdout
    data = workspace.cli_json("report")
    assert data["campaigns"] == {}
    assert data["retention"]["repeat_purchase_rate"] is None


def test_a_holdout_with_nobody_in_it_yet_is_too_small_not_missing(workspace: Workspace) -> None:
    workspace.write("campaigns/winback.toml", CAMPAIGN)  # holdout = 0.2
    workspace.write("campaigns/plain.toml", PLAIN + '[goal]\nevent = "order"\n')  # no holdout
    workspace.write("templates/winback.j2", TEMPLATE)
    campaigns = workspace.cli_json("report")["campaigns"]
    assert campaigns["winback"]["conversion"]["verdict"] == "too_small"
    assert campaigns["plain"]["conversion"]["verdict"] == "no_control"
    table = workspace.cli("report").stdout
    assert table.count("set `holdout`") == 1  # only where there is none to set up
