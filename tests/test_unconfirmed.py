"""Unknown outcomes and account failures through the real CLI and real stores, against fakes
of the services on 127.0.0.1 (tests/services.py): a card whose answer never came is
``unconfirmed`` and never sent again by itself; ``deliveries confirm`` and ``retry`` settle
it; ``status`` and ``report`` count it; an account that cannot send pauses its provider for
the run (deliveries stay pending, exit 3, ``status`` shows it and since when)."""

from __future__ import annotations

import json

from conftest import Workspace
from faults.rows import add_pending
from regard.store import open_store
from services import FakeHandwrytten, FakePostmark, FakeTwilio

AT = 1_780_000_000  # 2026-05-28T20:26:40Z
RUN_AT = "2026-05-29T00:00:00Z"
KEY = "hw_test_1f2e3d4c5b6a"
TOKEN = "pm-server-token-1234"
SID = "AC3f9b2c1d4e5f60718293a4b5c6d7e8f9"
TWILIO_TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CARD_TO = {
    "name": "Erika Mustermann",
    "company": "",
    "street": "Hauptstraße 1",
    "postal_code": "80331",
    "city": "München",
    "country": "DE",
}


def configure(workspace: Workspace, table: str, delivery: str = "") -> None:
    text = (workspace.root / "regard.toml").read_text(encoding="utf-8")
    workspace.write(
        "regard.toml",
        text
        + f'\n[delivery]\ntimeout = "1s"\nbackoff = "1s"\nmax_backoff = "2s"\n{delivery}{table}',
    )


def seed_cards(workspace: Workspace, contacts: list[str]) -> list[str]:
    store = open_store(workspace.store_target)
    ids = []
    for contact in contacts:
        message = {"to": CARD_TO, "subject": None, "text": f"Danke, {contact}!", "html": None,
                   "card": {"design": None, "font": None, "sender": None}}  # fmt: skip
        ids += add_pending(
            store, [contact], provider="cards", due_at=AT, channel="card",
            message=json.dumps(message), root=workspace.root,
        )  # fmt: skip
    store.close()
    return ids


def cards_table(url: str) -> str:
    return (
        f'[providers.cards]\ntype = "handwrytten"\napi_key = "{KEY}"\nbase_url = "{url}"\n'
        'card_id = 3404\nfont = "Casual David"\n'
    )


def by_id(workspace: Workspace) -> dict[str, dict[str, object]]:
    return {r["delivery_id"]: r for r in workspace.cli_json("deliveries")}


def test_an_ambiguous_card_is_unconfirmed_then_confirmed_or_retried_by_hand(
    workspace: Workspace,
) -> None:
    with FakeHandwrytten(KEY, stall=1.0, hold=1.6) as service:
        configure(workspace, cards_table(service.url))
        first, second = seed_cards(workspace, ["anna", "bernd"])

        result = workspace.cli("run", "--at", RUN_AT)
        assert result.exit_code == 0, result.output
        assert "2 unconfirmed" in result.stdout
        rows = by_id(workspace)
        assert {rows[i]["state"] for i in (first, second)} == {"unconfirmed"}
        assert "outcome unknown (timeout" in str(rows[first]["reason"])
        assert service.counts() == {first: 1, second: 1}

        # never sent again by itself
        service.stall = 0.0
        assert workspace.cli("run", "--at", "2026-05-30T00:00:00Z").exit_code == 0
        assert service.counts() == {first: 1, second: 1}

        # status and report count them
        status = workspace.cli_json("status")
        assert status["backlog"]["unconfirmed"] == {"cards": 2}
        report = workspace.cli_json("report", "--since", "2026-05-01", "--until", "2026-06-30")
        assert report["campaigns"]["thanks"]["unconfirmed"] == 2
        assert "unconfirmed" in workspace.cli("report", "--since", "2026-05-01").stdout

        # the first arrived (its order is in the dashboard): confirm; the second: pretend it
        # did not, and send it again
        assert workspace.cli_json("deliveries", "confirm", first) == {"confirmed": [first]}
        assert workspace.cli_json("deliveries", "retry", second) == {"retried": [second]}
        assert workspace.cli("run", "--at", "2026-05-31T00:00:00Z").exit_code == 0
        rows = by_id(workspace)
        assert rows[first]["state"] == rows[second]["state"] == "sent"
        assert rows[first]["sent_at"] is not None
        assert service.counts() == {first: 1, second: 2}  # the retry was asked for

        # only unconfirmed deliveries can be confirmed
        refused = workspace.cli("deliveries", "confirm", first)
        assert refused.exit_code == 1
        assert "only unconfirmed deliveries can be confirmed" in refused.stderr


