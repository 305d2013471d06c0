"""Fault injection against fakes of the real services (tests/services.py), none of which
de-duplicates: 30% of the sends are accepted and then held past the client's timeout, and
``regard run`` (a real process) is killed with SIGKILL in the middle of dispatch, then run
again until nothing is pending or sending.

- Postmark and Twilio can be asked: every delivery reaches the service exactly once (0
  doubled, 0 lost) and the store records each as sent with the service's own id.
- Handwrytten can neither de-duplicate nor be asked: no card is ordered twice, every
  ambiguous card (its answer stalled, or its run killed while sending) is ``unconfirmed``,
  and no card is sent or lost silently; ``deliveries confirm`` / ``retry`` settle them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import regard_command, subprocess_env
from faults.rows import thanks_campaign
from regard.cli import cli
from regard.store import open_store
from regard.times import iso
from services import FakeHandwrytten, FakePostmark, FakeTwilio

pytestmark = pytest.mark.slow

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
DELIVERIES = 60
STALL = 0.3
MAX_ROUNDS = 25
SEED = int(os.environ.get("REGARD_FAULT_SEED", "0"))
TOKEN = "pm-fault-suite-token"
SID = "AC3f9b2c1d4e5f60718293a4b5c6d7e8f9"
TWILIO_TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
KEY = "hw-fault-suite-key"
FIGURES: dict[str, Any] = {}

PROVIDERS = {
    "email": lambda url: f'type = "postmark"\nserver_token = "{TOKEN}"\nbase_url = "{url}"\n',
    "sms": lambda url: (
        f'type = "twilio"\naccount_sid = "{SID}"\nauth_token = "{TWILIO_TOKEN}"\n'
        f'from = "+15005550006"\nbase_url = "{url}"\n'
    ),
    "card": lambda url: (
        f'type = "handwrytten"\napi_key = "{KEY}"\nbase_url = "{url}"\n'
        'card_id = 3404\nfont = "Casual David"\n'
    ),
}
BLOCK = {"email": "{% block subject %}Danke{% endblock %}{% block text %}", "sms": "{% block text %}",
         "card": "{% block card %}"}  # fmt: skip


def workspace(root: Path, channel: str, url: str) -> Path:
    (root / "regard.toml").write_text(
        f"""
