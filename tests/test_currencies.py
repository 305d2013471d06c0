"""Amounts in several currencies: ``[currencies]`` rates convert every sum (total_spent
stored and as of T, milestones, the report), events keep their own amount and currency, a
currency without a rate is named at import, and money is written as the customer's
country writes it."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Workspace
from import_helpers import contact, rows

EVENTS = (
    "id,contact_id,type,occurred_at,amount,currency\n"
    "o1,ann,order,2026-03-01T10:00:00Z,100,CHF\n"
    "o2,ann,order,2026-03-05T10:00:00Z,100,EUR\n"
    "o3,bob,order,2026-03-05T10:00:00Z,80,\n"
)
VIP = """\
channel = "email"
provider = "outbox"
template = "vip"
[trigger]
type = "milestone"
metric = "total_spent"
threshold = {threshold}
"""
TEMPLATE = (
    "{% block subject %}Danke{% endblock %}\n"
    "{% block text %}{{ contact.total_spent | money }} / {{ event.amount | money }}{% endblock %}\n"
)


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    people = workspace.write(
        "contacts.csv", "id,email,consent_email\nann,ann@example.ch,true\nbob,bob@example.de,true\n"
    )
    assert workspace.cli("import", "contacts", str(people)).exit_code == 0
    workspace.write("templates/vip.j2", TEMPLATE)
    return workspace


def rates(ws: Workspace, table: str) -> None:
    """Set the config's [currencies] table (replacing the one there)."""
    text = ws.config.read_text(encoding="utf-8").split("\n[currencies]\n")[0]
    ws.config.write_text(text + f"\n[currencies]\n{table}\n", encoding="utf-8")


def vip(ws: Workspace, threshold: float) -> None:
    ws.write("campaigns/vip.toml", VIP.format(threshold=threshold))


def planned(ws: Workspace, at: str = "2026-03-05T12:00:00Z") -> list[tuple[Any, ...]]:
    return [(p["contact_id"], p["occasion"], p["due_at"]) for p in ws.cli_json("plan", "--at", at)]


def test_a_currency_without_a_rate_is_named_at_import_and_counts_as_it_is(shop: Workspace) -> None:
    path = shop.write("events.csv", EVENTS)
    result = shop.cli("import", "events", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: {path}:2: currency: no rate for CHF in [currencies] of the config "
        "(1 row with an amount in CHF): until there is one, these amounts count as EUR as "
        "they are in total_spent, milestones and the report; add CHF = <what one CHF is "
        "worth in EUR>"
    ]
    assert contact(shop.store_target, "ann")["total_spent"] == 200
    # --json carries it too; a rate makes the warning go
    data = shop.cli_json("import", "events", str(path))
    assert [w.split(": ", 2)[:2] for w in data["warnings"]] == [[f"{path}:2", "currency"]]
    rates(shop, "CHF = 1.04")
    assert shop.cli_json("import", "events", str(path))["warnings"] == []


def test_rates_convert_the_facts_the_milestones_and_the_report(shop: Workspace) -> None:
    rates(shop, "CHF = 0.5  # one CHF is worth 0.50 EUR")
    path = shop.write("events.csv", EVENTS)
    result = shop.cli("import", "events", str(path))
    assert result.exit_code == 0 and result.stderr == "", result.output
    db = shop.store_target
    assert contact(db, "ann")["total_spent"] == 150  # 100 CHF = 50 EUR, + 100 EUR
    assert shop.cli_json("contacts", "show", "ann")["total_spent"] == 150
    # the events keep what they came with
    kept = rows(db, "SELECT id, amount, currency FROM events ORDER BY id")
    assert [tuple(r) for r in kept] == [("o1", 100, "CHF"), ("o2", 100, "EUR"), ("o3", 80, None)]
    # milestones: 150 EUR is not 200 (the amounts added as they are would be)
    vip(shop, 200)
    assert planned(shop) == []
    vip(shop, 150)
    assert planned(shop) == [("ann", "total_spent:150", "2026-03-05T10:00:00Z")]
    # an audience on total_spent as of T: at T before o2, ann has 50 EUR
    shop.write(
        "campaigns/vip.toml", VIP.format(threshold=1) + "[audience]\ntotal_spent = { min = 60 }\n"
    )
    assert planned(shop, "2026-03-01T12:00:00Z") == []
    shop.write(
        "campaigns/vip.toml", VIP.format(threshold=1) + "[audience]\ntotal_spent = { min = 50 }\n"
    )
    assert planned(shop, "2026-03-01T12:00:00Z") == [
        ("ann", "total_spent:1", "2026-03-01T10:00:00Z")
    ]
    # the report's revenue: (50 + 100 + 80) / 3 orders
    report = shop.cli_json("report", "--since", "2026-01-01", "--until", "2026-03-31")
    assert report["retention"]["average_order_value"] == pytest.approx(230 / 3)
    # a message shows the total in the config's currency and the order in its own
    text = shop.cli("preview", "vip", "ann", "--at", "2026-03-01T12:00:00Z", "--event", "o1").stdout
    assert "50,00 € / 100,00 CHF" in text


