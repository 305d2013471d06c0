"""``regard simulate``: the scratch copy a backtest replays on, and its summary queries."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TypedDict, cast

from regard.store import sendtime
from regard.store.area import Area
from regard.store.deliveries import claimed_values, sent_values
from regard.store.lifecycle import DeliveryState, move, move_through
from regard.store.reports import week_start_sql
from regard.store.sendtime import SendContext
from regard.times import Instant


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of the store file ``source`` into ``target`` through SQLite's
    backup API, only reading ``source`` (a daemon may be writing it meanwhile)."""
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:  # a WAL store whose -shm cannot be created read-only
        src = sqlite3.connect(str(source))
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


class OutcomeCount(TypedDict):
    """Deliveries of one campaign decided in one week, in one state for one reason."""

    campaign: str
    week: str  # the Monday, YYYY-MM-DD
    state: str
    reason: str  # 'unknown' where none was recorded
    n: int
    cost: float | None  # their summed cost, where providers set one


class SampleRecipient(TypedDict):
    """One of the first deliveries sent for a campaign in a week."""

    campaign: str
    week: str
    contact_id: str
    name: str  # first and last name, as far as known
    occasion: str
    sent_at: int
    delivery_id: str


# how much of the scratch copy a replay reads through a memory map rather than a system
# call per page (its candidates' queries read contacts and events all over the file)
REPLAY_MMAP = 1 << 30


