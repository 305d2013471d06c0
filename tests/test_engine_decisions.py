"""The tick's decisions in the contract's order, recorded once per occasion."""

from __future__ import annotations

import hashlib

from regard.config import Config
from regard.engine import delivery_id, holdout_share, plan, tick
from regard.store import Store
from shop_rows import add_contact, add_event, campaign, deliveries, epoch, instant

CONFIG = Config(timezone="UTC")


def order(store: Store, contact_id: str, event_id: str, when: str = "2026-03-01T10:00:00Z") -> None:
    with store.write() as conn:
        add_event(conn, event_id, contact_id, when, amount=50)


def test_holdout_is_the_contracts_hash() -> None:
    digest = hashlib.sha256(b"thank-you:1042").digest()
    assert holdout_share("thank-you", "1042") == int.from_bytes(digest[:8], "big") / 2**64
    key = b"9:thank-you,4:1042,2:o1,"  # netstrings (docs/architecture.md, Delivery ids)
    due = 1767225600  # 0x006955b900: the due instant in 10 hex digits, then 22 of the hash
    expected = "d_006955b900" + hashlib.sha256(key).hexdigest()[:22]
    assert delivery_id("thank-you", "1042", "o1", due) == expected


def test_skip_reasons_in_order(store: Store) -> None:
    with store.write() as conn:
        add_contact(conn, "no-consent", consent_email=None)
        add_contact(conn, "refused", consent_email=0)
        add_contact(conn, "gone")
        conn.execute(
            "INSERT INTO suppressions (contact_id, channel, reason, created_at)"
            " VALUES ('gone', '*', 'unsubscribe', 0)"
        )
        add_contact(conn, "bounced", email="old@example.com")
        conn.execute(
            "INSERT INTO suppressions (address, channel, reason, created_at)"
            " VALUES ('old@example.com', 'email', 'bounce', 0)"
        )
        add_contact(conn, "no-mail", email=None)
        # no address wins over no consent and unsubscribed (Part 2's order)
        add_contact(conn, "all-three", email=None, consent_email=0)
        for contact in ("no-consent", "refused", "gone", "bounced", "no-mail", "all-three"):
            add_event(conn, f"o-{contact}", contact, "2026-03-01T10:00:00Z")
    thanks = campaign("thanks", {"type": "post_purchase"})
    result = tick(store, CONFIG, [thanks], instant("2026-03-01T12:00:00Z"))
    reasons = {d.contact_id: (d.decision, d.reason) for d in result.decisions}
    assert reasons == {
        "no-consent": ("skipped", "no_consent"),
        "refused": ("skipped", "no_consent"),
        "gone": ("skipped", "unsubscribed"),
        "bounced": ("skipped", "unsubscribed"),
        "no-mail": ("skipped", "no_address"),
        "all-three": ("skipped", "no_address"),
    }
    assert [(r["contact_id"], r["state"], r["reason"]) for r in deliveries(store.conn)] == sorted(
        (c, d, r) for c, (d, r) in reasons.items()
    )


def test_opt_out_channels_and_full_postal_address(store: Store) -> None:
    with store.write() as conn:
        address = {"street": "Lindenstraße 5", "postal_code": "10969", "city": "Berlin",
                   "country": "DE"}  # fmt: skip
        add_contact(conn, "anna", first_name="Anna", **address)
        add_contact(conn, "firma", company="Blumen GmbH", **address)
        add_contact(conn, "no-city", first_name="Ben", **{**address, "city": None})
        add_contact(conn, "nameless", **address)
        add_contact(conn, "refused", first_name="Eva", consent_card=0, **address)
        for contact in ("anna", "firma", "no-city", "nameless", "refused"):
            add_event(conn, f"o-{contact}", contact, "2026-03-01T10:00:00Z")
            # one card already sent: with a cap of one, a complete address ends at the cap
            conn.execute(
                "INSERT INTO deliveries (id, campaign, contact_id, occasion, channel, provider,"
                " state, due_at, created_at, sent_at, updated_at)"
                " VALUES (?, 'earlier', ?, 'x', 'card', 'outbox', 'sent', 0, 0, ?, 0)",
                (f"d-{contact}", contact, epoch("2026-02-28T10:00:00Z")),
            )
    config = Config(timezone="UTC", limits={"contact_max": 1})
    cards = campaign("cards", {"type": "post_purchase"}, channel="card")
    decided = {
        d.contact_id: d.reason
        for d in plan(store, config, [cards], instant("2026-03-01T12:00:00Z"))
    }
    assert decided == {
        "anna": "capped",
        "firma": "capped",
        "no-city": "no_address",
        "nameless": "no_address",
        "refused": "no_consent",
    }


