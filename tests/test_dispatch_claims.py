"""Claims on a real SQLite file: atomic, disjoint between connections, taken up again
after their lease expires, and outcomes recorded only by the claim's holder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from faults.rows import add_pending, states
from regard.delivery import claims
from regard.store import open_store

AT = 1_780_000_000


def test_two_connections_never_claim_the_same_delivery(tmp_path: Path) -> None:
    path = tmp_path / "regard.db"
    setup = open_store(path)
    ids = add_pending(setup, [f"c{i}" for i in range(200)], due_at=AT)
    setup.close()
    got: dict[str, list[str]] = {"a": [], "b": []}

    def claimer(owner: str) -> None:
        store = open_store(path)
        while batch := store.deliveries.claim(
            provider="sink", owner=owner, at=AT, now=int(time.time()),
            lease_seconds=60, limit=7,
        ):  # fmt: skip
            got[owner].extend(c.id for c in batch)
        store.close()

    threads = [threading.Thread(target=claimer, args=(o,)) for o in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == sorted(ids)
    check = open_store(path)
    owners = {r[0] for r in check.conn.execute("SELECT lease_owner FROM deliveries")}
    assert owners <= {"a", "b"}
    assert set(states(check).values()) == {"sending"}
    check.close()


def test_an_expired_claim_is_taken_up_again_with_the_same_id(tmp_path: Path) -> None:
    store = open_store(tmp_path / "regard.db")
    [did] = add_pending(store, ["c1"], due_at=AT)
    now = int(time.time())
    [first] = store.deliveries.claim(
        provider="sink", owner="crashed", at=AT, now=now, lease_seconds=30, limit=5
    )
    # still leased: nobody else gets it
    assert (
        store.deliveries.claim(
            provider="sink", owner="b", at=AT, now=now + 29, lease_seconds=30, limit=5
        )
        == []
    )
    [again] = store.deliveries.claim(
        provider="sink", owner="b", at=AT, now=now + 31, lease_seconds=30, limit=5
    )
    assert (first.id, again.id) == (did, did)
    assert again.reclaimed and not first.reclaimed
    assert again.attempt == 2
    # the crashed run's late outcome is refused; the new holder's is kept
    common = {"at": AT, "now": now + 32, "message_id": None, "cost": None}
    assert not claims.record_sent(store, first, owner="crashed", **common)
    assert claims.record_sent(store, again, owner="b", **common)
    details = [r[0] for r in store.conn.execute("SELECT detail FROM delivery_log ORDER BY rowid")]
    assert details == [
        "claimed by crashed",
        "claim expired; taken up again by b",
        "attempt 2",
    ]
    store.close()


def test_release_gives_back_only_own_claims(tmp_path: Path) -> None:
    store = open_store(tmp_path / "regard.db")
    ids = add_pending(store, ["c1", "c2"], due_at=AT)
    now = int(time.time())
    store.deliveries.claim(provider="sink", owner="a", at=AT, now=now, lease_seconds=60, limit=1)
    store.deliveries.claim(provider="sink", owner="b", at=AT, now=now, lease_seconds=60, limit=1)
    assert store.deliveries.release(ids, owner="a", at=AT) == 1
    final = states(store)
    assert sorted(final.values()) == ["pending", "sending"]
    attempts = {
        r[0] for r in store.conn.execute("SELECT attempts FROM deliveries WHERE state = 'pending'")
    }
    assert attempts == {0}
    store.close()


def test_claims_of_a_run_that_is_gone_are_taken_up_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    from regard.delivery import owners

    # a real process that has ended, and one killed but not reaped yet (a zombie)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie.kill()
    time.sleep(0.2)
    mine = owners.default_owner()
    host, pidns, _, _ = mine.split(":")
    dead = f"{host}:{pidns}:{ended.pid}:abcd1234"
    undead = f"{host}:{pidns}:{zombie.pid}:abcd1234"
    elsewhere = f"other-host:{pidns}:{ended.pid}:abcd1234"
    other_ns = f"{host}:1:{ended.pid}:abcd1234"
    try:
        assert owners.gone([mine, dead, undead, elsewhere, other_ns, "legacy"]) == [dead, undead]
    finally:
        zombie.wait()

    store = open_store(tmp_path / "regard.db")
    ids = add_pending(store, ["c1", "c2"], due_at=AT)
    now = int(time.time())
    for did, owner in zip(ids, (dead, mine), strict=True):
        with store.write() as conn:
            conn.execute(
                "UPDATE deliveries SET state = 'sending', lease_owner = ?, lease_until = ?, "
                "attempts = 1 WHERE id = ?",
                (owner, now + 300, did),
            )
    gone = claims.abandoned(store)
    assert gone == [dead]
    [taken] = store.deliveries.claim(
        provider="sink", owner="next", at=AT, now=now, lease_seconds=60, limit=5, gone=gone
    )
    assert taken.id == ids[0] and taken.reclaimed and taken.attempt == 2
    detail = store.conn.execute(
        "SELECT detail FROM delivery_log WHERE delivery_id = ?", (ids[0],)
    ).fetchone()[0]
    assert detail == "claim of a run that is gone; taken up again by next"
    store.close()
