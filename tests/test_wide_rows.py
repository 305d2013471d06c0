"""Wide rows and huge values: bounded (docs/import.md, Limits) with FILE:LINE errors, read
without holding them whole, and a wide row's attributes merged in one pass."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import subprocess_env
from regard.cli import cli
from regard.store import open_store
from regard.store.fields import MAX_COLUMNS, MAX_FIELD_CHARS, MAX_ROW_CHARS
from regard.store.rows import merge_patch

PEAK = Path(__file__).resolve().parent / "peak.py"


def regard(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``regard --config ROOT/regard.toml ARGS`` in this process (a new interpreter costs
    more than most of these imports); its exit code and output."""
    done = CliRunner().invoke(cli, ["--config", str(root / "regard.toml"), *args])
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return subprocess.CompletedProcess(args, done.exit_code, done.stdout, done.stderr)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "regard.toml").write_text('store = "regard.db"\n', encoding="utf-8")
    return tmp_path


def test_a_csv_header_wider_than_the_limit_is_refused_at_once(root: Path) -> None:
    """Before: one row of 100,000 columns took 121 s (48.7 s on a quiet machine), holding
    the write lock."""
    wide = root / "wide.csv"
    n = 100_000
    wide.write_text(
        "id," + ",".join(f"a{i}" for i in range(n)) + "\nc1," + ",".join("1" * n) + "\n",
        encoding="utf-8",
    )
    started = time.process_time()
    done = regard(root, "import", "contacts", str(wide))
    assert time.process_time() - started < 10  # CPU seconds, whatever the machine's load
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {wide}:1: the header has {n + 1} columns; a row may have at most "
        f"{MAX_COLUMNS} (see docs/import.md, Limits)"
    ]


