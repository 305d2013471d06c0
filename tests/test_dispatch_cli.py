"""``regard run`` and ``regard deliveries`` through the real CLI."""

from __future__ import annotations

import json

from conftest import Workspace
from faults.rows import add_pending, campaign_file, states
from regard.store import open_store

AT = 1_780_000_000  # 2026-05-28T20:26:40Z
KEYS = {
    "delivery_id", "campaign", "contact_id", "occasion", "state", "reason", "channel",
    "provider", "due_at", "created_at", "sent_at", "attempts",
}  # fmt: skip


def seed(workspace: Workspace, contacts: list[str], **kw: object) -> list[str]:
    campaign_file(workspace.root, str(kw.get("campaign", "thanks")), provider="outbox")
    store = open_store(workspace.store_target)
    ids = add_pending(store, contacts, provider="outbox", due_at=AT, **kw)
    store.close()
    return ids


def test_run_sends_what_is_due_and_records_the_tick(workspace: Workspace) -> None:
    ids = seed(workspace, ["anna", "bernd"])
    result = workspace.cli("run", "--at", "2026-05-29T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["sent"], summary["failed"], summary["retried"]) == (2, 0, 0)
    assert summary["at"] == "2026-05-29T00:00:00Z"
    assert sorted(r["delivery_id"] for r in workspace.outbox()) == sorted(ids)
    store = open_store(workspace.store_target)
    tick = store.conn.execute("SELECT kind, at, finished_at, result FROM ticks").fetchone()
    assert tick["kind"] == "run"
    assert tick["finished_at"] is not None
    assert json.loads(tick["result"])["sent"] == 2
    store.close()


def test_run_dry_run_writes_and_sends_nothing(workspace: Workspace) -> None:
    ids = seed(workspace, ["anna"])
    result = workspace.cli("run", "--dry-run", "--at", "2026-05-29T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [d["delivery_id"] for d in summary["would_dispatch"]] == ids
    assert workspace.outbox() == []
    store = open_store(workspace.store_target)
    assert states(store) == {ids[0]: "pending"}
    assert store.conn.execute("SELECT count(*) FROM ticks").fetchone()[0] == 0
    store.close()


def test_run_exits_3_when_a_delivery_died(workspace: Workspace) -> None:
    workspace.write(
        "regard.toml",
        (workspace.root / "regard.toml").read_text(encoding="utf-8")
        + '\n[providers.gone]\ntype = "webhook"\nurl = "http://127.0.0.1:9/closed"\nsecret = "s"\n'
        + "[delivery]\nattempts = 1\n",
    )
    campaign_file(workspace.root, provider="gone")
    store = open_store(workspace.store_target)
    add_pending(store, ["anna"], provider="gone", due_at=AT)
    store.close()
    result = workspace.cli("run", "--at", "2026-05-29T00:00:00Z")
    assert result.exit_code == 3
    assert "1 failed" in result.stdout
    assert "deliveries failed" in result.stderr
    [row] = workspace.cli_json("deliveries", "--state", "dead")
    assert row["reason"].startswith("gave up after 1 attempts: connection error")


def test_deliveries_lists_with_the_contract_fields(workspace: Workspace) -> None:
    ids = seed(workspace, ["anna", "bernd"])
    workspace.cli("run", "--at", "2026-05-29T00:00:00Z")
    seed(workspace, ["carla"], campaign="winback")
    rows = workspace.cli_json("deliveries")
    assert len(rows) == 3
    assert all(set(r) >= KEYS for r in rows)
    sent = [r for r in rows if r["state"] == "sent"]
    assert sorted(r["delivery_id"] for r in sent) == sorted(ids)
    assert sent[0]["sent_at"] == "2026-05-29T00:00:00Z"
    assert sent[0]["due_at"] == "2026-05-28T20:26:40Z"
    assert sent[0]["reason"] is None and sent[0]["attempts"] == 1
    assert [r["contact_id"] for r in workspace.cli_json("deliveries", "--campaign", "winback")] == [
        "carla"
    ]
    assert [r["contact_id"] for r in workspace.cli_json("deliveries", "--contact", "anna")] == [
        "anna"
    ]
    assert [r["contact_id"] for r in workspace.cli_json("deliveries", "--state", "pending")] == [
        "carla"
    ]
    assert "text" not in rows[0] and "message" not in rows[0]


def test_retry_and_cancel(workspace: Workspace) -> None:
    dead, pending = seed(workspace, ["anna", "bernd"])
    store = open_store(workspace.store_target)
    with store.write() as conn:
        conn.execute(
            "UPDATE deliveries SET state = 'dead', attempts = 8, reason = 'HTTP 500' WHERE id = ?",
            (dead,),
        )
    store.close()
    bad = workspace.cli("deliveries", "retry", dead, "d_nope")
    assert bad.exit_code == 1
    assert "d_nope" in bad.stderr
    wrong = workspace.cli("deliveries", "cancel", pending, dead)
    assert wrong.exit_code == 1
    assert f"{dead} is dead" in wrong.stderr
    assert {r["state"] for r in workspace.cli_json("deliveries")} == {"dead", "pending"}

    assert workspace.cli("deliveries", "retry", dead).exit_code == 0
    assert workspace.cli("deliveries", "cancel", pending).exit_code == 0
    by_id = {r["delivery_id"]: r for r in workspace.cli_json("deliveries")}
    assert (by_id[dead]["state"], by_id[dead]["attempts"], by_id[dead]["reason"]) == (
        "pending",
        0,
        None,
    )
    assert by_id[pending]["state"] == "cancelled"
    # due again at once, also for a run that acts at an instant before the retry
    out = workspace.cli("run", "--at", "2026-05-29T00:00:00Z")
    assert out.exit_code == 0, out.output
    assert [r["delivery_id"] for r in workspace.outbox()] == [dead]


def test_unknown_state_is_a_clear_error(workspace: Workspace) -> None:
    result = workspace.cli("deliveries", "--state", "lost")
    assert result.exit_code == 1
    assert "unknown state 'lost'" in result.stderr


def test_a_delivery_to_retry_says_why_in_the_list(workspace: Workspace) -> None:
    workspace.write(
        "regard.toml",
        (workspace.root / "regard.toml").read_text(encoding="utf-8")
        + '\n[providers.gone]\ntype = "webhook"\nurl = "http://127.0.0.1:9/closed"\n'
        + 'secret = "${HOOK_SECRET}"\n',
    )
    campaign_file(workspace.root, provider="gone")
    store = open_store(workspace.store_target)
    add_pending(store, ["anna"], provider="gone", due_at=AT)
    store.close()
    env = {"HOOK_SECRET": "hook-secret-never-shown"}
    result = workspace.cli("run", "--at", "2026-05-29T00:00:00Z", env=env)
    assert result.exit_code == 0, result.output
    assert "1 to retry" in result.stdout
    listed = workspace.cli("deliveries", "--state", "pending", env=env)
    assert "to retry, last: connection error" in listed.stdout
    assert "hook-secret-never-shown" not in result.output + listed.output