store = "regard.db"
[sender]
name = "Blumen Rosa"
email = "hallo@blumen-rosa.de"
street = "Lindenstraße 5"
postal_code = "10969"
city = "Berlin"
country = "DE"
[consent]
email = "opt-out"
sms = "opt-out"
[limits]
contact_max = 0
[delivery]
concurrency = 8
timeout = "1s"
attempts = 60
backoff = "1s"
max_backoff = "2s"
lease = "60s"
[providers.svc]
{PROVIDERS[channel](url)}""",
        encoding="utf-8",
    )
    thanks_campaign(
        root,
        channel=channel,
        provider="svc",
        template=BLOCK[channel] + "Danke, {{ contact.id }}!{% endblock %}\n",
    )
    ordered = iso(T0 - timedelta(hours=1))
    rows = "".join(
        f"c{i},c{i}@example.org,+49151123{i:05d},Erika,Muster{i},Hauptstraße {i},80331,München,DE\n"
        for i in range(DELIVERIES)
    )
    (root / "contacts.csv").write_text(
        "id,email,phone,first_name,last_name,street,postal_code,city,country\n" + rows,
        encoding="utf-8",
    )
    (root / "events.csv").write_text(
        "id,contact_id,occurred_at,amount\n"
        + "".join(f"o{i},c{i},{ordered},10\n" for i in range(DELIVERIES)),
        encoding="utf-8",
    )
    for kind in ("contacts", "events"):
        result = CliRunner().invoke(
            cli, ["--config", str(root / "regard.toml"), "import", kind, str(root / f"{kind}.csv")]
        )
        assert result.exit_code == 0, result.output
    return root


def start_run(root: Path, at: datetime, name: str) -> subprocess.Popen[bytes]:
    with (root / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            regard_command("--config", str(root / "regard.toml"), "run", "--at", iso(at) or ""),
            stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(), cwd=root,
        )  # fmt: skip


def rows(root: Path) -> dict[str, dict[str, Any]]:
    store = open_store(root / "regard.db")
    found = {
        r["id"]: dict(r)
        for r in store.conn.execute(
            "SELECT id, state, reason, provider_message_id, message FROM deliveries"
        )
    }
    store.close()
    return found


def in_flight(root: Path) -> int:
    return sum(r["state"] in ("pending", "sending") for r in rows(root).values())


def kill_mid_send(root: Path, fake: Any, after: int) -> set[str]:
    """Run, SIGKILL it once the service has accepted ``after`` sends; returns the deliveries
    caught in ``sending``."""
    proc = start_run(root, T0, "killed")
    deadline = time.monotonic() + 30
    while len(fake.accepted) < after and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, (root / "killed.log").read_text()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    caught = {i for i, r in rows(root).items() if r["state"] == "sending"}
    assert caught, "the kill caught no delivery in flight"
    return caught


def settle(root: Path) -> int:
    for k in range(1, MAX_ROUNDS):
        if in_flight(root) == 0:
            return k
        proc = start_run(root, T0 + timedelta(minutes=k), f"run{k}")
        assert proc.wait(timeout=90) in (0, 3), (root / f"run{k}.log").read_text()
    raise AssertionError(f"still {in_flight(root)} in flight after {MAX_ROUNDS} rounds")


def check_exactly_once(root: Path, fake: Any, name: str, caught: set[str]) -> None:
    final = rows(root)
    counts = fake.counts()
    assert len(final) == DELIVERIES
    doubled = {k: n for k, n in counts.items() if n > 1}
    lost = [i for i in final if counts.get(i, 0) == 0]
    assert doubled == {}, f"{name}: doubled {doubled}"
    assert lost == [], f"{name}: lost {lost}"
    assert Counter(r["state"] for r in final.values()) == {"sent": DELIVERIES}
    ids = fake.ids()
    for did, row in final.items():
        assert row["provider_message_id"] == ids[did][0], did  # the service's own id
    FIGURES[name] = {
        "deliveries": DELIVERIES,
        "accepted": sum(counts.values()),
        "stalled_past_timeout": len(fake.stalled()),
        "caught_sending_by_sigkill": len(caught),
        "lookups": fake.lookups,
        "doubled": len(doubled),
        "lost": len(lost),
    }


def test_postmark_nothing_doubled_nothing_lost(tmp_path: Path) -> None:
    with FakePostmark(TOKEN, stall=STALL, hold=1.5, seed=3 + SEED) as fake:
        root = workspace(tmp_path, "email", fake.url)
        caught = kill_mid_send(root, fake, after=15)
        FIGURES.setdefault("rounds", {})["postmark"] = settle(root)
        check_exactly_once(root, fake, "postmark", caught)
    print("\nfault suite (postmark):", json.dumps(FIGURES["postmark"]))


def test_twilio_nothing_doubled_nothing_lost(tmp_path: Path) -> None:
    with FakeTwilio(SID, TWILIO_TOKEN, stall=STALL, hold=1.5, seed=5 + SEED) as fake:
        root = workspace(tmp_path, "sms", fake.url)
        caught = kill_mid_send(root, fake, after=15)
        FIGURES.setdefault("rounds", {})["twilio"] = settle(root)
        by_message = {}
        for did, row in rows(root).items():
            message = json.loads(row["message"])
            by_message[f"{message['to']}\x1f{message['text']}"] = did
        fake.key_of(by_message)
        check_exactly_once(root, fake, "twilio", caught)
    print("\nfault suite (twilio):", json.dumps(FIGURES["twilio"]))


def test_handwrytten_nothing_doubled_every_ambiguous_card_unconfirmed(tmp_path: Path) -> None:
    with FakeHandwrytten(KEY, stall=STALL, hold=1.5, seed=7 + SEED) as fake:
        root = workspace(tmp_path, "card", fake.url)
        caught = kill_mid_send(root, fake, after=15)
        settle(root)
        final = rows(root)
        counts, ids = fake.counts(), fake.ids()
        assert max(counts.values()) == 1, "a card was ordered twice"
        ambiguous = fake.stalled() | caught
        states = Counter(r["state"] for r in final.values())
        assert set(states) <= {"sent", "unconfirmed"}
        for did, row in final.items():
            if did in ambiguous:
                assert row["state"] == "unconfirmed", did
            else:
                assert row["state"] == "sent", did
            if row["state"] == "sent":  # never sent without an order
                assert row["provider_message_id"] == ids[did][0]
        unconfirmed = sorted(i for i, r in final.items() if r["state"] == "unconfirmed")
        # a person looks in the Handwrytten dashboard: confirm the ordered, retry the rest
        ordered = [i for i in unconfirmed if counts.get(i)]
        missing = [i for i in unconfirmed if not counts.get(i)]
        base = ["--config", str(root / "regard.toml"), "deliveries"]
        if ordered:
            assert CliRunner().invoke(cli, [*base, "confirm", *ordered]).exit_code == 0
        if missing:
            assert CliRunner().invoke(cli, [*base, "retry", *missing]).exit_code == 0
        fake.stall = 0.0
        settle(root)
        assert Counter(r["state"] for r in rows(root).values()) == {"sent": DELIVERIES}
        assert fake.counts() == {did: 1 for did in final}  # every card exactly once
        FIGURES["handwrytten"] = {
            "deliveries": DELIVERIES,
            "stalled_past_timeout": len(fake.stalled()),
            "caught_sending_by_sigkill": len(caught),
            "unconfirmed": len(unconfirmed),
            "confirmed_by_hand": len(ordered),
            "retried_by_hand": len(missing),
            "doubled": 0,
            "silently_lost": 0,
        }
    print("\nfault suite (handwrytten):", json.dumps(FIGURES["handwrytten"]))
