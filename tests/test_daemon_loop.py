"""The scheduler loop in-process, with tick functions that record what the loop did:
timing, no overlap, coalescing after a slow tick, failures survived, stop mid-tick."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from regard.config import Config
from regard.daemon import Daemon
from regard.daemon.logs import setup_logging
from regard.daemon.presence import read_record
from regard.errors import CampaignError
from regard.store import Store, open_store
from regard.workspace import load_config


def config_with_interval(workspace: Any, interval: str = "1s") -> Config:
    text = workspace.config.read_text(encoding="utf-8")
    workspace.write("regard.toml", text + f'\n[scheduler]\ninterval = "{interval}"\n')
    return load_config(workspace.config)


class Recorder:
    """A tick function that records when each tick ran and how many ran at once."""

    def __init__(self, seconds: float = 0.0, fail_on: set[int] | None = None) -> None:
        self.seconds = seconds
        self.fail_on = fail_on or set()
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.ats: list[datetime] = []
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def __call__(
        self, store: Store, config: Config, at: datetime, stop: threading.Event
    ) -> dict[str, Any]:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.starts.append(time.monotonic())
            self.ats.append(at)
            number = len(self.starts)
        try:
            stop.wait(self.seconds)
            if number in self.fail_on:
                raise RuntimeError(f"tick {number} broke")
            return {"evaluated": number, "enqueued": {"pending": 1}, "sent": 1}
        finally:
            with self.lock:
                self.running -= 1
                self.ends.append(time.monotonic())


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = setup_logging("json", {"s3cr3t-value", 'pa"ss\\word'}, stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def serve_for(daemon: Daemon, seconds: float | None = None, until: Any = None) -> None:
    """Run ``daemon.serve()`` in a thread; stop it after ``seconds`` or once ``until()``."""
    thread = threading.Thread(target=daemon.serve)
    thread.start()
    deadline = time.monotonic() + (seconds if seconds is not None else 30)
    while time.monotonic() < deadline and not (until and until()):
        time.sleep(0.05)
    daemon.stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the daemon did not stop"


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_ticks_every_interval_starting_at_once(workspace: Any, log: io.StringIO) -> None:
    recorder = Recorder()
    daemon = Daemon(config_with_interval(workspace, "1s"), recorder)
    began = time.monotonic()
    serve_for(daemon, until=lambda: len(recorder.starts) >= 4)
    assert recorder.starts[0] - began < 0.5
    gaps = [b - a for a, b in zip(recorder.starts, recorder.starts[1:], strict=False)]
    assert all(0.8 < gap < 1.3 for gap in gaps), gaps
    ticks = [entry for entry in lines(log) if entry.get("event") == "tick"]
    assert len(ticks) >= 4
    assert ticks[0]["evaluated"] == 1 and ticks[0]["enqueued"] == {"pending": 1}
    assert ticks[0]["sent"] == 1 and "duration" in ticks[0]


def test_slow_tick_delays_the_next_instead_of_overlapping(workspace: Any, log: io.StringIO) -> None:
    recorder = Recorder(seconds=2.5)
    daemon = Daemon(config_with_interval(workspace, "1s"), recorder)
    serve_for(daemon, until=lambda: len(recorder.starts) >= 3)
    assert recorder.most_at_once == 1
    # each tick starts right after the slow one ended: the missed slots coalesce into one
    for end, start in zip(recorder.ends, recorder.starts[1:], strict=False):
        assert 0 <= start - end < 0.6, (end, start)
    warnings = [e for e in lines(log) if e.get("event") == "tick_overran"]
    assert 1 <= len(warnings) <= 3  # once per slow tick, not once per missed slot


def test_failing_tick_is_logged_and_the_next_one_runs(workspace: Any, log: io.StringIO) -> None:
    recorder = Recorder(fail_on={1, 2})
    daemon = Daemon(config_with_interval(workspace, "1s"), recorder)
    serve_for(daemon, until=lambda: len(recorder.ends) >= 3)
    entries = lines(log)
    failed = [e for e in entries if e.get("event") == "tick_failed"]
    assert len(failed) == 2
    assert "RuntimeError: tick 1 broke" in failed[0]["msg"] and "error" in failed[0]
    assert "error" in failed[1] and "tick 2 broke" in failed[1]["msg"]
    assert any(e.get("event") == "tick" for e in entries)
    assert daemon.failed_ticks == 2 and daemon.ticks >= 3


def test_same_error_every_tick_gets_one_traceback(workspace: Any, log: io.StringIO) -> None:
    def broken(store: Store, config: Config, at: datetime, stop: threading.Event) -> None:
        raise CampaignError("campaigns/x.toml:3: trigger.delay: 'soon' is not a duration")

    calls: list[datetime] = []

    def counting(store: Store, config: Config, at: datetime, stop: threading.Event) -> None:
        calls.append(at)
        raise ValueError("same problem")

    config = config_with_interval(workspace, "1s")
    daemon = Daemon(config, counting)
    serve_for(daemon, until=lambda: len(calls) >= 3)
    failed = [e for e in lines(log) if e.get("event") == "tick_failed"]
    assert "error" in failed[0]
    assert all("error" not in e and "same as the previous tick" in e["msg"] for e in failed[1:])

    daemon = Daemon(config, broken)
    serve_for(daemon, until=lambda: daemon.failed_ticks >= 1)
    last = [e for e in lines(log) if e.get("event") == "tick_failed"][-1]
    # a RegardError is a message for a person, not a traceback
    assert "campaigns/x.toml:3: trigger.delay" in last["msg"] and "error" not in last


def test_stop_mid_tick_waits_for_the_tick_and_records_a_clean_stop(workspace: Any) -> None:
    recorder = Recorder(seconds=60)  # waits on the stop event, like dispatch does
    config = config_with_interval(workspace, "1s")
    daemon = Daemon(config, recorder)
    serve_for(daemon, until=lambda: recorder.running == 1)
    assert len(recorder.ends) == len(recorder.starts) == 1
    with open_store(config.store_target) as store:
        record = read_record(store)
    assert record is not None and record.stopped_at is not None
    assert record.ticks == 1 and record.interval == 1


def test_secrets_are_redacted_in_every_line(workspace: Any, log: io.StringIO) -> None:
    def leaky(store: Store, config: Config, at: datetime, stop: threading.Event) -> None:
        raise RuntimeError('POST https://crm.example.com/?token=s3cr3t-value failed (pa"ss\\word)')

    daemon = Daemon(config_with_interval(workspace, "1s"), leaky)
    serve_for(daemon, until=lambda: daemon.failed_ticks >= 1)
    text = log.getvalue()
    assert "s3cr3t-value" not in text and "ss\\\\word" not in text
    assert "token=***" in text and "failed (***)" in text
