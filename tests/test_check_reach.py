"""``regard check`` asks the store what the campaigns will meet: an empty store is a
warning, each campaign's reach today is counted (audience ∩ address ∩ consent ∩ not
suppressed) and a campaign that reaches nobody is a warning, as is a partial order
history under a campaign that counts orders. Warnings never change the exit status."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from conftest import Workspace
from regard.store import open_store
from regard.times import iso, now_instant
from shop_payloads import shopify_customer, woo_customer
from shop_rows import add_contact, add_event

TEXT = "{% block subject %}Hallo{% endblock %}{% block text %}Hallo{% endblock %}"
THANKS = """\
channel = "email"
provider = "outbox"
template = "thanks"
[trigger]
type = "post_purchase"
[audience]
country = "DE"
"""
FIRST = THANKS.replace('type = "post_purchase"', 'type = "post_purchase"\nnth = 1')


def check(workspace: Workspace) -> dict[str, object]:
    result = workspace.cli("check", "--json")
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_an_empty_store_is_a_warning_not_ok(workspace: Workspace) -> None:
    workspace.write("templates/thanks.j2", TEXT)
    workspace.write("campaigns/thanks.toml", THANKS)
    result = workspace.cli("check")
    assert result.exit_code == 0, result.output  # a warning, not a problem
    assert "the store has no contacts yet" in result.stderr
    assert not result.stdout.splitlines()[-1].startswith("ok")
    assert result.stdout.splitlines()[-1].startswith("no problems, 1 warning: 1 campaigns")
    report = check(workspace)
    # no store file: none; a database server's store exists, with no contacts
    none = 0 if isinstance(workspace.store_target, str) else None
    assert report["ok"] is True and report["contacts"] == none and report["reach"] == {}
    assert any("no contacts yet" in w for w in report["warnings"])  # type: ignore[attr-defined]
    assert not (workspace.root / "regard.db").exists()  # check never creates a store


def test_each_campaign_reach_today_agrees_with_the_tick(workspace: Workspace) -> None:
    workspace.write("templates/thanks.j2", TEXT)
    workspace.write("campaigns/thanks.toml", THANKS)
    store = open_store(workspace.store_target)
    recent = iso(now_instant() - 3600)
    with store.write() as conn:
        add_contact(conn, "ada", country="DE")
        add_contact(conn, "bea", country="DE", consent_email=None)  # no consent
        add_contact(conn, "cem", country="DE", email="  ")  # no address
        add_contact(conn, "dan", country="DE")  # unsubscribes, below
        add_contact(conn, "eva", country="DE", email="Eva@Example.com")  # bounced, below
        add_contact(conn, "fay", country="AT")  # not in the audience
        add_contact(conn, "gus", country="DE", consent_email=0)
        add_contact(conn, "hal", country="DE")
        for name in ("ada", "bea", "cem", "dan", "eva", "fay", "gus", "hal"):
            add_event(conn, f"o-{name}", name, str(recent))
    store.suppressions.add("dan", "email")
    store.suppressions.add_unreachable(None, "email", "eva@example.com", reason="hard bounce",
                                       at=now_instant())  # fmt: skip
    store.close()
    report = check(workspace)
    assert report["contacts"] == 8
    assert report["reach"] == {
        "thanks": {"audience": 7, "with_address": 6, "consented": 4, "reachable": 2}
    }
    # what a tick decides for the same contacts: 2 pending, the others skipped
    planned = workspace.cli_json("plan")
    pending = sorted(p["contact_id"] for p in planned if p["decision"] == "pending")
    assert pending == ["ada", "hal"]
    text = workspace.cli("check")
    assert "campaign thanks reaches 2 of 8 contacts today" in text.stdout
    assert "reaches no contact" not in text.stderr


def test_a_woocommerce_shop_without_consent_reaches_nobody(workspace: Workspace) -> None:
    workspace.write("templates/thanks.j2", TEXT)
    workspace.write("campaigns/thanks.toml", THANKS)
    customers = [woo_customer(), woo_customer(id=26, email="karl@example.de")]
    path = workspace.write("customers.json", json.dumps(customers))
    imported = workspace.cli("import", "contacts", str(path), "--format", "woocommerce")
    assert imported.exit_code == 0, imported.output
    result = workspace.cli("check")
    assert result.exit_code == 0, result.output
    assert (
        "campaign thanks reaches no contact today: none of the 2 contacts with an e-mail "
        'address may get marketing on email ([consent] email = "opt-in" needs '
        "consent_email = true, which none of them has)"
    ) in result.stderr
    report = check(workspace)
    assert report["reach"] == {
        "thanks": {"audience": 2, "with_address": 2, "consented": 0, "reachable": 0}
    }
    # a service message needs no consent: it reaches them
    workspace.write("campaigns/thanks.toml", 'purpose = "service"\n' + THANKS)
    assert check(workspace)["reach"] == {
        "thanks": {"audience": 2, "with_address": 2, "consented": 2, "reachable": 2}
    }
    # a disabled campaign is counted, not warned about
    workspace.write("campaigns/thanks.toml", "enabled = false\n" + THANKS)
    assert not any("reaches no contact" in w for w in check(workspace)["warnings"])  # type: ignore[attr-defined]


def test_check_warns_when_first_orders_rest_on_a_partial_history(workspace: Workspace) -> None:
    workspace.write("templates/thanks.j2", TEXT)
    workspace.write("campaigns/thanks.toml", FIRST)
    store = open_store(workspace.store_target)
    last_month = now_instant() - int(timedelta(days=20).total_seconds())
    with store.write() as conn:
        # the shop says 8 orders; only last month's one was imported
        add_contact(conn, "vera", country="DE", attributes={"shop_orders": 8})
        add_contact(conn, "nina", country="DE", attributes={"shop_orders": 1})
        add_event(conn, "o1", "vera", last_month, amount=30)
        add_event(conn, "o2", "nina", last_month, amount=30)
        conn.execute("UPDATE contacts SET order_count = 1")
    store.close()
    report = check(workspace)
    history = report["history"]
    assert history == {
        "orders": 2, "contacts": 2, "first_order_at": iso(last_month),
        "last_order_at": iso(last_month), "shop_counted": 2, "short": 1,
    }  # fmt: skip
    warned = [w for w in report["warnings"] if "order history" in w]  # type: ignore[attr-defined]
    assert warned == [
        "1 contact has more orders in the shop (attribute shop_orders) than in the "
        "store: campaigns thanks (post_purchase nth = 1) count a contact's orders, and a "
        "customer whose earlier orders are not in the store counts as new; import the full "
        "order history first (regard import events FILE)"
    ]
    text = workspace.cli("check")
    day = iso(last_month)[:10]  # type: ignore[index]
    assert f"store: 2 contacts, orders from {day} to {day} (2 orders of 2 contacts)" in text.stderr
    # without the shop's counters, a history of less than a year is named as such
    store = open_store(workspace.store_target)
    with store.write() as conn:
        conn.execute("UPDATE contacts SET attributes = '{}'")
    store.close()
    warned = [w for w in check(workspace)["warnings"] if "order history" in w]  # type: ignore[attr-defined]
    assert warned and warned[0].startswith(f"the store's orders reach back to {day} only")
    # a campaign that counts no orders is not warned about
    workspace.write("campaigns/thanks.toml", THANKS)
    assert not [w for w in check(workspace)["warnings"] if "order history" in w]  # type: ignore[attr-defined]


def test_import_says_how_far_back_the_orders_reach(workspace: Workspace) -> None:
    workspace.write("templates/thanks.j2", TEXT)
    workspace.write("campaigns/thanks.toml", FIRST)
    contacts = workspace.write(
        "customers.csv",
        "id,email,country,shop_orders\nvera,vera@example.com,DE,8\nnina,n@example.com,DE,1\n",
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    day = iso(now_instant() - 20 * 86400)[:10]  # type: ignore[index]
    orders = workspace.write(
        "orders.csv",
        f"id,contact_id,type,occurred_at,amount\no1,vera,order,{day}T10:00:00Z,30\n"
        f"o2,nina,order,{day}T11:00:00Z,20\n",
    )
    result = workspace.cli("import", "events", str(orders))
    assert result.exit_code == 0, result.output
    assert f"order history: orders from {day} to {day} (2 orders of 2 contacts)" in result.stdout
    assert (
        "warning: 1 contact has more orders in the shop (attribute shop_orders) than in "
        "the store: campaigns thanks (post_purchase nth = 1)"
    ) in result.stderr
    again = workspace.cli_json("import", "events", str(orders))
    assert again["history"]["orders"] == 2 and again["history"]["short"] == 1
    assert len(again["warnings"]) == 1


def test_an_audience_can_use_the_shops_own_counters(workspace: Workspace) -> None:
    workspace.write("templates/thanks.j2", TEXT)
    workspace.write(
        "campaigns/thanks.toml",
        THANKS.replace('country = "DE"', 'country = "DE"\nshop_orders = { min = 5 }'),
    )
    customers = [
        shopify_customer(id=1, email="a@example.de", orders_count=8, total_spent="800.00",
                         default_address={"country_code": "DE"}),
        shopify_customer(id=2, email="b@example.de", orders_count=2, total_spent="80.00",
                         default_address={"country_code": "DE"}),
    ]  # fmt: skip
    path = workspace.write("customers.json", json.dumps(customers))
    imported = workspace.cli("import", "contacts", str(path), "--format", "shopify")
    assert imported.exit_code == 0, imported.output
    reach = check(workspace)["reach"]
    assert reach == {"thanks": {"audience": 1, "with_address": 1, "consented": 1, "reachable": 1}}


@pytest.mark.parametrize("rule", ["opt-in", "opt-out", "existing-customer"])
def test_reach_follows_the_consent_rule_as_the_tick_does(workspace: Workspace, rule: str) -> None:
    workspace.write(
        "regard.toml", workspace.config.read_text() + f'\n[consent]\nemail = "{rule}"\n'
    )
    workspace.write("templates/thanks.j2", TEXT)
    workspace.write("campaigns/thanks.toml", THANKS)
    store = open_store(workspace.store_target)
    recent = iso(now_instant() - 3600)
    with store.write() as conn:
        for name, consent in (("yes", 1), ("no", 0), ("unsaid", None), ("unsaid2", None)):
            add_contact(conn, name, country="DE", consent_email=consent)
            add_event(conn, f"o-{name}", name, str(recent))
        add_contact(conn, "new", country="DE", consent_email=None)  # no order: not planned
    store.close()
    reach = check(workspace)["reach"]["thanks"]  # type: ignore[index]
    planned = workspace.cli_json("plan")
    pending = [p["contact_id"] for p in planned if p["decision"] == "pending"]
    expected = {"opt-in": 1, "opt-out": 3 + 1, "existing-customer": 3}[rule]
    assert reach["consented"] == reach["reachable"] == expected
    # the tick agrees for those with an order (the one without is no occasion)
    assert len(pending) == expected - (1 if rule == "opt-out" else 0)


def test_reach_of_a_webhook_campaign_reads_its_consent_attribute(workspace: Workspace) -> None:
    workspace.write(
        "regard.toml", workspace.config.read_text() + '\n[consent]\nwebhook = "opt-in"\n'
    )
    workspace.write("templates/thanks.j2", TEXT)
    workspace.write("campaigns/thanks.toml", THANKS.replace('"email"', '"webhook"'))
    store = open_store(workspace.store_target)
    with store.write() as conn:
        add_contact(conn, "a", country="DE", email=None, attributes={"consent_webhook": True})
        add_contact(conn, "b", country="DE", attributes={"consent_webhook": "yes"})
        add_contact(conn, "c", country="DE", attributes={"consent_webhook": "no"})
        add_contact(conn, "d", country="DE")
    store.close()
    reach = check(workspace)["reach"]
    assert reach == {"thanks": {"audience": 4, "with_address": 4, "consented": 2, "reachable": 2}}
