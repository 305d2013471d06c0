"""Delivery ids: no two occasions share one (the encoding is injective, and ids with control
characters are refused at import), and a store whose rows were recorded under the earlier
encoding keeps them: no occasion is decided, or sent, twice."""

from __future__ import annotations

import hashlib
import json

from conftest import Workspace
from regard.engine import delivery_id, tick
from regard.store import open_store
from regard.workspace import load_config
from shop_rows import add_contact, add_delivery, add_event, campaign, instant

THANKS = "{% block subject %}Danke{% endblock %}{% block text %}Danke!{% endblock %}"


def old_delivery_id(campaign_id: str, contact_id: str, occasion: str) -> str:
    """The id regard gave occasions before the netstring encoding."""
    raw = f"{campaign_id}\x1f{contact_id}\x1f{occasion}".encode()
    return "d_" + hashlib.sha256(raw).hexdigest()[:32]


def test_ids_that_joined_alike_are_told_apart() -> None:
    assert old_delivery_id("c", "x", "e\x1fy") == old_delivery_id("c", "x\x1fe", "y")
    assert delivery_id("c", "x", "e\x1fy", 0) != delivery_id("c", "x\x1fe", "y", 0)
    assert delivery_id("c", "ab", "c", 0) != delivery_id("c", "a", "bc", 0)
    assert (
        delivery_id("c", "x", "o", 0).startswith("d_") and len(delivery_id("c", "x", "o", 0)) == 34
    )


def test_an_id_is_the_hash_of_the_three_netstrings() -> None:
    # byte lengths, not characters: "ö" is two bytes, "€" three
    key = "8:win-back,3:kö,9:since:€,".encode()
    digest = hashlib.sha256(key).hexdigest()
    assert delivery_id("win-back", "kö", "since:€", 1767225600) == "d_006955b900" + digest[:22]


def test_ids_follow_the_due_instant() -> None:
    """A tick records a campaign's occasions in due order: their ids come in that order
    too, so they are appended to the ids' index and the delivery log's, not scattered."""
    dues = [1767225600, 1767225601, 1767312000, 2**40 - 1]
    ids = [delivery_id("win-back", f"c{9 - i}", f"since:{i}", due) for i, due in enumerate(dues)]
    assert ids == sorted(ids) and all(len(i) == 34 for i in ids)


def test_an_id_with_a_control_character_is_a_bad_row(workspace: Workspace) -> None:
    path = workspace.write("contacts.csv", "id,email\nok,ok@example.com\nx\x1fe,x@example.com\n")
    result = workspace.cli("import", "contacts", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: id: contains the control character U+001F" in result.output
    events = workspace.write(
        "events.jsonl",
        json.dumps({"id": "e\x1fy", "contact_id": "ok", "occurred_at": "2026-03-01T10:00:00Z"})
        + "\n"
        + json.dumps({"id": "e2", "contact_id": "o\nk", "occurred_at": "2026-03-01T10:00:00Z"})
        + "\n",
    )
    result = workspace.cli("import", "events", str(events))
    assert result.exit_code == 1
    assert f"{events}:1: id: contains the control character U+001F" in result.output
    assert f"{events}:2: contact_id: contains the control character U+000A" in result.output


def test_occasions_whose_old_ids_collide_are_both_recorded(workspace: Workspace) -> None:
    """A store that holds such ids already (imported before they were refused): contact
    ``x`` with order ``e␟y`` and contact ``x␟e`` with order ``y``. The tick used to die with
    an IntegrityError, so no campaign sent anything; now both occasions are recorded."""
    workspace.write("templates/thanks.j2", THANKS)
    config = load_config(workspace.config)
    thanks = campaign("thanks", {"type": "post_purchase"}, template="thanks")
    with open_store(workspace.store_target) as store:
        with store.write() as conn:
            add_contact(conn, "x")
            add_contact(conn, "x\x1fe")
            add_event(conn, "e\x1fy", "x", "2026-03-02T10:00:00Z", amount=10)
            add_event(conn, "y", "x\x1fe", "2026-03-02T10:00:00Z", amount=10)
        result = tick(store, config, [thanks], instant("2026-03-02T11:00:00Z"))
        assert [d.decision for d in result.decisions] == ["pending", "pending"]
        ids = [r[0] for r in store.conn.execute("SELECT id FROM deliveries")]
    assert len(set(ids)) == 2


def test_an_occasion_recorded_under_the_old_id_is_not_decided_again(
    workspace: Workspace,
) -> None:
    workspace.write("templates/thanks.j2", THANKS)
    config = load_config(workspace.config)
    thanks = campaign("thanks", {"type": "post_purchase"}, template="thanks")
    old = old_delivery_id("thanks", "anna", "o1")
    with open_store(workspace.store_target) as store:
        with store.write() as conn:
            add_contact(conn, "anna")
            add_event(conn, "o1", "anna", "2026-03-02T10:00:00Z", amount=10)
            add_event(conn, "o2", "anna", "2026-03-02T10:30:00Z", amount=10)
            add_delivery(
                conn, "thanks", "anna", "sent", "2026-03-02T10:05:00Z", occasion="o1",
                sent="2026-03-02T10:05:00Z",
            )  # fmt: skip
            conn.execute("UPDATE deliveries SET id = ?", (old,))
        result = tick(store, config, [thanks], instant("2026-03-02T11:00:00Z"))
        rows = dict(store.conn.execute("SELECT occasion, id FROM deliveries").fetchall())
        due = store.conn.execute("SELECT due_at FROM deliveries WHERE occasion = 'o2'").fetchone()
    assert [(d.occasion, d.decision) for d in result.decisions] == [("o2", "pending")]
    assert rows == {"o1": old, "o2": delivery_id("thanks", "anna", "o2", due[0])}