def test_held_out_contacts_are_recorded_never_pending(store: Store) -> None:
    with store.write() as conn:
        for i in range(40):
            add_contact(conn, f"c{i}")
            add_event(conn, f"o{i}", f"c{i}", "2026-03-01T10:00:00Z")
    # holdout 0.5 and no template needed for the held-out half: check who is held out
    held = {f"c{i}" for i in range(40) if holdout_share("h", f"c{i}") < 0.5}
    assert 5 < len(held) < 35
    with store.write() as conn:
        conn.executemany(
            "UPDATE contacts SET consent_email = 0 WHERE id = ?",
            [(f"c{i}",) for i in range(40) if f"c{i}" not in held],
        )
    result = tick(store, CONFIG, [campaign("h", {"type": "post_purchase"}, holdout=0.5)],
                  instant("2026-03-01T12:00:00Z"))  # fmt: skip
    assert {d.contact_id for d in result.decisions if d.decision == "held_out"} == held


def test_recorded_occasions_are_never_revisited(store: Store) -> None:
    with store.write() as conn:
        add_contact(conn, "anna", consent_email=0)
        add_event(conn, "o1", "anna", "2026-03-01T10:00:00Z")
    thanks = campaign("thanks", {"type": "post_purchase"})
    first = tick(store, CONFIG, [thanks], instant("2026-03-01T12:00:00Z"))
    assert [d.reason for d in first.decisions] == ["no_consent"]
    with store.write() as conn:
        conn.execute("UPDATE contacts SET consent_email = 1")
    again = tick(store, CONFIG, [thanks], instant("2026-03-02T12:00:00Z"))
    assert again.decisions == []
    assert again.evaluated == 1
    assert len(deliveries(store.conn)) == 1


def test_plan_writes_nothing(store: Store) -> None:
    with store.write() as conn:
        add_contact(conn, "anna", consent_email=0)
        add_event(conn, "o1", "anna", "2026-03-01T10:00:00Z")
    thanks = campaign("thanks", {"type": "post_purchase"})
    decided = plan(store, CONFIG, [thanks], instant("2026-03-01T12:00:00Z"))
    assert [d.as_json() for d in decided] == [
        {
            "campaign": "thanks",
            "contact_id": "anna",
            "occasion": "o1",
            "due_at": "2026-03-01T10:00:00Z",
            "decision": "skipped",
            "reason": "no_consent",
        }
    ]
    assert deliveries(store.conn) == []


def test_enabling_a_campaign_never_reaches_back(store: Store) -> None:
    with store.write() as conn:
        add_contact(conn, "anna", consent_email=0)
        add_event(conn, "old", "anna", "2025-01-01T10:00:00Z")
        add_event(conn, "new", "anna", "2026-02-28T10:00:00Z")
    thanks = campaign("thanks", {"type": "post_purchase"}, max_lateness="2d")
    decided = plan(store, CONFIG, [thanks], instant("2026-03-01T12:00:00Z"))
    assert [d.occasion for d in decided] == ["new"]


