"""Dispatch on real SQLite files with pending rows written directly, sending over real
sockets to a recording sink on 127.0.0.1 or through a scripted in-process adapter."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from faults.rows import add_pending, campaign_file, states
from faults.sink import SECRET, FaultySink
from regard.config import Config, DeliverySettings
from regard.delivery import dispatch
from regard.providers import Dead, Outcome, Provider, Retry, Sent
from regard.providers.simulated import simulated_provider
from regard.store import Store
from regard.store.records import RECORD_FIELDS
from regard.times import to_epoch
from regard.workspace import load_config

AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


class Scripted(Provider):
    """``type = "test-scripted"``: the outcome for each contact comes from ``script``."""

    type = "test-scripted"
    channels = frozenset({"email", "sms", "card", "webhook"})
    script: ClassVar[dict[str, Any]] = {}
    calls: ClassVar[list[str]] = []
    in_flight: ClassVar[int] = 0
    most_in_flight: ClassVar[int] = 0
    on_send: ClassVar[Any] = None

    async def send(self, record: dict[str, Any], client: httpx.AsyncClient) -> Outcome:
        cls = type(self)
        cls.calls.append(record["contact_id"])
        cls.in_flight += 1
        cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        try:
            if cls.on_send is not None:
                cls.on_send()
            await asyncio.sleep(0.01)
            outcome = cls.script.get(record["contact_id"], Sent("ok"))
            if isinstance(outcome, Exception):
                raise outcome
            return outcome  # type: ignore[no-any-return]
        finally:
            cls.in_flight -= 1


@pytest.fixture(autouse=True)
def _reset_script() -> None:
    Scripted.script = {}
    Scripted.calls = []
    Scripted.in_flight = Scripted.most_in_flight = 0
    Scripted.on_send = None


def make_config(tmp_path: Path, sink_url: str = "http://127.0.0.1:9/x", **delivery: Any) -> Config:
    lines = [f"{k} = {json.dumps(v)}" for k, v in delivery.items()]
    (tmp_path / "regard.toml").write_text(
        "store = 'regard.db'\n[delivery]\n"
        + "\n".join(lines)
        + f'\n[providers.sink]\ntype = "webhook"\nurl = "{sink_url}"\nsecret = "{SECRET}"\n'
        + '[providers.scripted]\ntype = "test-scripted"\ncost = 2.5\n'
        + '[providers.outbox]\ntype = "file"\npath = "outbox.jsonl"\n',
        encoding="utf-8",
    )
    return load_config(tmp_path / "regard.toml")


def row(store: Store, did: str) -> dict[str, Any]:
    return dict(store.conn.execute("SELECT * FROM deliveries WHERE id = ?", (did,)).fetchone())


def log_of(store: Store, did: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in store.conn.execute(
            "SELECT state, detail FROM delivery_log WHERE delivery_id = ? ORDER BY rowid", (did,)
        )
    ]


def test_sends_each_due_delivery_once_with_its_id_as_idempotency_key(
    tmp_path: Path, store: Store
) -> None:
    with FaultySink() as sink:
        config = make_config(tmp_path, sink.url)
        ids = add_pending(store, [f"c{i}" for i in range(20)], due_at=to_epoch(AT) - 60)
        later = add_pending(store, ["late"], due_at=to_epoch(AT) + 60)
        result = dispatch(store, config, to_epoch(AT))
        assert (result.sent, result.failed, result.retried) == (20, 0, 0)
        assert sink.accepted() == {i: 1 for i in ids}
        assert all(keys == {did} for did, keys in sink.keys().items())
    assert states(store) == {**{i: "sent" for i in ids}, later[0]: "pending"}
    first = row(store, ids[0])
    assert first["sent_at"] == to_epoch(AT)
    assert first["attempts"] == 1
    assert first["provider_message_id"] is None  # webhooks have no message id of their own
    assert first["lease_owner"] is None
    assert [s for s, _ in log_of(store, ids[0])] == ["sending", "sent"]


def test_the_record_carries_exactly_the_contract_fields(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    add_pending(store, ["anna"], provider="outbox", due_at=to_epoch(AT))
    dispatch(store, config, to_epoch(AT))
    lines = (tmp_path / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    assert tuple(sorted(record)) == tuple(sorted(RECORD_FIELDS))
    assert record["to"] == "anna@example.org"
    assert record["created_at"] == "2026-06-01T09:00:00Z"


def test_passing_failures_come_back_later_with_backoff(tmp_path: Path, store: Store) -> None:
    with FaultySink(weights={"500": 1.0}) as sink:
        config = make_config(tmp_path, sink.url, backoff="1m", max_backoff="1h")
        [did] = add_pending(store, ["c1"], due_at=to_epoch(AT))
        result = dispatch(store, config, to_epoch(AT))
        assert (result.sent, result.retried) == (0, 1)
        r = row(store, did)
        assert r["state"] == "pending"
        assert r["attempts"] == 1
        assert r["reason"] is None
        assert "HTTP 500" in r["last_error"]
        assert to_epoch(AT) + 60 <= r["not_before"] <= to_epoch(AT) + 120
        # not due again at the same instant: one attempt per run and delivery
        assert dispatch(store, config, to_epoch(AT)).claimed == 0
        later = AT + timedelta(minutes=2)
        dispatch(store, config, to_epoch(later))
        r = row(store, did)
        assert r["attempts"] == 2
        assert to_epoch(later) + 120 <= r["not_before"] <= to_epoch(later) + 180


def test_retry_after_is_honoured_when_longer_than_the_backoff(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, backoff="1s")
    [did] = add_pending(store, ["c1"], provider="scripted", due_at=to_epoch(AT))
    Scripted.script["c1"] = Retry("HTTP 429: slow down", retry_after=3600)
    dispatch(store, config, to_epoch(AT))
    assert row(store, did)["not_before"] == to_epoch(AT) + 3600


def test_dead_after_the_last_attempt(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, attempts=3, backoff="1s", max_backoff="1s")
    [did] = add_pending(store, ["c1"], provider="scripted", due_at=to_epoch(AT))
    Scripted.script["c1"] = Retry("HTTP 503: down")
    failed = [dispatch(store, config, to_epoch(AT + timedelta(minutes=i))).failed for i in range(5)]
    assert failed == [0, 0, 1, 0, 0]
    r = row(store, did)
    assert (r["state"], r["attempts"]) == ("dead", 3)
    assert r["reason"] == "gave up after 3 attempts: HTTP 503: down"
    assert len(Scripted.calls) == 3


def test_permanent_failure_is_dead_at_once_with_the_answer_kept(
    tmp_path: Path, store: Store
) -> None:
    with FaultySink() as sink:
        config = make_config(tmp_path, sink.url)
        [did] = add_pending(store, ["bad-x"], due_at=to_epoch(AT))
        result = dispatch(store, config, to_epoch(AT))
    assert result.failed == 1
    r = row(store, did)
    assert r["state"] == "dead"
    assert r["reason"] == r["last_error"] == 'HTTP 422: {"error": "recipient rejected"}'
    assert r["attempts"] == 1


def test_unsubscribe_answer_records_a_suppression(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    [did] = add_pending(store, ["c1"], provider="scripted", due_at=to_epoch(AT))
    Scripted.script["c1"] = Dead("HTTP 422: inactive recipient", unsubscribe="c1@example.org")
    dispatch(store, config, to_epoch(AT))
    assert row(store, did)["state"] == "dead"
    supp = store.conn.execute("SELECT contact_id, channel, address FROM suppressions").fetchall()
    assert [tuple(s) for s in supp] == [("c1", "email", "c1@example.org")]


def test_an_adapter_that_raises_is_a_retry_not_a_crash(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    ids = add_pending(store, ["boom", "fine"], provider="scripted", due_at=to_epoch(AT))
    Scripted.script["boom"] = ZeroDivisionError("secret=hunter2")
    result = dispatch(store, config, to_epoch(AT))
    assert (result.sent, result.retried) == (1, 1)
    r = row(store, ids[0])
    assert r["state"] == "pending"
    assert r["last_error"] == "unexpected error: ZeroDivisionError"


def test_sent_records_the_provider_cost(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    [did] = add_pending(store, ["c1"], provider="scripted", due_at=to_epoch(AT))
    dispatch(store, config, to_epoch(AT))
    assert (row(store, did)["cost"], row(store, did)["provider_message_id"]) == (2.5, "ok")


def test_concurrency_is_bounded_per_provider(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, concurrency=3)
    add_pending(store, [f"c{i}" for i in range(30)], provider="scripted", due_at=to_epoch(AT))
    assert dispatch(store, config, to_epoch(AT)).sent == 30
    assert Scripted.most_in_flight == 3


def test_rate_spaces_requests(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, concurrency=8)
    config = config.model_copy(
        update={
            "providers": {
                **config.providers,
                "scripted": config.providers["scripted"].model_copy(update={"rate": "20/s"}),
            }
        }
    )
    add_pending(store, [f"c{i}" for i in range(11)], provider="scripted", due_at=to_epoch(AT))
    started = time.monotonic()
    assert dispatch(store, config, to_epoch(AT)).sent == 11
    assert time.monotonic() - started >= 0.45  # 10 gaps of 50 ms


def test_a_bad_rate_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    from regard.errors import ConfigError

    (tmp_path / "regard.toml").write_text(
        '[providers.outbox]\ntype = "file"\nrate = "fast"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"regard.toml:3: providers.outbox.rate"):
        load_config(tmp_path / "regard.toml")


def test_priority_goes_first(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, concurrency=1)
    add_pending(store, ["low"], provider="scripted", due_at=to_epoch(AT) - 100)
    add_pending(
        store, ["high"], campaign="vip", provider="scripted", priority=5, due_at=to_epoch(AT)
    )
    dispatch(store, config, to_epoch(AT))
    assert Scripted.calls == ["high", "low"]


def test_stop_releases_claimed_but_unsent_deliveries(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, concurrency=4)
    ids = add_pending(store, [f"c{i}" for i in range(12)], provider="scripted", due_at=to_epoch(AT))
    stop = threading.Event()
    Scripted.on_send = stop.set
    result = dispatch(store, config, to_epoch(AT), stop=stop)
    assert result.sent >= 1
    assert result.released >= 1
    final = states(store)
    assert "sending" not in final.values()
    assert sum(s == "sent" for s in final.values()) == result.sent == len(Scripted.calls)
    for did in ids:
        if final[did] == "pending":
            assert row(store, did)["attempts"] == 0


def test_stop_before_start_claims_nothing(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    add_pending(store, ["c1"], provider="scripted", due_at=to_epoch(AT))
    stop = threading.Event()
    stop.set()
    assert dispatch(store, config, to_epoch(AT), stop=stop).claimed == 0
    assert Scripted.calls == []


def test_unknown_provider_leaves_its_deliveries_pending(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    campaign_file(tmp_path, provider="scripted")  # the campaign loads; its old rows name "removed"
    [gone] = add_pending(store, ["c1"], provider="removed", due_at=to_epoch(AT))
    [ok] = add_pending(store, ["c2"], provider="scripted", due_at=to_epoch(AT))
    result = dispatch(store, config, to_epoch(AT))
    assert "removed" in result.skipped_providers
    assert states(store) == {gone: "pending", ok: "sent"}


def test_simulate_marks_due_deliveries_sent_without_calling_anyone(
    tmp_path: Path, store: Store
) -> None:
    config = make_config(tmp_path)
    ids = add_pending(store, ["c1", "c2"], provider="scripted", due_at=to_epoch(AT))
    [later] = add_pending(store, ["c3"], provider="scripted", due_at=to_epoch(AT) + 1)
    result = dispatch(store, config, to_epoch(AT), provider_factory=simulated_provider)
    assert result.sent == 2
    assert Scripted.calls == []
    assert states(store) == {ids[0]: "sent", ids[1]: "sent", later: "pending"}
    assert row(store, ids[0])["sent_at"] == to_epoch(AT)
    assert row(store, ids[0])["cost"] == 2.5


def test_simulated_sends_cover_providers_the_config_no_longer_has(
    tmp_path: Path, store: Store
) -> None:
    config = make_config(tmp_path)
    campaign_file(tmp_path, provider="scripted")  # the campaign loads; its old rows name "removed"
    [did] = add_pending(store, ["c1"], provider="removed", due_at=to_epoch(AT))
    result = dispatch(store, config, to_epoch(AT), provider_factory=simulated_provider)
    assert (result.sent, result.skipped_providers) == (1, {})
    assert (row(store, did)["state"], row(store, did)["cost"]) == ("sent", None)


def test_the_simulated_provider_is_no_type_a_config_can_name() -> None:
    from regard.providers import registered_types
    from regard.providers.simulated import SimulatedProvider

    assert SimulatedProvider not in registered_types().values()
    assert "simulated" not in registered_types()


class LockProbe(Provider):
    """``type = "test-lock-probe"``: contact ``first`` has the store locked by another
    connection for a while; ``second`` notes when its own (longer) request ended."""

    type = "test-lock-probe"
    channels = frozenset({"email"})
    store_path: ClassVar[Path]
    events: ClassVar[dict[str, float]] = {}

    async def send(self, record: dict[str, Any], client: httpx.AsyncClient) -> Outcome:
        events = type(self).events
        if record["contact_id"] == "first":
            locked = threading.Event()

            def hold_the_lock() -> None:
                import sqlite3

                other = sqlite3.connect(type(self).store_path, isolation_level=None)
                other.execute("BEGIN IMMEDIATE")
                locked.set()
                time.sleep(1.0)
                events["released"] = time.monotonic()
                other.execute("COMMIT")
                other.close()

            threading.Thread(target=hold_the_lock, daemon=True).start()
            while not locked.is_set():
                await asyncio.sleep(0.005)
            return Sent()  # its outcome now waits for the lock
        await asyncio.sleep(0.2)
        events["second done"] = time.monotonic()
        return Sent()


@pytest.mark.sqlite_only
def test_requests_go_on_while_the_store_waits_for_a_lock(tmp_path: Path, store: Store) -> None:
    """An outcome waiting for another process's write lock does not stop the event loop:
    the other request in flight finishes meanwhile, and both are recorded afterwards."""
    config = make_config(tmp_path, concurrency=2)
    probe = config.providers["scripted"].model_copy(update={"type": "test-lock-probe"})
    config = config.model_copy(update={"providers": {**config.providers, "probe": probe}})
    LockProbe.store_path = tmp_path / "regard.db"
    LockProbe.events = {}
    ids = add_pending(store, ["first", "second"], provider="probe", due_at=to_epoch(AT))
    result = dispatch(store, config, to_epoch(AT))
    assert result.sent == 2
    assert states(store) == {i: "sent" for i in ids}
    assert LockProbe.events["second done"] < LockProbe.events["released"]


def test_a_store_that_cannot_record_stops_the_dispatch_with_its_error(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from regard.delivery import claims

    config = make_config(tmp_path, concurrency=2)
    add_pending(store, [f"c{i}" for i in range(20)], provider="scripted", due_at=to_epoch(AT))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(claims, "record_outcomes", broken)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        dispatch(store, config, to_epoch(AT))
    assert len(Scripted.calls) < 20  # no new claims once recording failed


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    from regard.delivery.backoff import retry_delay

    settings = DeliverySettings(backoff=timedelta(minutes=1), max_backoff=timedelta(hours=1))
    for attempt in range(1, 12):
        base = min(60 * 2 ** (attempt - 1), 3600)
        delays = {retry_delay(attempt, settings).total_seconds() for _ in range(20)}
        assert all(base <= d <= min(base + 60, 3600) for d in delays), (attempt, delays)
    assert retry_delay(20, settings).total_seconds() == 3600
    assert retry_delay(1, settings, retry_after=1800).total_seconds() == 1800
    # a Retry-After longer than max_backoff is capped by it
    assert retry_delay(1, settings, retry_after=7200).total_seconds() == 3600
    tiny = DeliverySettings(backoff=timedelta(0), max_backoff=timedelta(0))
    assert retry_delay(1, tiny).total_seconds() == 1


def test_an_unsubscribe_after_the_tick_stops_the_delivery(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    by_contact, by_address, other_channel, fine = add_pending(
        store, ["c1", "c2", "c3", "c4"], provider="scripted", due_at=to_epoch(AT)
    )
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO suppressions (contact_id, channel, address, reason, created_at) "
            "VALUES (?, ?, ?, 'unsubscribed', 0)",
            [("c1", "*", None), (None, "email", "c2@example.org"), ("c3", "sms", None)],
        )
    result = dispatch(store, config, to_epoch(AT))
    assert result.unsubscribed == 2
    assert sorted(Scripted.calls) == ["c3", "c4"]
    assert states(store) == {
        by_contact: "skipped",
        by_address: "skipped",
        other_channel: "sent",
        fine: "sent",
    }
    assert row(store, by_contact)["reason"] == "unsubscribed"


def test_an_address_unsubscribed_after_the_tick_matches_as_the_tick_would(
    tmp_path: Path, store: Store
) -> None:
    """At send time an address suppression matches like the tick's check: case-insensitive,
    in its hashed (forgotten) form, and only for its own channel."""
    config = make_config(tmp_path)
    upper, hashed, other_channel = add_pending(
        store, ["c1", "c2", "c3"], provider="scripted", due_at=to_epoch(AT)
    )
    with store.write() as conn:
        conn.execute(
            "UPDATE deliveries SET message = json_set(message, '$.to', 'C1@Example.org') WHERE id = ?",
            (upper,),
        )
        conn.executemany(
            "INSERT INTO suppressions (contact_id, channel, address, reason, created_at) "
            "VALUES (NULL, ?, ?, 'unsubscribed', 0)",
            [
                ("email", "c1@example.org"),
                ("*", store.pseudonyms.address("c2@example.org")),
                ("sms", "c3@example.org"),
            ],
        )
    result = dispatch(store, config, to_epoch(AT))
    assert result.unsubscribed == 2
    assert Scripted.calls == ["c3"]
    assert states(store) == {upper: "skipped", hashed: "skipped", other_channel: "sent"}


def test_an_address_with_umlauts_matches_whatever_its_case(tmp_path: Path, store: Store) -> None:
    """Dispatch folds an address as the tick does, beyond ASCII: a suppression of
    ``jörg@example.org`` stops a message to ``JÖRG@Example.org``."""
    config = make_config(tmp_path)
    (umlauts,) = add_pending(store, ["c1"], provider="scripted", due_at=to_epoch(AT))
    with store.write() as conn:
        conn.execute(
            "UPDATE deliveries SET message = json_set(message, '$.to', 'JÖRG@Example.org')"
            " WHERE id = ?",
            (umlauts,),
        )
        conn.execute(
            "INSERT INTO suppressions (contact_id, channel, address, reason, created_at) "
            "VALUES (NULL, 'email', 'jörg@example.org', 'unsubscribed', 0)"
        )
    result = dispatch(store, config, to_epoch(AT))
    assert result.unsubscribed == 1
    assert Scripted.calls == []
    assert states(store) == {umlauts: "skipped"}