def own_peak_mib(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``regard ARGS`` in its own process (tests/peak.py) and that process's own peak
    resident memory in MiB: its ``VmHWM``, not the ``ru_maxrss`` of ``os.wait4``, which on
    Linux starts from the pytest process's own high-water mark (inherited through fork and
    exec: 400 MB late in the suite, from earlier tests)."""
    where = root / "peak.kib"
    where.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, str(PEAK), str(where), "--config", str(root / "regard.toml"), *args],
        capture_output=True, text=True, env=subprocess_env(), cwd=root, timeout=300,
        check=False,
    )  # fmt: skip
    return done, int(where.read_text(encoding="ascii")) / 1024


def test_a_huge_value_is_refused_without_being_held(root: Path) -> None:
    """Before: a 200 MB value was accepted at 1.25 GB resident."""
    big = root / "big.jsonl"
    with big.open("w", encoding="utf-8") as out:
        out.write('{"id": "c0"}\n{"id": "c1", "note": "')
        for _ in range(150):
            out.write("x" * 1_000_000)
        out.write('"}\n{"id": "c2"}\n')
    small = root / "small.jsonl"
    small.write_text('{"id": "c0"}\n{"id": "c1", "note": "x"}\n{"id": "c2"}\n', encoding="utf-8")
    done, peak = own_peak_mib(root, "import", "contacts", str(big))
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"{big}:2: row: the row is longer than {MAX_ROW_CHARS} characters "
        "(see docs/import.md, Limits)"
    )
    (root / "regard.db").unlink(missing_ok=True)
    tiny, baseline = own_peak_mib(root, "import", "contacts", str(small))
    assert tiny.returncode == 0, tiny.stderr
    # measured: 61 MiB against 57 for the three-line file, so the 150 MB value cost 3-4 MiB;
    # holding it whole even once would cost 143 MiB more (before the bound: six times that)
    assert peak - baseline < 32, (peak, baseline)


def test_a_json_array_object_longer_than_a_row_may_be(root: Path) -> None:
    big = root / "big.json"
    big.write_text('[{"id": "c1", "note": "' + "x" * (3 * MAX_ROW_CHARS) + '"}]', "utf-8")
    done = regard(root, "import", "contacts", str(big))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {big}:1: the row is longer than {MAX_ROW_CHARS} characters "
        "(see docs/import.md, Limits)"
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            {"id": "c1", **{f"a{i}": i for i in range(MAX_COLUMNS)}},
            f"{MAX_COLUMNS + 1} fields; a row may have at most {MAX_COLUMNS}",
        ),
        (
            {"id": "c1", "attributes": {f"a{i}": i for i in range(MAX_COLUMNS)}},
            f"{MAX_COLUMNS + 2} fields; a row may have at most {MAX_COLUMNS}",
        ),
        (
            {"id": "c1", "note": "y" * (MAX_FIELD_CHARS + 1)},
            f"note: {MAX_FIELD_CHARS + 1} characters; a value may have at most {MAX_FIELD_CHARS}",
        ),
        (
            {"id": "c1", "attributes": {"memo": "y" * (MAX_FIELD_CHARS + 1)}},
            f"attributes: holds a text of {MAX_FIELD_CHARS + 1} characters",
        ),
    ],
)
def test_json_rows_over_the_limits_are_bad_lines(
    root: Path, row: dict[str, object], reason: str
) -> None:
    path = root / "rows.jsonl"
    path.write_text('{"id": "c0"}\n' + json.dumps(row) + "\n", encoding="utf-8")
    done = regard(root, "import", "contacts", str(path))
    assert done.returncode == 1
    assert done.stderr.splitlines()[0].startswith(f"{path}:2: row: {reason}")


def test_a_wide_row_within_the_limit_merges_its_attributes(root: Path) -> None:
    path = root / "wide.jsonl"
    first = {f"a{i}": f"v{i}" for i in range(900)}
    path.write_text(json.dumps({"id": "c1", "attributes": first}) + "\n", "utf-8")
    assert regard(root, "import", "contacts", str(path)).returncode == 0
    second = {f"a{i}": f"w{i}" for i in range(450, 990)} | {"a0": None}
    path.write_text(json.dumps({"id": "c1", "attributes": second}) + "\n", "utf-8")
    done = regard(root, "import", "contacts", str(path))
    assert done.returncode == 0, done.stderr
    assert "1 updated" in done.stdout
    with open_store(root / "regard.db") as store:
        stored = json.loads(
            store.conn.execute("SELECT attributes FROM contacts WHERE id = 'c1'").fetchone()[0]
        )
    expected = {k: v for k, v in first.items() if k != "a0"} | {
        f"a{i}": f"w{i}" for i in range(450, 990)
    }
    assert stored == expected
    assert list(stored) == list(expected)  # the order json_patch keeps: old keys, then new
    # the same file again changes nothing
    assert "1 unchanged" in regard(root, "import", "contacts", str(path)).stdout


@pytest.mark.parametrize(
    ("target", "patch"),
    [
        ('{"a":1,"b":{"c":2,"d":3}}', '{"b":{"c":null,"e":[1,2]},"f":"ü"}'),
        (None, '{"a":null,"b":1}'),
        ('{"a":1}', '{"a":{"x":null,"y":{"z":1}}}'),
        ('{"a":[1,{"b":2}]}', '{"a":{"b":3}}'),
        ('{"a":1}', "{}"),
    ],
)
def test_merge_patch_is_json_patch(target: str | None, patch: str) -> None:
    conn = sqlite3.connect(":memory:")
    expected = conn.execute("SELECT json_patch(coalesce(?, '{}'), ?)", (target, patch)).fetchone()
    assert merge_patch(target, patch) == expected[0]


def test_merge_patch_is_linear() -> None:
    """json_patch: 10,000 keys onto 10,000 took 2.1 s, 30,000 12.5 s (quadratic)."""
    n = 100_000
    target = json.dumps({f"a{i}": i for i in range(n)}, separators=(",", ":"))
    patch = json.dumps({f"a{i}": i + 1 for i in range(n)}, separators=(",", ":"))
    started = time.process_time()
    merged = merge_patch(target, patch)
    assert time.process_time() - started < 5
    assert merged is not None and json.loads(merged)["a99999"] == 100000