def test_starts_and_ends_bound_the_due_instant(store: Store) -> None:
    with store.write() as conn:
        add_contact(conn, "anna", consent_email=0)
        add_event(conn, "before", "anna", "2026-02-28T23:00:00Z")
        add_event(conn, "inside", "anna", "2026-03-01T00:00:00Z")
        add_event(conn, "last", "anna", "2026-03-02T23:59:59Z")
        add_event(conn, "after", "anna", "2026-03-03T00:00:00Z")
    thanks = campaign("thanks", {"type": "post_purchase"}, max_lateness="10d",
                      starts_at="2026-03-01", ends_at="2026-03-02")  # fmt: skip
    decided = plan(store, CONFIG, [thanks], instant("2026-03-05T00:00:00Z"))
    assert sorted(d.occasion for d in decided) == ["inside", "last"]
    assert epoch("2026-03-02T23:59:59Z") in {d.due_at for d in decided}


def test_an_event_reimported_at_another_time_is_not_a_new_occasion(store: Store) -> None:
    with store.write() as conn:
        add_contact(conn, "anna", consent_email=0)
        add_event(conn, "o1", "anna", "2026-03-01T10:00:00Z")
    thanks = campaign("thanks", {"type": "post_purchase"})
    assert len(tick(store, CONFIG, [thanks], instant("2026-03-01T12:00:00Z")).decisions) == 1
    with store.write() as conn:
        add_event(conn, "o1", "anna", "2026-03-03T10:00:00Z")  # the shop corrected the time
    assert tick(store, CONFIG, [thanks], instant("2026-03-03T12:00:00Z")).decisions == []
    # a lapse, though, is keyed by the last activity: a moved order starts a new one
    lapse = campaign("lapse", {"type": "inactivity", "after": "1d"}, max_lateness="1d")
    first = tick(store, CONFIG, [lapse], instant("2026-03-04T12:00:00Z"))
    assert [d.occasion for d in first.decisions] == ["since:2026-03-03T10:00:00Z"]
    with store.write() as conn:
        add_event(conn, "o1", "anna", "2026-03-04T13:00:00Z")
    second = tick(store, CONFIG, [lapse], instant("2026-03-05T14:00:00Z"))
    assert [d.occasion for d in second.decisions] == ["since:2026-03-04T13:00:00Z"]


def test_an_address_unsubscribes_as_written_lower_cased_or_hashed(store: Store) -> None:
    """The tick's rule is dispatch's: the channel or '*', the contact or its address."""
    with store.write() as conn:
        for name, email in [("upper", "Ünal@Example.com"), ("hashed", "Gone@Example.com"),
                            ("other-channel", "sms-only@example.com"), ("clear", "ok@x.de")]:  # fmt: skip
            add_contact(conn, name, email=email)
            add_event(conn, f"o-{name}", name, "2026-03-01T10:00:00Z")
        conn.executemany(
            "INSERT INTO suppressions (contact_id, channel, address, reason, created_at)"
            " VALUES (NULL, ?, ?, 'bounce', 0)",
            [
                ("email", "ünal@example.com"),  # lower-cased as Python does it
                ("*", store.pseudonyms.address("gone@example.com")),
                ("sms", "sms-only@example.com"),
            ],
        )
    names = ("upper", "hashed", "other-channel", "clear")
    asked = [(name, store.contacts.get(name)["email"]) for name in names]
    assert store.decisions.unsubscribed("email", asked) == {"upper", "hashed"}
    assert store.decisions.unsubscribed("sms", [("other-channel", "sms-only@example.com")]) == {
        "other-channel"
    }
    assert store.decisions.unsubscribed("email", []) == set()
    thanks = campaign("thanks", {"type": "post_purchase"})
    result = tick(store, CONFIG, [thanks], instant("2026-03-01T12:00:00Z"))
    unsubscribed = {d.contact_id for d in result.decisions if d.reason == "unsubscribed"}
    assert unsubscribed == {"upper", "hashed"}
