"""``lifecycle.move_through``: two moves in one statement leave what the two moves leave."""

from __future__ import annotations

from decimal import Decimal

import pytest

from regard.store import Store
from regard.store.deliveries import claimed_values, sent_values
from regard.store.lifecycle import (
    DeliveryState,
    IllegalTransition,
    NewDelivery,
    create,
    move,
    move_through,
)
from shop_rows import add_contact

P, S, OK = DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.SENT


def _pending(store: Store, *ids: str) -> None:
    for contact in ids:
        add_contact(store, contact)
    rows = [_new(contact) for contact in ids]
    with store.write() as conn:
        create(conn, rows, at=100)


def _new(contact: str) -> NewDelivery:
    return NewDelivery(
        id=f"d_{contact}", campaign="thanks", contact_id=contact, occasion="o1",
        event_id=None, channel="email", provider="mail", state=P, reason=None,
        priority=0, due_at=100,
    )  # fmt: skip


def _row(store: Store, delivery_id: str) -> dict[str, object]:
    row = store.conn.execute("SELECT * FROM deliveries WHERE id = ?", [delivery_id]).fetchone()
    got = dict(zip(row.keys(), tuple(row), strict=True))
    for column in ("id", "contact_id"):
        got.pop(column)
    return got


def _log(store: Store, delivery_id: str) -> list[tuple[object, ...]]:
    rows = store.conn.execute(
        "SELECT at, state, detail FROM delivery_log WHERE delivery_id = ? ORDER BY rowid",
        [delivery_id],
    )
    return [tuple(r) for r in rows]


def test_claimed_and_sent_in_one_statement_as_in_two(store: Store) -> None:
    _pending(store, "c1", "c2")
    claimed = claimed_values("run-1", 200, 60)
    sent = sent_values(250, None, Decimal("1.50"))
    with store.write() as conn:
        move(conn, ["d_c1"], P, S, at=250, now=200, detail="claimed by run-1", values=claimed)
        move(conn, ["d_c1"], S, OK, at=250, now=200, detail={"d_c1": "attempt 1"},
             values=sent, owner="run-1")  # fmt: skip
        moved = move_through(
            conn, ["d_c2", "d_missing"], P, S, OK, at=250, now=200,
            details=("claimed by run-1", {"d_c2": "attempt 1"}), values=(claimed, sent),
        )  # fmt: skip
    assert moved == ["d_c2"]
    assert _row(store, "d_c2") == _row(store, "d_c1")
    assert _row(store, "d_c2")["state"] == "sent"
    assert _row(store, "d_c2")["attempts"] == 1
    assert _row(store, "d_c2")["lease_owner"] is None
    assert _log(store, "d_c2") == _log(store, "d_c1")
    assert [state for _, state, _ in _log(store, "d_c2")] == ["pending", "sending", "sent"]


def test_each_step_must_be_a_transition_the_lifecycle_allows(store: Store) -> None:
    _pending(store, "c1")
    with store.write() as conn, pytest.raises(IllegalTransition):
        move_through(conn, ["d_c1"], P, OK, S, at=250, now=200, details=("", ""), values=({}, {}))
    assert _row(store, "d_c1")["state"] == "pending"
