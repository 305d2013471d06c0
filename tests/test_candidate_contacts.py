"""The due contacts a tick reads (``Occasions.candidates``, its columns picked once per
query) are exactly the mappings ``contact_from_row`` makes of the same rows, with the
derived facts as of the tick's instant in place of the stored ones."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regard.render.context import contact_view
from regard.store import Store
from regard.store.contacts import DERIVED_FACTS, contact_from_row
from regard.store.occasions import Occasion, occasion_order
from shop_rows import add_contact, add_delivery, add_event, epoch, refresh_facts

AT = epoch("2026-03-01T10:00:00Z")


def _shop(store: Store) -> list[Occasion]:
    add_contact(
        store, "c1", first_name="Anna", birthday="1980-02-29", tags=["vip", "de"],
        attributes={"plan": "gold", "city": "shadowed", "since": "2020-01-01"},
        city="Berlin", consent_sms=0, signup_at="2025-01-01T00:00:00Z", timezone="Europe/Berlin",
    )  # fmt: skip
    add_contact(store, "c2", email=None, consent_email=None, tags=[], attributes={})
    add_contact(store, "c3", attributes={"total_spent": 5}, locale="de")
    add_event(store, "o1", "c1", "2026-01-01T10:00:00Z", amount=10.105)
    add_event(store, "o2", "c1", "2026-02-01T10:00:00Z", amount=20.0)
    add_event(store, "o3", "c1", "2026-04-01T10:00:00Z", amount=99.0)  # after the tick
    add_event(store, "v1", "c3", "2026-02-02T10:00:00Z", type="visit")
    refresh_facts(store)
    return _shop_occasions()


def _expected(store: Store, occasion: Occasion) -> dict[str, Any]:
    row = store.conn.execute("SELECT * FROM contacts WHERE id = ?", (occasion.contact_id,))
    contact = contact_from_row(row.fetchone())
    # the facts as of the tick: the orders that had occurred by then
    orders = [
        (r[0], r[1])
        for r in store.conn.execute(
            "SELECT occurred_at, amount FROM events WHERE contact_id = ? AND type = 'order'"
            " AND occurred_at <= ? ORDER BY occurred_at",
            (occasion.contact_id, AT),
        )
    ]
    activity = store.conn.execute(
        "SELECT max(occurred_at) FROM events WHERE contact_id = ? AND occurred_at <= ?",
        (occasion.contact_id, AT),
    ).fetchone()[0]
    facts = contact_from_row({
        "first_order_at": orders[0][0] if orders else None,
        "last_order_at": orders[-1][0] if orders else None,
        "order_count": len(orders),
        "total_spent": sum(a for _, a in orders) if orders else 0,
        "last_event_at": activity,
    })  # fmt: skip
    contact.update({name: facts[name] for name in DERIVED_FACTS})
    return contact


def test_candidates_read_each_contact_as_contact_from_row(store: Store) -> None:
    occasions = _shop(store)
    found = store.occasions.candidates("a-campaign", occasions, AT)
    assert [c.occasion for c in found] == sorted(occasions, key=occasion_order)
    assert [c.occasion.started_at for c in found] == [None, AT - 100, None]
    for candidate in found:
        expected = _expected(store, candidate.occasion)
        assert candidate.contact == expected
        assert list(candidate.contact) == list(expected)  # the same keys in the same order
        assert {k: type(v) for k, v in candidate.contact.items()} == {
            k: type(v) for k, v in expected.items()
        }
    first = next(c.contact for c in found if c.occasion.contact_id == "c1")
    assert first["city"] == "Berlin" and first["plan"] == "gold" and first["tags"] == ["vip", "de"]
    assert first["order_count"] == 2 and first["total_spent"] == 30.11
    assert first["consent_sms"] is False and first["consent_email"] is True


def test_a_candidates_contact_answers_before_it_is_converted_as_after(store: Store) -> None:
    """A candidate's contact is read from its row only as far as it is asked: ``get``,
    ``[]`` and ``in`` of any key (a stored column, a converted one, an attribute, one a
    column shadows, one it lacks) before the row is converted give what the whole mapping
    gives, and leave the row unconverted; a template's view of it is the same mapping; and
    the row pickled (as the render worker gets it) is the same mapping."""
    keys = [*_expected(store, _shop(store)[2]), "plan", "since", "state", "nothing"]
    for asked in keys:
        for candidate in store.occasions.candidates("a-campaign", _shop_occasions(), AT):
            expected = _expected(store, candidate.occasion)
            fresh = store.occasions.candidates("a-campaign", [candidate.occasion], AT)[0]
            value = fresh.contact.get(asked, "default")
            assert value == expected.get(asked, "default"), asked
            assert type(value) is type(expected.get(asked, "default")), asked
            assert (asked in fresh.contact) == (asked in expected), asked
            if asked in expected:
                assert fresh.contact[asked] == expected[asked], asked
                assert type(fresh.contact[asked]) is type(expected[asked]), asked
            else:
                with pytest.raises(KeyError):
                    fresh.contact[asked]
            assert fresh.contact._contact is None, asked  # nothing converted wholesale
            view = contact_view(fresh.contact)
            assert dict(view) == contact_view(expected), asked
    for candidate in store.occasions.candidates("a-campaign", _shop_occasions(), AT):
        copied = pickle.loads(pickle.dumps(candidate.contact))
        assert type(copied) is type(candidate.contact)
        assert copied == _expected(store, candidate.occasion)
        assert list(copied) == list(_expected(store, candidate.occasion))


def _shop_occasions() -> list[Occasion]:
    return [
        Occasion(AT, "c3", "k:3", None, None),
        Occasion(AT - 5, "c2", "k:2", "o1", AT - 100),
        Occasion(AT - 5, "c1", "k:1", "o2", None),
    ]


def test_occasion_order_is_the_occasions_own(store: Store) -> None:
    occasions = [
        Occasion(3, "b", "x", None), Occasion(1, "b", "y", "e"), Occasion(1, "a", "z", None),
        Occasion(1, "b", "x", "e2", 5), Occasion(1, "b", "x", "e1", 9),
    ]  # fmt: skip
    assert sorted(occasions, key=occasion_order) == sorted(occasions)
    assert [o.started_at for o in sorted(occasions, key=occasion_order)] == [
        o.started_at for o in sorted(occasions)
    ]


due_occasions = st.lists(
    st.builds(
        Occasion,
        st.integers(AT - 3, AT),
        st.sampled_from(["c1", "c2", "c3", "unknown"]),
        st.sampled_from(["k:1", "k:2", "since:2026-01-01T00:00:00Z"]),
        st.one_of(st.none(), st.sampled_from(["o1", "o2", "v1"])),
        st.one_of(st.none(), st.integers(AT - 1000, AT)),
    ),
    max_size=12,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(occasions=due_occasions, unrecorded=st.booleans())
def test_each_candidate_is_its_due_occasion_itself(
    store: Store, occasions: list[Occasion], unrecorded: bool
) -> None:
    """The candidates hold the very occasions asked for (not rebuilt from the query's rows):
    those of known contacts, less the ones the campaign has recorded, in occasion order."""
    if store.contacts.get("c1") is None:
        _shop(store)
        add_delivery(store, "a-campaign", "c2", "sent", "2026-02-01T00:00:00Z", occasion="k:2")
    found = store.occasions.candidates("a-campaign", occasions, AT, unrecorded=unrecorded)
    recorded = {("c2", "k:2")} if unrecorded else set()
    expected = [
        (i, o)
        for i, o in enumerate(occasions)
        if o.contact_id != "unknown" and (o.contact_id, o.occasion) not in recorded
    ]
    expected.sort(key=lambda p: (p[1].due_at, p[1].contact_id, p[1].occasion, p[0]))
    assert [id(c.occasion) for c in found] == [id(o) for _, o in expected]
    assert [c.contact["id"] for c in found] == [o.contact_id for _, o in expected]