class Backtests(Area):
    """A backtest's scratch store: copied from the real one, replayed, summarised."""

    def for_replay(self) -> None:
        """Set the scratch copy up for a replay: it is removed afterwards, so its commits
        need not wait for the disk (no fsync) nor overwrite what they free, and nobody else
        reads or writes it while it is replayed, so its pages need no write-ahead log to be
        written to first and copied back from later: its rollback journal is kept in memory
        (a savepoint still rolls back; a crash leaves a copy nobody reads again), and its
        ticks need no thread copying the log beside them. Only ever called on a scratch
        copy (always SQLite)."""
        if self.store.dialect == "sqlite":
            self.conn.execute("PRAGMA synchronous = OFF")
            self.conn.execute("PRAGMA journal_mode = MEMORY")
            self.conn.execute("PRAGMA secure_delete = OFF")
            self.conn.execute(f"PRAGMA mmap_size = {REPLAY_MMAP}")
            self.store.ticks.alone = True  # its ticks have no log to copy

    def forget_replayed(self, campaigns: Sequence[str], start: Instant) -> None:
        """Delete the deliveries of ``campaigns`` decided at or after ``start``, so the
        replay decides them afresh; then drop the index of their history, which a replay
        only ever writes (every delivery it records or moves writes a line there, and the
        index takes each line at a random place: a tenth of what a replay's records cost).
        Only ever called on a scratch copy, before its replay."""
        with self.store.write() as conn:
            conn.execute(
                "DELETE FROM deliveries WHERE created_at >= :start "
                "AND campaign IN (SELECT value FROM json_each(:campaigns))",
                {"start": start, "campaigns": json.dumps(list(campaigns))},
            )  # deleted with their history: found through the index still
            conn.execute("DROP INDEX IF EXISTS delivery_log_delivery")

    def next_waiting(self, after: Instant, before: Instant) -> Instant | None:
        """The earliest instant strictly between ``after`` and ``before`` at which a pending
        delivery falls due (its window opens, its next day begins), or None."""
        row = self.conn.execute(
            "SELECT min(not_before) FROM deliveries"
            " WHERE state = 'pending' AND not_before > ? AND not_before < ?",
            (after, before),
        ).fetchone()
        return None if row[0] is None else Instant(row[0])

    def outcomes(self, start: Instant, end: Instant) -> list[OutcomeCount]:
        """Deliveries decided in ``[start, end]`` counted by campaign, week, state and
        reason, in that order of week, campaign, state and reason."""
        rows = self.conn.execute(
            f"""
            SELECT campaign, {week_start_sql("created_at")} AS week, state,
                   coalesce(reason, 'unknown') AS reason, count(*) AS n,
                   sum(cost) AS cost
            FROM deliveries WHERE created_at BETWEEN ? AND ?
            GROUP BY campaign, week, state, reason ORDER BY week, campaign, state, reason
            """,
            (start, end),
        )
        return [cast(OutcomeCount, dict(r)) for r in rows]

    def sample(self, start: Instant, end: Instant, size: int) -> list[SampleRecipient]:
        """The first ``size`` deliveries sent per campaign and week among those decided in
        ``[start, end]`` (by the instant sent, then id), by campaign, then in the order
        they were sent (then by contact and id)."""
        rows = self.conn.execute(
            f"""
            SELECT campaign, week, contact_id, name, occasion, sent_at, delivery_id FROM (
                SELECT d.campaign, d.contact_id, d.occasion, d.sent_at, d.id AS delivery_id,
                       {week_start_sql("d.created_at")} AS week,
                       trim(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, ''))
                           AS name,
                       row_number() OVER (
                           PARTITION BY d.campaign, {week_start_sql("d.created_at")}
                           ORDER BY d.sent_at, d.id) AS n
                FROM deliveries d LEFT JOIN contacts c ON c.id = d.contact_id
                WHERE d.state = 'sent' AND d.created_at BETWEEN ? AND ?
            ) WHERE n <= ? ORDER BY campaign, sent_at, contact_id, delivery_id
            """,
            (start, end, size),
        )
        return [cast(SampleRecipient, dict(r)) for r in rows]

    # -- a replay's dispatch: every due delivery of a provider accepted at once -----------

    def send_claimable(
        self,
        provider: str,
        *,
        owner: str,
        at: Instant,
        now: Instant,
        lease_seconds: int,
        context: SendContext,
        cost: Callable[[str, str | None], Decimal | None],
    ) -> int | None:
        """What :meth:`Deliveries.claim <regard.store.deliveries.Deliveries.claim>` in
        batches and the outcomes of a provider that accepts everything record, for all of
        ``provider``'s due deliveries at once, in the caller's write transaction: the
        send-time rules (under ``context``) on the claimable ones, then each one left
        claimed by ``owner`` (its attempt counted) and ``sent`` at ``at``, costing
        ``cost(channel, its text)``, with the log lines of the claim and of the outcome.
        Returns how many were sent.

        None, and nothing changed, where a claim would find what this does not reproduce:
        a claim to take up (a row ``sending``), or a stored message that the delivery
        record would not read as it reads the replay's own (not a JSON object, headers
        that are not one, an SMS text that is not a string); the caller then claims as a
        dispatch does. Only ever called on a scratch copy."""
        due = (
            "d.provider = :provider AND d.state = 'pending'"
            f" AND coalesce(d.not_before, d.due_at) <= :at AND NOT ({sendtime.held_sql()})"
        )
        params = {"provider": provider, "at": at, **context.params()}
        with self.store.write() as conn:
            odd = conn.execute(
                "SELECT 1 FROM deliveries d WHERE d.provider = :provider AND d.state = 'sending'"
                f" UNION ALL SELECT 1 FROM deliveries d WHERE {due} AND d.message IS NOT NULL"
                " AND d.message != '' AND NOT (json_valid(d.message)"
                " AND json_type(d.message) = 'object'"
                " AND coalesce(json_type(d.message, '$.headers'), 'object') = 'object'"
                " AND (d.channel != 'sms'"
                " OR coalesce(json_type(d.message, '$.text'), 'null') IN ('text', 'null')))"
                " LIMIT 1",
                params,
            ).fetchone()
            if odd is not None:
                return None
            sendtime.stop(conn, due, {"provider": provider}, at=at, now=now, context=context)
            rows = conn.execute(
                "SELECT d.id, d.channel, d.attempts,"
                " CASE WHEN d.channel = 'sms' THEN json_extract(d.message, '$.text') END"
                f" FROM deliveries d WHERE {due}",
                params,
            ).fetchall()
            if not rows:
                return 0
            by_cost: dict[Decimal | None, list[str]] = {}
            attempt: dict[str, str] = {}
            for row_id, channel, attempts, text in rows:
                delivery_id = str(row_id)
                by_cost.setdefault(cost(channel, text), []).append(delivery_id)
                attempt[delivery_id] = f"attempt {int(attempts) + 1}"
            # claimed and accepted in one statement per cost (no other connection could
            # see the claim in between), with the log lines of both
            claimed = claimed_values(owner, now, lease_seconds)
            sent = 0
            for price, group in by_cost.items():
                done = move_through(
                    conn, group, DeliveryState.PENDING, DeliveryState.SENDING,
                    DeliveryState.SENT, at=at, now=now,
                    details=(f"claimed by {owner}", attempt),
                    values=(claimed, sent_values(at, None, price)),
                )  # fmt: skip
                sent += len(done)
            return sent

    # -- the sends a journey's follow-ups need, simulated (plan and preview) -------------

    def send_simulated(self, campaigns: Sequence[str], at: Instant) -> list[str]:
        """Inside the caller's (rolled-back) transaction: the pending deliveries of
        ``campaigns`` due at ``at`` go through the send-time rules, and those left are
        recorded ``sent`` at ``at`` as a provider that accepts everything would have them.
        Returns the ids sent. For ``plan`` and ``preview``, whose follow-ups need the
        sends a backtest would have made; never on a store that is kept."""
        with self.store.write() as conn:
            # the replayed campaigns' pending deliveries (index: campaign, state), then
            # the send-time rules on those alone
            due = [
                str(r[0])
                for r in conn.execute(
                    "SELECT d.id FROM deliveries d INDEXED BY deliveries_campaign_state"
                    " WHERE d.campaign IN (SELECT value FROM json_each(:campaigns))"
                    " AND d.state = 'pending' AND coalesce(d.not_before, d.due_at) <= :at",
                    {"at": at, "campaigns": json.dumps(list(campaigns))},
                )
            ]
            if not due:
                return []
            candidates, params = sendtime.among(due)
            stopped = sendtime.stop(conn, candidates, params, at=at, now=at)
            gone = {i for ids in stopped.values() for i in ids}
            ids = [i for i in due if i not in gone]
            _P, _S, _OK = DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.SENT
            move(conn, ids, _P, _S, at=at, now=at, detail="simulated: claimed")
            return move(
                conn, ids, _S, _OK, at=at, now=at, detail="simulated: accepted",
                values={"sent_at": at, "attempts": 1},
            )  # fmt: skip

    def forget(self, ids: Sequence[str]) -> None:
        """Delete the deliveries ``ids`` and their history (a replay's own decisions,
        inside the rolled-back transaction of ``plan`` or ``preview``)."""
        with self.store.write() as conn:
            marked = {"ids": json.dumps(list(ids))}
            conn.execute(
                "DELETE FROM delivery_log WHERE delivery_id IN (SELECT value FROM json_each(:ids))",
                marked,
            )
            conn.execute(
                "DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(:ids))", marked
            )
