"""A store's disk or file failing under a real process: a full disk (a real tmpfs) during an
import and during a run, a damaged page reached during a run, JSON nested too deeply in an
import. Each is one ``error:`` line naming the store (or the file and line) and what
happened, never a traceback, and the store keeps what it had."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_regard as regard
from conftest import tmpfs

T = "2026-06-01T09:00:00Z"


def workspace(root: Path, store: Path, contacts: int) -> Path:
    (root / "regard.toml").write_text(
        f'store = "{store}"\ntimezone = "UTC"\n'
        f'[providers.out]\ntype = "file"\npath = "{root / "outbox.jsonl"}"\n',
        encoding="utf-8",
    )
    (root / "campaigns").mkdir(exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)
    (root / "campaigns" / "thanks.toml").write_text(
        'channel = "email"\nprovider = "out"\ntemplate = "thanks"\n'
        '[trigger]\ntype = "post_purchase"\n',
        encoding="utf-8",
    )
    (root / "templates" / "thanks.j2").write_text(
        "{% block subject %}Danke{% endblock %}{% block text %}Danke, {{ contact.id }}!"
        "{% endblock %}",
        encoding="utf-8",
    )
    rows = [f"c{i}" for i in range(contacts)]
    (root / "contacts.csv").write_text(
        "id,email,consent_email\n" + "".join(f"{c},{c}@example.org,yes\n" for c in rows),
        encoding="utf-8",
    )
    (root / "events.csv").write_text(
        "id,contact_id,occurred_at,amount\n"
        + "".join(f"o-{c},{c},2026-06-01T08:00:00Z,10\n" for c in rows),
        encoding="utf-8",
    )
    return root


def counts(store: Path) -> tuple[int, ...]:
    with sqlite3.connect(store) as conn:
        return tuple(
            conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("contacts", "events", "deliveries", "ticks")
        )


def no_traceback(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: "), done.stderr
    return lines[-1]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path, "1m") as where:
        yield where


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` up to ``leave`` free bytes."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    written = (disk / "filler").stat().st_size
    (disk / "filler").unlink()
    (disk / "filler").write_bytes(b"\0" * max(written - leave, 0))


def test_an_import_on_a_full_disk_is_an_error_and_imports_nothing(
    tmp_path: Path, small_disk: Path
) -> None:
    store = small_disk / "regard.db"
    root = workspace(tmp_path, store, contacts=3)
    assert regard(root, "import", "contacts", str(root / "contacts.csv")).returncode == 0
    before = counts(store)
    big = tmp_path / "many.csv"
    big.write_text(
        "id,email,first_name\n"
        + "".join(f"m{i},m{i}@example.org,{'n' * 40}\n" for i in range(20000)),
        encoding="utf-8",
    )
    done = regard(root, "import", "contacts", str(big))
    line = no_traceback(done)  # was: a traceback ending in "database or disk is full"
    assert line == (
        f"error: {store}: cannot write the store: the disk holding it is full (free some "
        "space, then run the command again) (database or disk is full); nothing of this "
        "change was written"
    )
    (small_disk / "regard.db-wal").unlink(missing_ok=True)
    assert counts(store) == before


def test_a_run_on_a_full_disk_is_an_error_and_decides_nothing(
    tmp_path: Path, small_disk: Path
) -> None:
    store = small_disk / "regard.db"
    root = workspace(tmp_path, store, contacts=200)
    for kind in ("contacts", "events"):
        assert regard(root, "import", kind, str(root / f"{kind}.csv")).returncode == 0
    before = counts(store)
    fill(small_disk, leave=48 * 1024)  # the shared-memory file and a few pages
    done = regard(root, "run", "--at", T)
    line = no_traceback(done)
    assert line.startswith(f"error: {store}: ")
    assert "the disk holding it is full" in line
    print(f"\n{line}")
    (small_disk / "filler").unlink()
    assert counts(store)[:3] == before[:3]  # no delivery decided (the run's record is kept)
    assert not (tmp_path / "outbox.jsonl").exists()


def test_a_damaged_page_reached_during_a_run_is_an_error(tmp_path: Path) -> None:
    store = tmp_path / "regard.db"
    root = workspace(tmp_path, store, contacts=300)
    for kind in ("contacts", "events"):
        assert regard(root, "import", kind, str(root / f"{kind}.csv")).returncode == 0
    with sqlite3.connect(store) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [
            r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = 'events' LIMIT 3")
        ]
    with store.open("r+b") as file:
        for page in pages[1:]:  # not the table's root: the store opens, the run reads it
            file.seek((page - 1) * size)
            file.write(b"\xa5" * size)
    done = regard(root, "run", "--at", T)
    line = no_traceback(done)  # was: sqlite3.DatabaseError: database disk image is malformed
    assert line.startswith(f"error: {store}: ")
    assert "the store file is damaged (restore it from a backup, docs/operations.md)" in line
    assert "(database disk image is malformed)" in line


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "deep.json",
            '[{"id": "c1", "x": ' + "[" * 5000 + "]" * 5000 + "}]",
            "error: {path}:1: nested too deeply (more than 32 levels of [ and {{)",
        ),
        (
            "deep.jsonl",
            '{"id": "c0"}\n{"id": "c1", "x": ' + "[" * 1500 + "]" * 1500 + "}\n",
            "{path}:2: row: nested too deeply (more than 32 levels of [ and {{)",
        ),
        (
            "deep2.jsonl",
            '{"id": "c1", "x": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}\n",
            "{path}:1: row: nested too deeply (more than 32 levels of [ and {{)",
        ),
    ],
)
def test_json_nested_too_deeply_is_a_bad_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    store = tmp_path / "regard.db"
    root = workspace(tmp_path, store, contacts=2)
    assert regard(root, "import", "contacts", str(root / "contacts.csv")).returncode == 0
    before = counts(store)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    done = regard(root, "import", "contacts", str(path))
    no_traceback(done)  # was: RecursionError, no FILE:LINE
    assert (
        expected.format(path=path) in done.stderr.splitlines()[0]
        or expected.format(path=path) in done.stderr.splitlines()[-1]
    )
    assert counts(store) == before


def test_events_csv_with_json_nested_too_deeply(tmp_path: Path) -> None:
    store = tmp_path / "regard.db"
    root = workspace(tmp_path, store, contacts=2)
    assert regard(root, "import", "contacts", str(root / "contacts.csv")).returncode == 0
    path = tmp_path / "deep.csv"
    deep_list = "[" * 5000 + "]" * 5000
    deep_object = '{""a"":' * 5000 + "1" + "}" * 5000
    path.write_text(
        f'id,contact_id,occurred_at,items,properties\no1,c1,{T},"{deep_list}","{deep_object}"\n',
        encoding="utf-8",
    )
    done = regard(root, "import", "events", str(path))
    no_traceback(done)
    assert done.stderr.splitlines()[:2] == [
        f"{path}:2: items: nested too deeply (more than 32 levels of [ and {{)",
        f"{path}:2: properties: nested too deeply (more than 32 levels of [ and {{)",
    ]