def test_a_changed_rate_applies_to_every_amount_at_the_next_command(shop: Workspace) -> None:
    rates(shop, "CHF = 0.5")
    shop.cli("import", "events", str(shop.write("events.csv", EVENTS)))
    vip(shop, 200)
    assert planned(shop) == []
    assert planned(shop, "2026-03-01T12:00:00Z") == []
    rates(shop, "CHF = 2")  # 100 CHF are now 200 EUR: the first order reaches 200
    assert shop.cli_json("contacts", "show", "ann")["total_spent"] == 300
    assert contact(shop.store_target, "ann")["total_spent"] == 300  # stored facts too
    at = "2026-03-01T12:00:00Z"
    assert planned(shop, at) == [("ann", "total_spent:200", "2026-03-01T10:00:00Z")]
    report = shop.cli_json("report", "--since", "2026-01-01", "--until", "2026-03-31")
    assert report["retention"]["average_order_value"] == pytest.approx(380 / 3)
    rates(shop, "")  # no rates: the amounts count as they are
    assert shop.cli_json("contacts", "show", "ann")["total_spent"] == 200


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("chf = 1.04", "'chf' is not an ISO 4217 currency code like CHF"),
        ("CHF = 0", "CHF: a rate is a positive number of EUR per CHF"),
        ("CHF = -1.5", "CHF: a rate is a positive number of EUR per CHF"),
        ("EUR = 1", "EUR: is the config's own currency (its rate is 1)"),
    ],
)
def test_bad_rates_are_config_errors(shop: Workspace, table: str, message: str) -> None:
    rates(shop, table)
    result = shop.cli("status")
    assert result.exit_code == 1
    assert "currencies" in result.output and message in result.output


def test_a_swiss_customer_reads_swiss_money(shop: Workspace) -> None:
    """A contact of locale ``de`` in CH (as a shop's export gives them): CHF 145.00."""
    people = shop.write(
        "swiss.csv",
        "id,email,consent_email,locale,country\n"
        "zoe,zoe@example.ch,true,de,CH\nkim,kim@example.at,true,de,AT\n"
        "eva,eva@example.de,true,de,DE\nray,ray@example.us,true,de,US\n",
    )
    shop.cli("import", "contacts", str(people))
    shop.cli(
        "import",
        "events",
        str(
            shop.write(
                "orders.csv",
                "id,contact_id,occurred_at,amount,currency\n"
                "z1,zoe,2026-03-01T10:00:00Z,1145,CHF\nk1,kim,2026-03-01T10:00:00Z,1145,EUR\n"
                "e1,eva,2026-03-01T10:00:00Z,1145,CHF\nr1,ray,2026-03-01T10:00:00Z,1145,CHF\n",
            )
        ),
    )
    shop.write(
        "templates/vip.j2",
        "{% block subject %}x{% endblock %}{% block text %}[{{ event.amount | money }}]"
        "{% endblock %}",
    )
    vip(shop, 1)

    def shown(who: str, order: str) -> str:
        out = shop.cli("preview", "vip", who, "--at", "2026-03-01T12:00:00Z", "--event", order)
        return out.stdout.split("[", 1)[1].split("]", 1)[0]

    assert shown("zoe", "z1") == "CHF 1'145.00"
    assert shown("kim", "k1") == "€ 1.145,00"  # Austria writes the sign first
    assert shown("eva", "e1") == "1.145,00 CHF"  # in Germany a franc is written as there
    assert shown("ray", "r1") == "1.145,00 CHF"  # no German of the US: the language's own


def test_a_swiss_shops_report_writes_francs_as_switzerland_does(shop: Workspace) -> None:
    text = shop.config.read_text(encoding="utf-8")
    text = text.replace('currency = "EUR"', 'currency = "CHF"').replace(
        'country = "DE"', 'country = "CH"'
    )
    shop.config.write_text(text, encoding="utf-8")
    shop.cli("import", "events", str(shop.write("events.csv", EVENTS.replace(",CHF", ",EUR"))))
    rates(shop, "EUR = 1.1")
    out = shop.cli("report", "--since", "2026-01-01", "--until", "2026-03-31").stdout
    (line,) = [x for x in out.splitlines() if x.strip().startswith("average order value")]
    # (110 + 110 + 80) / 3 = 100 CHF
    assert "CHF\xa0100.00" in line  # not 100,00 CHF