def test_a_card_caught_in_sending_by_a_crash_is_unconfirmed(workspace: Workspace) -> None:
    with FakeHandwrytten(KEY) as service:
        configure(workspace, cards_table(service.url))
        [did] = seed_cards(workspace, ["anna"])
        store = open_store(workspace.store_target)
        with store.write() as conn:  # a run that died mid-send: its lease long over
            conn.execute(
                "UPDATE deliveries SET state = 'sending', lease_owner = 'gone:1', "
                "lease_until = 1, attempts = 1 WHERE id = ?",
                (did,),
            )
        store.close()
        assert workspace.cli("run", "--at", RUN_AT).exit_code == 0
        assert by_id(workspace)[did]["state"] == "unconfirmed"
        assert service.accepted == [] and service.server.requests == []


def test_an_account_that_cannot_send_pauses_its_provider(workspace: Workspace) -> None:
    with FakePostmark(TOKEN) as service:
        service.account_error = (405, "You are not allowed to send: your account has no credits.")
        configure(
            workspace,
            f'[providers.mail]\ntype = "postmark"\nserver_token = "{TOKEN}"\n'
            f'base_url = "{service.url}"\n',
        )
        store = open_store(workspace.store_target)
        ids = add_pending(
            store, [f"c{i}" for i in range(25)], provider="mail", due_at=AT, root=workspace.root
        )
        store.close()

        result = workspace.cli("run", "--at", RUN_AT)

        assert result.exit_code == 3
        assert "provider mail paused" in result.stderr
        assert "no credits" in result.stderr and "check its billing" in result.stderr
        rows = by_id(workspace)
        assert {rows[i]["state"] for i in ids} == {"pending"}  # not dead, nothing burned
        assert {rows[i]["attempts"] for i in ids} == {0}
        # the lane stopped claiming: one batch of requests, not 25
        sends = [r for r in service.server.requests if r.path == "/email"]
        assert 1 <= len(sends) <= 8
        status = workspace.cli_json("status")
        [failing] = status["providers_failing"]
        assert failing["provider"] == "mail" and "no credits" in failing["reason"]
        since = failing["since"]
        assert "Failing:      provider mail since" in workspace.cli("status").stdout

        # still failing at the next run: the same "since"
        assert workspace.cli("run", "--at", "2026-05-29T01:00:00Z").exit_code == 3
        assert workspace.cli_json("status")["providers_failing"][0]["since"] == since

        # the account is fixed: everything goes out, the provider is no longer failing
        service.account_error = None
        fixed = workspace.cli("run", "--at", "2026-05-29T02:00:00Z")
        assert fixed.exit_code == 0, fixed.output
        assert {r["state"] for r in by_id(workspace).values()} == {"sent"}
        assert workspace.cli_json("status")["providers_failing"] == []
        assert sorted(service.counts()) == sorted(ids)


def test_refused_twilio_credentials_pause_and_say_what_to_fix(workspace: Workspace) -> None:
    with FakeTwilio(SID, TWILIO_TOKEN) as service:
        configure(
            workspace,
            f'[providers.sms]\ntype = "twilio"\naccount_sid = "{SID}"\n'
            f'auth_token = "wrong-token"\nfrom = "+15005550006"\nbase_url = "{service.url}"\n',
        )
        store = open_store(workspace.store_target)
        ids = add_pending(
            store, ["anna"], provider="sms", due_at=AT, channel="sms", root=workspace.root
        )
        with store.write() as conn:
            conn.execute(
                "UPDATE deliveries SET message = ? WHERE id = ?",
                (json.dumps({"to": "+4915112345678", "text": "Danke!"}), ids[0]),
            )
        store.close()
        result = workspace.cli("run", "--at", RUN_AT)
        assert result.exit_code == 3
        assert "20003" in result.stderr and "check account_sid and auth_token" in result.stderr
        assert "wrong-token" not in result.stderr + result.stdout
        assert by_id(workspace)[ids[0]]["state"] == "pending"


def test_a_gone_webhook_endpoint_pauses_the_provider(workspace: Workspace, sink) -> None:
    from httpsink import Answer

    sink.default = Answer(410, "gone")
    configure(
        workspace,
        f'[providers.hooks]\ntype = "webhook"\nurl = "{sink.url}/hook"\nsecret = "whs"\n',
        delivery="concurrency = 1\n",
    )
    store = open_store(workspace.store_target)
    ids = add_pending(store, ["anna", "bernd"], provider="hooks", due_at=AT, root=workspace.root)
    store.close()
    result = workspace.cli("run", "--at", RUN_AT)
    assert result.exit_code == 3 and "410 Gone" in result.stderr
    # the delivery that got the 410 is dead (the contract); the endpoint is gone, so the
    # lane stops and the other waits
    assert sorted(r["state"] for r in by_id(workspace).values()) == ["dead", "pending"]
    assert len(sink.requests) == 1
    assert workspace.cli_json("status")["providers_failing"][0]["provider"] == "hooks"
    assert len(ids) == 2
