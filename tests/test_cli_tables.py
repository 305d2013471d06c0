"""Tables for people: headers, aligned columns, and cells that cannot forge lines."""

from __future__ import annotations

from conftest import Workspace
from regard.cli.tables import columns, printable
from regard.store import open_store
from shop_rows import add_contact, add_delivery


def test_cells_are_escaped_and_columns_aligned() -> None:
    lines = columns(["ID", "NAME"], [["a\nb", "Jäger"], ["long-id", None], ["\x1b[31m", "x"]])
    assert lines == [
        "ID        NAME",
        "a\\nb      Jäger",
        "long-id   -",
        "\\x1b[31m  x",
    ]
    assert printable("ok\u2028no") == "ok\\u2028no"


def test_deliveries_has_a_header_and_one_line_per_delivery(workspace: Workspace) -> None:
    with open_store(workspace.store_target) as store, store.write() as conn:
        add_contact(conn, "c1\nforged  sent")
        add_delivery(conn, "thanks", "c1\nforged  sent", "pending", "2026-11-30T10:00:00Z")
        add_contact(conn, "c2")
        add_delivery(
            conn, "thanks", "c2", "sent", "2026-11-30T10:00:00Z", sent="2026-11-30T11:00:00Z"
        )
    lines = workspace.cli("deliveries").stdout.splitlines()
    assert lines[0].split() == [
        "DELIVERY", "STATE", "CAMPAIGN", "CONTACT", "OCCASION", "CHANNEL", "PROVIDER",
        "DUE", "SENT", "NEXT", "ATTEMPT", "ATTEMPTS", "REASON",
    ]  # fmt: skip
    assert len(lines) == 4 and lines[-1] == "2 deliveries"
    assert "c1\\nforged" in lines[1]
    state_column = lines[0].index("STATE")
    assert [line[state_column:].split()[0] for line in lines[1:3]] == ["pending", "sent"]


def test_retry_a_selection_of_dead_deliveries(workspace: Workspace) -> None:
    with open_store(workspace.store_target) as store, store.write() as conn:
        for contact, campaign, created in (
            ("c1", "birthday", "2026-11-20T10:00:00Z"),
            ("c2", "birthday", "2026-11-29T10:00:00Z"),
            ("c3", "thanks", "2026-11-29T10:00:00Z"),
        ):
            add_contact(conn, contact)
            add_delivery(conn, campaign, contact, "dead", created, reason="HTTP 400")
    result = workspace.cli(
        "deliveries", "retry", "--state", "dead", "--campaign", "birthday", "--since", "2026-11-28"
    )
    assert result.exit_code == 0, result.output
    assert "1 dead deliveries selected" in result.stdout and "retried 1 deliveries" in result.stdout
    states = {d["contact_id"]: d["state"] for d in workspace.cli_json("deliveries")}
    assert states == {"c1": "dead", "c2": "pending", "c3": "dead"}
    assert workspace.cli("deliveries", "retry").exit_code == 2  # neither ids nor --state
