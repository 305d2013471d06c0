from __future__ import annotations

from conftest import Workspace
from import_helpers import rows


def seed(workspace: Workspace) -> None:
    contacts = workspace.write(
        "c.csv",
        "id,email,phone,first_name,last_name,birthday,signup_at,consent_email,tags,plan\n"
        "1042,jo@b.de,+491711234567,Jürgen,Müller,1980-05-17,2025-01-01T10:00:00+01:00,yes,vip|b2b,pro\n",
    )
    events = workspace.write(
        "e.csv",
        "id,contact_id,type,occurred_at,amount\n"
        "o1,1042,order,2026-01-01T10:00:00Z,49.90\n"
        "o2,1042,order,2026-02-01T10:00:00Z,20.10\n"
        "n1,1042,nps,2026-02-03T10:00:00Z,9\n",
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0


def test_show_json_has_fields_attributes_and_derived_facts(workspace: Workspace) -> None:
    seed(workspace)
    data = workspace.cli_json("contacts", "show", "1042")
    assert data["id"] == "1042" and data["first_name"] == "Jürgen"
    assert data["phone"] == "+491711234567"
    assert data["birthday"] == "1980-05-17"
    assert data["signup_at"] == "2025-01-01T09:00:00Z"
    assert data["consent_email"] is True and data["consent_sms"] is None
    assert data["tags"] == ["vip", "b2b"]
    assert data["attributes"] == {"plan": "pro"} and data["plan"] == "pro"
    assert data["order_count"] == 2 and data["total_spent"] == 70.0
    assert data["first_order_at"] == "2026-01-01T10:00:00Z"
    assert data["last_order_at"] == "2026-02-01T10:00:00Z"
    assert data["last_event_at"] == "2026-02-03T10:00:00Z"


def test_show_for_people_lists_unsubscribes_and_deliveries(workspace: Workspace) -> None:
    seed(workspace)
    result = workspace.cli("contacts", "show", "1042")
    assert result.exit_code == 0
    assert "first_name" in result.stdout and "Jürgen" in result.stdout
    assert "order_count" in result.stdout and "unsubscribed: no" in result.stdout
    assert "latest deliveries: none" in result.stdout
    assert workspace.cli("contacts", "unsubscribe", "1042", "--channel", "sms").exit_code == 0
    after = workspace.cli("contacts", "show", "1042").stdout
    assert "  sms: unsubscribed (" in after


def test_show_an_unknown_contact(workspace: Workspace) -> None:
    result = workspace.cli("contacts", "show", "nope", "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "unknown contact 'nope'" in result.stderr


def test_unsubscribe_all_channels_once(workspace: Workspace) -> None:
    seed(workspace)
    first = workspace.cli("contacts", "unsubscribe", "1042")
    assert first.exit_code == 0 and first.stdout.strip() == "1042 unsubscribed from all channels"
    second = workspace.cli("contacts", "unsubscribe", "1042")
    assert second.stdout.strip() == "1042 was already unsubscribed from all channels"
    email = workspace.cli("contacts", "unsubscribe", "1042", "--channel", "email")
    assert email.exit_code == 0  # all channels include e-mail: nothing changes
    assert email.stdout.strip() == "1042 was already unsubscribed from the email channel"
    stored = [
        (r["channel"], r["address"], r["reason"], r["kind"], r["source"])
        for r in rows(workspace.store_target, "SELECT * FROM suppressions ORDER BY rowid")
    ]
    assert stored == [("*", None, "unsubscribed", "unsubscribed", "cli")]
    assert workspace.cli("contacts", "unsubscribe", "nope").exit_code == 1
    bad = workspace.cli("contacts", "unsubscribe", "1042", "--channel", "fax")
    assert bad.exit_code == 2
