"""The contact field ``address2``: imported, shown, forgotten, and carried in a card's
postal address (``to.address2``) with the contact's ``state`` attribute."""

from __future__ import annotations

from conftest import Workspace


def test_address2_is_imported_and_goes_on_the_card(workspace: Workspace) -> None:
    workspace.write(
        "campaigns/karte.toml",
        'channel = "card"\nprovider = "outbox"\ntemplate = "karte"\n'
        '[trigger]\ntype = "post_purchase"\n',
    )
    workspace.write("templates/karte.j2", "{% block card %}Danke!{% endblock %}")
    contacts = workspace.write(
        "contacts.csv",
        "id,first_name,last_name,street,address2,postal_code,city,country,state\n"
        "c1,Jane,Doe,1 Main St,Apt 4B,10001,New York,US,NY\n"
        "c2,Eva,Schön,Am Markt 2,,04109,Leipzig,DE,\n",
    )
    events = workspace.write(
        "events.csv",
        "id,contact_id,type,occurred_at,amount\n"
        "o1,c1,order,2026-05-20T10:00:00,10\no2,c2,order,2026-05-20T10:00:00,10\n",
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0
    shown = workspace.cli_json("contacts", "show", "c1")
    assert shown["address2"] == "Apt 4B"

    assert workspace.cli("run", "--at", "2026-05-20T12:00:00").exit_code == 0
    by_contact = {r["contact_id"]: r["to"] for r in workspace.outbox()}
    assert by_contact["c1"] == {
        "name": "Jane Doe", "company": "", "street": "1 Main St", "address2": "Apt 4B",
        "postal_code": "10001", "city": "New York", "country": "US", "state": "NY",
    }  # fmt: skip
    assert "address2" not in by_contact["c2"] and "state" not in by_contact["c2"]

    assert workspace.cli("contacts", "forget", "c1").exit_code == 0
    assert workspace.cli("contacts", "show", "c1").exit_code != 0
