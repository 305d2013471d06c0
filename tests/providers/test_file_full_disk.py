"""The file provider on a disk that fills up: a real 64 KiB tmpfs (mounted when the tests
run as root), and a real file-size limit (RLIMIT_FSIZE) in a process of its own, which
works everywhere. A line is written whole or not at all; the rest is retried later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import SRC, tmpfs
from faults.rows import add_pending, states
from regard.delivery import dispatch
from regard.store import open_store
from regard.times import to_epoch
from regard.workspace import load_config

T = to_epoch(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
BIG_TEXT = "Lieber Kunde, " + "ä" * 6000  # about 12 KB a record


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, or a skip where nothing can be mounted."""
    with tmpfs(tmp_path, "64k") as where:
        yield where


def outbox_workspace(tmp_path: Path, outbox: Path) -> Path:
    config = tmp_path / "regard.toml"
    config.write_text(
        "store = 'regard.db'\n[delivery]\nconcurrency = 4\n"
        f'[providers.outbox]\ntype = "file"\npath = "{outbox}"\n',
        encoding="utf-8",
    )
    return config


def check_outbox(outbox: Path, store_path: Path) -> tuple[int, int]:
    """Every line of the outbox is one whole record, one per delivery the store calls
    sent; returns (sent, pending)."""
    data = outbox.read_bytes()
    assert data.endswith(b"\n"), "a torn last line"
    records = [json.loads(line) for line in data.splitlines()]
    with open_store(store_path) as store:
        final = states(store)
        errors = [
            r[0]
            for r in store.conn.execute("SELECT last_error FROM deliveries WHERE state = 'pending'")
        ]
    sent = {i for i, s in final.items() if s == "sent"}
    assert sorted(r["delivery_id"] for r in records) == sorted(sent)
    assert errors and all(str(outbox) in e and "cannot write" in e for e in errors)
    return len(sent), len(errors)


def test_a_full_disk_leaves_whole_lines_and_retries_the_rest(
    tmp_path: Path, small_disk: Path
) -> None:
    outbox = small_disk / "messages.jsonl"
    config = load_config(outbox_workspace(tmp_path, outbox))
    with open_store(tmp_path / "regard.db") as store:
        ids = add_pending(store, [f"c{i}" for i in range(12)], provider="outbox", due_at=T)
        with store.write() as conn:
            conn.execute(
                "UPDATE deliveries SET message = json_set(message, '$.text', ?)", (BIG_TEXT,)
            )
        result = dispatch(store, config, T)
    sent, pending = check_outbox(outbox, tmp_path / "regard.db")
    assert 0 < sent < len(ids)  # was: all 12 "sent", 5 readable records and a torn line
    assert (result.sent, result.retried) == (sent, pending)
    # room again (the outbox was moved away): the next run goes on, in whole lines
    outbox.unlink()
    with open_store(tmp_path / "regard.db") as store:
        assert dispatch(store, config, T + 3600).sent > 0
    assert outbox.read_bytes().endswith(b"\n")


def test_a_short_write_under_a_file_size_limit_is_undone(tmp_path: Path) -> None:
    """RLIMIT_FSIZE in a child process: the write that crosses it is short, the next one
    fails (EFBIG). The record is not appended in part, and the caller sees an OSError."""
    outbox = tmp_path / "outbox.jsonl"
    script = f"""
import resource, signal, sys
from pathlib import Path
from regard.providers.file import append_line
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
path = Path({str(outbox)!r})
done = 0
for i in range(10):
    try:
        append_line(path, (("x" * 8000) + str(i) + "\\n").encode())
        done += 1
    except OSError as exc:
        print(done, exc.errno)
        sys.exit(0)
print(done, 0)
"""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.split()
    assert out[0] == "2"  # two whole lines fit in 20,000 bytes, the third did not
    data = outbox.read_bytes()
    assert len(data) == 2 * 8002
    assert [line[-1:] for line in data.splitlines()] == [b"0", b"1"]


def test_a_torn_line_left_behind_is_ended_before_the_next_record(tmp_path: Path) -> None:
    from regard.providers.file import append_line

    outbox = tmp_path / "outbox.jsonl"
    outbox.write_bytes(b'{"delivery_id": "d_1"}\n{"delivery_id": "d_2", "te')
    append_line(outbox, b'{"delivery_id": "d_3"}\n')
    lines = outbox.read_bytes().splitlines()
    assert json.loads(lines[0])["delivery_id"] == "d_1"
    assert json.loads(lines[2])["delivery_id"] == "d_3"
