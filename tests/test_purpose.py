"""Campaign purpose: marketing needs consent and honours unsubscribes, service needs only an
address that has not bounced; the existing-customer rule; the send-time re-checks by the
purpose stored with each delivery; the suppressions of older stores keep their meaning."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from conftest import Workspace
from regard.store import open_store
from regard.store.schema import MIGRATIONS
from regard.times import now_instant

TEMPLATE = (
    "{% block subject %}Hallo{% endblock %}{% block text %}Hallo {{ occasion }}{% endblock %}"
)


def campaign(ws: Workspace, name: str, purpose: str, trigger: str, extra: str = "") -> None:
    ws.write(
        f"campaigns/{name}.toml",
        f'channel = "email"\nprovider = "outbox"\ntemplate = "note"\npurpose = "{purpose}"\n'
        f'max_lateness = "30d"\n{extra}[trigger]\n{trigger}',
    )


def jsonl(ws: Workspace, kind: str, *rows: dict[str, Any]) -> None:
    result = ws.cli("import", kind, "-", input="".join(json.dumps(r) + "\n" for r in rows))
    assert result.exit_code == 0, result.output


def states(ws: Workspace) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {
        (d["campaign"], d["contact_id"]): (d["state"], d["reason"])
        for d in ws.cli_json("deliveries")
    }


def test_existing_customers_get_marketing_email_unless_they_said_no(workspace: Workspace) -> None:
    text = workspace.config.read_text().replace(
        "[providers.outbox]", '[consent]\nemail = "existing-customer"\n\n[providers.outbox]'
    )
    workspace.config.write_text(text)
    workspace.write("templates/note.j2", TEMPLATE)
    campaign(workspace, "welcome", "marketing", 'type = "event"\nevent = "signup"\n')
    people = {
        "buyer": None,  # an order before T, consent never asked: goes
        "later": None,  # its only order comes after T: not a customer yet at T
        "refused": False,  # a customer who said no
        "asked": True,  # said yes, never ordered
    }
    jsonl(
        workspace, "contacts",
        *({"id": c, "email": f"{c}@example.com", "consent_email": v} for c, v in people.items()),
    )  # fmt: skip
    jsonl(
        workspace, "events",
        {"id": "o-buyer", "contact_id": "buyer", "occurred_at": "2026-02-01T10:00:00Z"},
        {"id": "o-refused", "contact_id": "refused", "occurred_at": "2026-02-01T10:00:00Z"},
        {"id": "o-later", "contact_id": "later", "occurred_at": "2026-04-01T10:00:00Z"},
        *({"id": f"s-{c}", "contact_id": c, "type": "signup",
           "occurred_at": "2026-03-01T09:00:00Z"} for c in people),
    )  # fmt: skip
    assert workspace.cli("run", "--at", "2026-03-01T12:00:00Z").exit_code == 0
    assert states(workspace) == {
        ("welcome", "buyer"): ("sent", None),
        ("welcome", "later"): ("skipped", "no_consent"),
        ("welcome", "refused"): ("skipped", "no_consent"),
        ("welcome", "asked"): ("sent", None),
    }
    # every such mail shows the way out
    assert all("/u/" in m["text"] for m in workspace.outbox())


def test_existing_customer_is_for_email_only(workspace: Workspace) -> None:
    text = workspace.config.read_text().replace(
        "[providers.outbox]", '[consent]\nsms = "existing-customer"\n\n[providers.outbox]'
    )
    workspace.config.write_text(text)
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "existing-customer" in result.output and "email only" in result.output


def test_service_needs_no_consent_and_ignores_unsubscribes_but_not_bounces(
    workspace: Workspace,
) -> None:
    workspace.write("templates/note.j2", TEMPLATE)
    window = "[window]\nhours = [20, 21]\n"  # decided at noon, sent in the evening
    campaign(workspace, "offer", "marketing", 'type = "post_purchase"\n', window)
    campaign(workspace, "receipt", "service", 'type = "post_purchase"\n', window)
    jsonl(
        workspace, "contacts",
        {"id": "no", "email": "no@example.com", "consent_email": False},
        {"id": "yes", "email": "yes@example.com", "consent_email": True},
        {"id": "gone", "email": "gone@example.com", "consent_email": True},
    )  # fmt: skip
    jsonl(
        workspace, "events",
        *({"id": f"o-{c}", "contact_id": c, "occurred_at": "2026-03-02T10:00:00Z"}
          for c in ("no", "yes", "gone")),
    )  # fmt: skip
    assert workspace.cli("run", "--at", "2026-03-02T12:00:00Z").exit_code == 0
    decided = states(workspace)
    assert decided[("offer", "no")] == ("skipped", "no_consent")
    assert decided[("receipt", "no")] == ("pending", None)  # consent does not apply
    assert decided[("offer", "yes")] == decided[("receipt", "yes")] == ("pending", None)

    # while they wait: "yes" unsubscribes, the address of "gone" bounces
    assert workspace.cli("contacts", "unsubscribe", "yes").exit_code == 0
    with open_store(workspace.store_target) as store:
        store.suppressions.add_unreachable(
            "gone", "email", "gone@example.com", reason="provider x: bounced", at=now_instant()
        )
    assert workspace.cli("run", "--at", "2026-03-02T19:30:00Z").exit_code == 0
    sent = states(workspace)
    assert sent[("offer", "yes")] == ("skipped", "unsubscribed")
    assert sent[("receipt", "yes")] == ("sent", None)  # an unsubscribe stops marketing only
    assert sent[("offer", "gone")] == sent[("receipt", "gone")] == ("skipped", "bounced")
    assert sent[("receipt", "no")] == ("sent", None)
    service = [m for m in workspace.outbox() if m["campaign"] == "receipt"]
    assert service and all(m["headers"] == {} and "/u/" not in m["text"] for m in service)


def test_older_suppressions_keep_their_meaning_through_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for name, fn in MIGRATIONS[:3]:  # a store as the previous release left it
        fn(conn)
        conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, int(time.time())))
    conn.execute(
        "INSERT INTO contacts (id, email, phone, created_at, updated_at) "
        "VALUES ('c1', 'c1@example.com', '+4915112345678', 0, 0)"
    )
    conn.executemany(
        "INSERT INTO suppressions (contact_id, channel, address, reason, created_at) "
        "VALUES (?, ?, ?, ?, 0)",
        [
            ("c1", "*", None, "unsubscribed"),  # regard contacts unsubscribe
            ("c1", "email", "c1@example.com", "provider mail: HTTP 422: Postmark 406"),
        ],
    )
    conn.close()
    with open_store(path) as store:
        kinds = store.conn.execute(
            "SELECT channel, kind, source FROM suppressions ORDER BY rowid"
        ).fetchall()
        assert [tuple(k) for k in kinds] == [
            ("*", "unsubscribed", "cli"),
            ("email", "bounced", "provider"),  # an unreachable address stops everything
        ]
        assert store.settings.get("server_secret")  # the link secret comes with the store
        assert store.decisions.bounced("email", [("c1", "c1@example.com")]) == {"c1"}
        assert store.decisions.unsubscribed("sms", [("c1", "+4915112345678")]) == {"c1"}


def test_check_warns_when_real_mail_would_carry_loopback_links(workspace: Workspace) -> None:
    text = workspace.config.read_text() + (
        '\n[providers.mail]\ntype = "postmark"\nserver_token = "POSTMARK_API_TEST"\n'
    )
    workspace.config.write_text(text)
    workspace.write("templates/note.j2", TEMPLATE)
    workspace.write(
        "campaigns/offer.toml",
        'channel = "email"\nprovider = "mail"\ntemplate = "note"\n[trigger]\ntype = "post_purchase"\n',
    )
    result = workspace.cli("check")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "campaign offer: marketing" in lines
    assert any(line.startswith("campaign offer: the template does not show") for line in lines)
    [warning] = [line for line in lines if line.startswith("warning:")]
    assert "http://127.0.0.1:8787" in warning and "public_url" in warning
    # with a public address, and a template that shows the link itself, nothing to say
    workspace.config.write_text(text + '\n[server]\npublic_url = "https://regard.example.com"\n')
    workspace.write(
        "templates/note.j2",
        "{% block subject %}x{% endblock %}{% block text %}Abmelden: {{ unsubscribe_url }}{% endblock %}",
    )
    quiet = workspace.cli("check")
    # the one warning left is the empty store's (on stderr; the last line counts it)
    assert [
        line for line in quiet.stdout.splitlines()[:-1] if "footer" in line or "warning" in line
    ] == []
    assert [line for line in quiet.stderr.splitlines() if "warning" in line] == [
        line for line in quiet.stderr.splitlines() if "the store has no contacts yet" in line
    ]


def test_list_unsubscribe_offers_mailto_first_when_configured(workspace: Workspace) -> None:
    workspace.config.write_text(
        workspace.config.read_text() + '\n[server]\npublic_url = "https://regard.example.com"\n'
        'unsubscribe_mailto = "abmelden@blumen-rosa.de"\n'
    )
    workspace.write("templates/note.j2", TEMPLATE)
    campaign(workspace, "offer", "marketing", 'type = "post_purchase"\n')
    jsonl(workspace, "contacts", {"id": "c1", "email": "c1@example.com", "consent_email": True})
    jsonl(
        workspace, "events", {"id": "o1", "contact_id": "c1", "occurred_at": "2026-03-02T10:00:00Z"}
    )
    assert workspace.cli("run", "--at", "2026-03-02T12:00:00Z").exit_code == 0
    [mail] = workspace.outbox()
    mailto, url = mail["headers"]["List-Unsubscribe"].split(", ")
    assert mailto.startswith("<mailto:abmelden@blumen-rosa.de?subject=unsubscribe%20d_")
    assert url.startswith("<https://regard.example.com/u/d_") and url.endswith(">")
    assert url[1:-1] in mail["text"]
    assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
