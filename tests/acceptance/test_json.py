"""SPEC "JSON output": one document on stdout and nothing else, the fields of each
command's document, null rules, UTC ISO 8601 times."""

from __future__ import annotations

import json
import re
from typing import Any

from .conftest import Shop

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
DELIVERY_FIELDS = {"delivery_id", "campaign", "contact_id", "occasion", "state", "reason",
                   "channel", "provider", "due_at", "created_at", "sent_at", "attempts"}  # fmt: skip
CONTACT_FIELDS = {"id", "email", "phone", "first_name", "last_name", "salutation", "company",
                  "locale", "timezone", "country", "street", "postal_code", "city", "birthday",
                  "signup_at", "consent_email", "consent_sms", "consent_card", "tags"}  # fmt: skip
FACTS = {"first_order_at", "last_order_at", "order_count", "total_spent", "last_event_at"}


def utc_or_null(value: Any) -> bool:
    return value is None or bool(ISO_UTC.match(value))


def mixed_shop(shop: Shop) -> Shop:
    """Sent, skipped and held-out deliveries of a campaign with a goal, at 2026-03-01."""
    held = next(f"k{n}" for n in range(500) if _share("thanks", f"k{n}") < 0.5)
    sent = next(f"k{n}" for n in range(500) if _share("thanks", f"k{n}") >= 0.5)
    shop.campaign("thanks", 'type = "post_purchase"\n', holdout=0.5,
                  body='[goal]\nevent = "order"\nwithin = "30d"\n')  # fmt: skip
    shop.campaign("birthday", 'type = "anniversary"\nfield = "birthday"\n')
    shop.contacts(
        {"id": held, "lieblingsfarbe": "grün"},
        {"id": sent, "birthday": "1990-03-01"},
        {"id": "refused", "consent_email": False},
    )
    for contact in (held, sent, "refused"):
        shop.order(f"o-{contact}", contact, "2026-03-01T09:00:00Z", 30)
    shop.order("again", sent, "2026-03-10T09:00:00Z", 30)
    shop.tick("2026-03-01T10:00:00Z")
    return shop


def _share(campaign: str, contact: str) -> float:
    import hashlib

    digest = hashlib.sha256(f"{campaign}:{contact}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def test_deliveries_json(shop: Shop) -> None:
    rows = mixed_shop(shop).deliveries()
    states = sorted((d["campaign"], d["state"], d["reason"]) for d in rows)
    assert states == [
        ("birthday", "sent", None),
        ("thanks", "held_out", None),
        ("thanks", "sent", None),
        ("thanks", "skipped", "no_consent"),
    ]
    for row in rows:
        assert set(row) >= DELIVERY_FIELDS
        for key in ("due_at", "created_at", "sent_at"):
            assert utc_or_null(row[key]), (key, row[key])
        assert (row["sent_at"] is not None) == (row["state"] == "sent")
        assert isinstance(row["attempts"], int)
        assert row["channel"] == "email"
        assert row["provider"] == "outbox"
    birthday = next(r for r in rows if r["campaign"] == "birthday")
    assert birthday["occasion"] == "birthday:2026"
    assert birthday["due_at"] == "2026-03-01T08:00:00Z"


def test_plan_json(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\ndelay = "1h"\n')
    shop.contacts({"id": "c1"}, {"id": "c2", "email": None})
    shop.order("o1", "c1", "2026-03-01T09:00:00+01:00")
    shop.order("o2", "c2", "2026-03-01T09:00:00+01:00")
    plan = shop.plan("2026-03-01T10:00:00+01:00")
    assert sorted(plan, key=lambda d: d["contact_id"]) == [
        {"campaign": "thanks", "contact_id": "c1", "occasion": "o1",
         "due_at": "2026-03-01T09:00:00Z", "decision": "pending", "reason": None},
        {"campaign": "thanks", "contact_id": "c2", "occasion": "o2",
         "due_at": "2026-03-01T09:00:00Z", "decision": "skipped", "reason": "no_address"},
    ]  # fmt: skip


def test_report_json(shop: Shop) -> None:
    mixed_shop(shop)
    report = shop.json("report", "--since", "2026-01-01", "--until", "2026-12-31")
    assert {"campaigns", "retention"} <= set(report)
    campaigns = report["campaigns"]
    assert set(campaigns) == {"thanks", "birthday"}
    thanks = campaigns["thanks"]
    for key in ("sent", "held_out", "pending", "dead"):
        assert isinstance(thanks[key], int), key
    assert (thanks["sent"], thanks["held_out"], thanks["pending"], thanks["dead"]) == (1, 1, 0, 0)
    assert thanks["skipped"] == {"no_consent": 1}
    conversion = thanks["conversion"]
    assert {"contacted_rate", "holdout_rate", "uplift", "ci_low", "ci_high"} <= set(conversion)
    assert conversion["contacted_rate"] == 1.0
    assert conversion["holdout_rate"] == 0.0
    assert "conversion" not in campaigns["birthday"] or campaigns["birthday"]["conversion"] is None
    assert campaigns["birthday"]["skipped"] == {}
    retention = report["retention"]
    assert {"repeat_purchase_rate", "churn_rate", "retention_rate", "average_order_value",
            "purchase_frequency", "nps"} <= set(retention)  # fmt: skip
    assert retention["average_order_value"] == 30


def test_contacts_show_json(shop: Shop) -> None:
    shop.contacts({"id": "c1", "lieblingsfarbe": "grün", "tags": ["vip"]})
    shop.order("o1", "c1", "2026-03-01T09:00:00Z", 12.5)
    contact = shop.json("contacts", "show", "c1")
    assert set(contact) >= CONTACT_FIELDS | FACTS
    assert contact["order_count"] == 1
    assert contact["total_spent"] == 12.5
    assert contact["first_order_at"] == contact["last_order_at"] == "2026-03-01T09:00:00Z"
    assert "grün" in json.dumps(contact, ensure_ascii=False)
    assert shop.cli("contacts", "show", "nobody", "--json").exit_code == 1


def test_json_is_one_document_on_stdout(shop: Shop) -> None:
    """Through a real process: stdout is one JSON document, whatever goes to stderr."""
    mixed_shop(shop)
    shop.ws.write("more.jsonl", '{"id": "c9", "email": "c9@example.com"}\n')
    commands = [
        ["deliveries"],
        ["plan", "--at", "2026-03-10T09:00:00Z"],
        ["run", "--at", "2026-03-10T10:00:00Z"],
        ["report"],
        ["contacts", "show", "refused"],
        ["campaigns"],
        ["check"],
        ["status"],
        ["import", "contacts", "more.jsonl"],
        ["simulate", "--from", "2026-03-01", "--to", "2026-03-03"],
        ["preview", "thanks", "refused", "--at", "2026-03-01T10:00:00Z"],
        ["contacts", "unsubscribe", "refused", "--channel", "email"],
        ["init", str(shop.root / "starter")],
    ]
    for command in commands:
        result = shop.ws.run(*command, "--json")
        assert result.returncode in (0, 1), (command, result.stderr)
        if command[0] != "status":
            assert result.returncode == 0, (command, result.stderr)
        json.loads(result.stdout)  # the whole of stdout, one document
