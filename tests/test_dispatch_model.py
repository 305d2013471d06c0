"""Claims against a model: random interleavings of claims by two runs, outcomes (some
arriving after their claim was taken over), releases and a clock that lets leases expire,
on a real SQLite file. Whatever the order, a delivery is held by one run at a time, is
recorded sent at most once, and is never lost."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from faults.rows import add_pending
from regard.config import DeliverySettings
from regard.delivery import claims
from regard.store import open_store

AT = 1_780_000_000
LEASE = 10


@dataclass
class Held:
    claim: claims.Claim
    owner: str
    until: int


class ClaimsModel(RuleBasedStateMachine):
    @initialize(n=st.integers(min_value=1, max_value=3), attempts=st.integers(1, 3))
    def setup(self, n: int, attempts: int) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.store = open_store(Path(self.dir.name) / "regard.db")
        self.ids = add_pending(self.store, [f"c{i}" for i in range(n)], due_at=AT)
        self.settings = DeliverySettings(attempts=attempts, lease=f"{LEASE}s", timeout="1s")
        self.now = 1_000
        self.runs = 0
        self.held: list[Held] = []  # every claim handed out, stale ones included
        self.sent_records: dict[str, int] = {i: 0 for i in self.ids}
        self.claims_made: dict[str, int] = {i: 0 for i in self.ids}
        self.released: dict[str, int] = {i: 0 for i in self.ids}

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()
            self.dir.cleanup()

    def _holder(self, did: str) -> tuple[str, str | None]:
        row = self.store.conn.execute(
            "SELECT state, lease_owner FROM deliveries WHERE id = ?", (did,)
        ).fetchone()
        return str(row[0]), row[1]

    def _state(self, did: str) -> str:
        row = self.store.conn.execute("SELECT state FROM deliveries WHERE id = ?", (did,))
        return str(row.fetchone()[0])

    @rule(limit=st.integers(1, 4))
    def claim(self, limit: int) -> None:
        self.runs += 1
        owner = f"run{self.runs}"  # every run has its own name, as host:pid:random does
        got = self.store.deliveries.claim(
            provider="sink", owner=owner, at=AT + 10_000, now=self.now,
            lease_seconds=LEASE, limit=limit,
        )  # fmt: skip
        for c in got:
            # nobody else holds an unexpired claim on it
            rivals = [h for h in self.held if h.claim.id == c.id and h.until >= self.now]
            assert not rivals, f"{c.id} claimed by {owner} while {rivals[0].owner} holds it"
            # the run it was taken from keeps its stale claim: it may still try to record
            self.held.append(Held(c, owner, self.now + LEASE))
            self.claims_made[c.id] += 1

    @precondition(lambda self: bool(self.held))
    @rule(pick=st.integers(0, 3), outcome=st.sampled_from(["sent", "retry", "dead"]))
    def record(self, pick: int, outcome: str) -> None:
        held = self.held.pop(pick % len(self.held))
        common = {"owner": held.owner, "at": AT + 10_000, "now": self.now}
        still_mine = self._holder(held.claim.id) == ("sending", held.owner)
        if outcome == "sent":
            ok = claims.record_sent(self.store, held.claim, message_id=None, cost=None, **common)
            self.sent_records[held.claim.id] += ok
        elif outcome == "dead":
            ok = claims.record_dead(
                self.store, held.claim, reason="HTTP 400", unsubscribe=None, **common
            )
        else:
            ok = claims.record_retry(
                self.store, held.claim, reason="HTTP 500", retry_after=None,
                settings=self.settings, **common,
            ) is not None  # fmt: skip
        assert ok == still_mine

    @precondition(lambda self: bool(self.held))
    @rule(pick=st.integers(0, 3))
    def release(self, pick: int) -> None:
        owner = self.held[pick % len(self.held)].owner
        mine = [h for h in self.held if h.owner == owner]
        before = {h.claim.id: self._holder(h.claim.id) for h in mine}
        n = self.store.deliveries.release([h.claim.id for h in mine], owner=owner, at=AT)
        back = [i for i, s in before.items() if s[0] == "sending" and self._state(i) == "pending"]
        # a run gives back only what it still holds, never a claim another run took over
        assert all(before[i][1] == owner for i in back)
        for did in back:
            self.released[did] += 1
        self.held = [h for h in self.held if h.owner != owner]
        assert n == len(back)

    @rule(seconds=st.sampled_from([1, LEASE // 2, LEASE + 1]))
    def wait(self, seconds: int) -> None:
        self.now += seconds

    @precondition(lambda self: bool(self.held))
    @rule()
    def take_over(self) -> None:
        """A run stalls past its lease; a new run takes its claims over."""
        self.now += LEASE + 1
        self.claim(4)

    @invariant()
    def books_balance(self) -> None:
        if not hasattr(self, "store"):
            return
        for did in self.ids:
            state = self._state(did)
            assert state in {"pending", "sending", "sent", "dead"}, state  # never lost
            assert self.sent_records[did] <= 1
            assert (state == "sent") == (self.sent_records[did] == 1)
            attempts = self.store.conn.execute(
                "SELECT attempts FROM deliveries WHERE id = ?", (did,)
            ).fetchone()[0]
            assert attempts == self.claims_made[did] - self.released[did]


TestClaimsModel = ClaimsModel.TestCase
