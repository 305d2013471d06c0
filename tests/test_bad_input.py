"""Bad input through the real CLI: a clear error naming the file, line and field, the
documented exit status, never a traceback, and the store exactly as it was."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Workspace, regard_command, subprocess_env
from import_helpers import snapshot
from regard.store import open_store

SKELETON = Path(__file__).resolve().parent.parent / "src" / "regard" / "skeleton"

CONTACTS = "id,email,first_name,consent_email\n1,a@example.com,Jörg,true\n"
EVENTS = "id,contact_id,occurred_at,amount\ne1,1,2026-11-02T10:00,10\n"


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    """A workspace with the shipped examples, one contact and one order in the store."""
    shutil.rmtree(workspace.root / "campaigns")
    shutil.rmtree(workspace.root / "templates")
    shutil.copytree(SKELETON / "campaigns", workspace.root / "campaigns")
    shutil.copytree(SKELETON / "templates", workspace.root / "templates")
    workspace.write("contacts.csv", CONTACTS)
    workspace.write("events.csv", EVENTS)
    assert workspace.cli("import", "contacts", str(workspace.root / "contacts.csv")).exit_code == 0
    assert workspace.cli("import", "events", str(workspace.root / "events.csv")).exit_code == 0
    return workspace


def write_bytes(ws: Workspace, name: str, data: bytes) -> Path:
    path = ws.root / name
    path.write_bytes(data)
    return path


# file name, content, kind, the fragment the error must contain
BAD_IMPORTS = [
    ("latin1.csv", "id,email\n1,J\xf6rg@example.com\n".encode("latin-1"), "contacts",
     "latin1.csv:2: the file is not UTF-8 text"),
    ("utf16.csv", "id,email\n1,a@example.com\n".encode("utf-16"), "contacts",
     "utf16.csv:1: the file is not UTF-8 text"),
    ("empty.csv", b"", "events", "empty.csv: the file is empty"),
    ("array.jsonl", b"[1, 2]\n", "contacts", "array.jsonl:1: row: expected a JSON object"),
    ("broken.jsonl", b'{"id": 1,\n', "contacts", "broken.jsonl:1: row: not valid JSON"),
    ("nested.jsonl", b'{"id": "2", "email": {"a": 1}}\n', "contacts",
     'nested.jsonl:1: email: must be text, not {"a": 1}'),
    ("huge.csv", b"id,contact_id,occurred_at,amount\ne2,1,2026-01-01," + b"9" * 40 + b"\n",
     "events", "huge.csv:2: amount: '" + "9" * 40 + "' is too large"),
    ("nan.jsonl", b'{"id":"e2","contact_id":"1","occurred_at":"2026-01-01","amount":NaN}\n',
     "events", "nan.jsonl:1: amount: NaN is not a decimal number"),
    ("items.jsonl",
     b'{"id":"e2","contact_id":"1","occurred_at":"2026-01-01","items":[{"sku":"a","quantity":1e400}]}\n',
     "events", "items.jsonl:1: items: item 1: quantity must be a number"),
    ("inf.csv", b"id,contact_id,occurred_at,amount\ne2,1,2026-01-01,Infinity\n", "events",
     "inf.csv:2: amount: 'Infinity' is not a decimal number"),
    ("zero.csv", b"id,contact_id,occurred_at\ne2,1,0000-00-00\n", "events",
     "zero.csv:2: occurred_at: '0000-00-00' is not an ISO 8601 time"),
    ("far.csv", b"id,contact_id,occurred_at\ne2,1,99999-01-01\n", "events",
     "far.csv:2: occurred_at: '99999-01-01' is not an ISO 8601 time"),
    ("offset.csv", b"id,contact_id,occurred_at\ne2,1,2026-01-01T10:00:00+99:00\n", "events",
     "offset.csv:2: occurred_at: '2026-01-01T10:00:00+99:00' is not an ISO 8601 time"),
    ("year1.csv", b"id,contact_id,occurred_at\ne2,1,0001-01-01T00:00:00+05:00\n", "events",
     "year1.csv:2: occurred_at: '0001-01-01T00:00:00+05:00' is outside the years 1000 to 2999"),
    ("year9999.csv", b"id,contact_id,occurred_at\ne2,1,9999-12-31T23:59:59-05:00\n", "events",
     "year9999.csv:2: occurred_at: '9999-12-31T23:59:59-05:00' is outside the years"),
    ("birthday.csv", b"id,email,birthday\n2,b@example.com,0000-00-00\n", "contacts",
     "birthday.csv:2: birthday: '0000-00-00' is not a date"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "kind", "fragment"), BAD_IMPORTS, ids=[c[0] for c in BAD_IMPORTS]
)
def test_a_bad_import_names_file_line_and_field_and_changes_nothing(
    shop: Workspace, name: str, content: bytes, kind: str, fragment: str
) -> None:
    before = snapshot(shop.root / "regard.db")
    write_bytes(shop, name, content)
    result = shop.cli("import", kind, str(shop.root / name))
    assert result.exit_code == 1, result.output
    assert fragment in result.output
    assert snapshot(shop.root / "regard.db") == before


def test_import_of_a_folder_or_a_missing_file(shop: Workspace) -> None:
    (shop.root / "folder.csv").mkdir()
    result = shop.cli("import", "contacts", str(shop.root / "folder.csv"))
    assert result.exit_code == 1
    assert "folder.csv: cannot read" in result.output
    result = shop.cli("import", "contacts", str(shop.root / "missing.csv"))
    assert result.exit_code == 1
    assert "missing.csv: no such file" in result.output


def test_a_header_only_file_imports_nothing(shop: Workspace) -> None:
    before = snapshot(shop.root / "regard.db")
    shop.write("header.csv", "id,email\n")
    result = shop.cli("import", "contacts", str(shop.root / "header.csv"))
    assert result.exit_code == 0
    assert "0 rows" in result.output
    assert snapshot(shop.root / "regard.db") == before


def test_instants_out_of_range_cannot_break_the_commands_that_read_them(shop: Workspace) -> None:
    shop.write("far.csv", "id,contact_id,occurred_at,amount\ne9,1,2999-12-31T12:00,5\n")
    assert shop.cli("import", "events", str(shop.root / "far.csv")).exit_code == 0
    for command in (["contacts", "show", "1"], ["report"], ["plan"]):
        result = shop.cli(*command)
        assert result.exit_code == 0, result.output


FILE = pytest.mark.sqlite_only  # the store file's own errors (a PostgreSQL store has none)

# what the line of regard.toml becomes, the fragment of the error
BAD_CONFIGS = [
    ('locale = "de"', "locale = { a = 1 }", "regard.toml:2: locale: Input should be a valid string"),
    pytest.param('store = "regard.db"', "store = [1]",
                 "regard.toml:4: store: Input should be a valid string", marks=FILE),
    ('type = "file"', "", "providers.outbox.type: required key is missing"),
    ('type = "file"', 'type = "pigeon"', "unknown provider type 'pigeon'"),
    pytest.param('store = "regard.db"', 'store = "blocker/sub/regard.db"',
                 "blocker/sub/regard.db: cannot create the store's folder", marks=FILE),
    pytest.param('store = "regard.db"', 'store = "folder.db"',
                 "folder.db: is a folder, not a store file", marks=FILE),
    pytest.param('store = "regard.db"', 'store = "junk.db"',
                 "junk.db: cannot open the store: the file is not", marks=FILE),
]  # fmt: skip


@pytest.mark.parametrize(("line", "replacement", "fragment"), BAD_CONFIGS)
def test_a_bad_config_names_the_line_and_key(
    workspace: Workspace, line: str, replacement: str, fragment: str
) -> None:
    (workspace.root / "blocker").write_text("a file, not a folder")
    (workspace.root / "folder.db").mkdir()
    (workspace.root / "junk.db").write_text("not a database")
    text = workspace.config.read_text(encoding="utf-8")
    assert line in text
    workspace.config.write_text(text.replace(line, replacement, 1), encoding="utf-8")
    result = workspace.cli("run")
    assert result.exit_code == 1, result.output
    assert fragment in result.output


def test_a_config_that_is_not_utf8_names_the_line(workspace: Workspace) -> None:
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_bytes(text.encode("latin-1"))
    result = workspace.cli("status")
    assert result.exit_code == 1
    assert "regard.toml:11: the file is not UTF-8 text" in result.output


def raw_snapshot(target: Path | str) -> dict[str, list[tuple[object, ...]]]:
    """The store's rows read past regard (which refuses a newer store): the SQLite file,
    or the PostgreSQL database."""
    if isinstance(target, Path):
        return snapshot(target)
    import psycopg

    with psycopg.connect(target) as conn:
        return {
            t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in ("migrations", "contacts", "events", "deliveries")
        }


def test_a_store_of_a_newer_regard_is_refused_untouched(shop: Workspace) -> None:
    db = shop.store_target
    with open_store(db) as store, store.write() as conn:
        conn.execute("INSERT INTO migrations (name, applied_at) VALUES ('m999_from_the_future', 0)")
    before = raw_snapshot(db)
    for command in (["status"], ["import", "contacts", str(shop.root / "contacts.csv")], ["run"]):
        result = shop.cli(*command)
        assert result.exit_code == 1
        assert "written by a newer version of regard (unknown migration m999_from_the_future)" in (
            result.output
        )
    assert raw_snapshot(db) == before


@pytest.mark.sqlite_only
def test_a_read_only_store_is_named_and_left_as_it_was(shop: Workspace) -> None:
    db = shop.root / "regard.db"
    shop.cli("status")  # settle the WAL so that only the store file matters
    before = snapshot(db)
    # root ignores permissions: the immutable attribute binds it too, where the file system has it
    made_read_only = shutil.which("chattr") is not None and (
        subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode == 0
    )
    if not made_read_only:
        if os.geteuid() == 0:
            pytest.skip("cannot make a file read-only for root here")
        db.chmod(0o444)
    try:
        shop.write("more.csv", "id,email\n7,x@example.com\n")
        result = shop.cli("import", "contacts", str(shop.root / "more.csv"))
        assert result.exit_code == 1, result.output
        assert "regard.db: cannot write the store: it is read-only" in result.output
    finally:
        if made_read_only:
            subprocess.run(["chattr", "-i", str(db)], check=True)
        db.chmod(0o644)
    assert snapshot(db) == before


# campaign file → the fragment `regard check` must print
BAD_CAMPAIGNS = [
    ('holdout = 0.1', 'holdout = "10%"', "birthday.toml:8: holdout: Input should be a valid number"),
    ('holdout = 0.1', "holdout = 0.1\npriority = 1.5",
     "birthday.toml:9: priority: Input should be a valid integer"),
    ('at = "08:00"', 'at = "25:00"', "birthday.toml:13: trigger.at: '25:00' is not a time of day"),
    ('at = "08:00"', "at = 8", 'birthday.toml:13: trigger.at: a time of day is a string like "09:00"'),
    ('at = "08:00"', 'at = "08:00"\nyears = [0]',
     "birthday.toml:14: trigger.years.0: Input should be greater than or equal to 1"),
    ('max_lateness = "12h"', 'max_lateness = "99999999999999w"',
     "birthday.toml:7: max_lateness: '99999999999999w' is longer than 100 years"),
    ('within = "14d"', 'within = "999999999999d"',
     "birthday.toml:20: goal.within: '999999999999d' is longer than 100 years"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "replacement", "fragment"), BAD_CAMPAIGNS)
def test_a_bad_campaign_names_the_line_and_key(
    shop: Workspace, line: str, replacement: str, fragment: str
) -> None:
    path = shop.root / "campaigns" / "birthday.toml"
    text = path.read_text(encoding="utf-8")
    assert line in text
    path.write_text(text.replace(line, replacement, 1), encoding="utf-8")
    for command in (["check"], ["run"]):
        result = shop.cli(*command)
        assert result.exit_code == 1, result.output
        assert fragment in result.output


def test_reversed_window_hours_are_named(shop: Workspace) -> None:
    path = shop.root / "campaigns" / "thank-you.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("hours = [9, 19]", "hours = [18, 9]"), encoding="utf-8")
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "thank-you.toml:16: window.hours: hours is [start, end]" in result.output


def test_files_that_are_not_utf8_name_file_and_line(shop: Workspace) -> None:
    (shop.root / "campaigns" / "birthday.toml").write_bytes(b'name = "Gr\xfc\xdfe"\n')
    template = shop.root / "templates" / "thank-you.de.j2"
    template.write_bytes(template.read_bytes() + b"\n{# Gr\xfc\xdfe #}\n")
    lines = template.read_bytes().count(b"\n")
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "birthday.toml:1: the file is not UTF-8 text" in result.output
    assert f"thank-you.de.j2:{lines}: the file is not UTF-8 text" in result.output
    result = shop.cli("preview", "thank-you", "1", "--at", "2026-11-04T11:00")
    assert result.exit_code == 1
    assert f"thank-you.de.j2:{lines}: the file is not UTF-8 text" in result.output


def test_a_template_syntax_error_names_file_and_line(shop: Workspace) -> None:
    template = shop.root / "templates" / "thank-you.de.j2"
    text = template.read_text(encoding="utf-8")
    broken = text.replace(
        "{{ contact | greeting(formal=true) }}", "{{ contact | greeting(formal=true) }", 1
    )
    template.write_text(broken)
    before = snapshot(shop.root / "regard.db")
    result = shop.cli("preview", "thank-you", "1", "--at", "2026-11-04T11:00")
    assert result.exit_code == 1
    assert "thank-you.de.j2:8: unexpected '}'" in result.output
    assert snapshot(shop.root / "regard.db") == before
    assert "thank-you.de.j2:8: unexpected '}'" in shop.cli("check").output
    result = shop.cli("run", "--at", "2026-11-04T11:00")
    assert result.exit_code == 0, result.output
    assert "warning: skipped, the template does not render: " in result.stderr
    assert "thank-you.de.j2:8: unexpected '}'" in result.stderr
    assert shop.outbox() == []


# arguments: the command, its exit status, the fragment
BAD_ARGUMENTS = [
    (["plan", "--at", "garbage"], 2, "'garbage' is not an ISO 8601 time"),
    (["run", "--at", "0001-01-01T00:00:00+05:00"], 2, "is outside the years 1000 to 2999"),
    (["run", "--at", "99999-01-01"], 2, "'99999-01-01' is not an ISO 8601 time"),
    (["report", "--since", "garbage"], 2, "Invalid value for --since"),
    (["report", "--html", "/proc/no/such/folder/report.html"], 1,
     "--html /proc/no/such/folder/report.html: cannot write"),
    (["simulate", "--from", "2026-05-01", "--to", "2026-01-01"], 2, "--to is before --from"),
    (["preview", "thank-you", "1", "--event", "nope"], 1, "contact '1' has no event with id 'nope'"),
    (["contacts", "show", "nope"], 1, "unknown contact 'nope'"),
    (["deliveries", "retry", "nope"], 1, "no such delivery: nope"),
    (["deliveries", "cancel", "nope"], 1, "no such delivery: nope"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "status", "fragment"), BAD_ARGUMENTS)
def test_bad_arguments_are_named_and_change_nothing(
    shop: Workspace, args: list[str], status: int, fragment: str
) -> None:
    before = snapshot(shop.root / "regard.db")
    result = shop.cli(*args)
    assert result.exit_code == status, result.output
    assert fragment in result.output
    assert snapshot(shop.root / "regard.db") == before


@pytest.mark.parametrize("command", ["init", "demo"])
def test_a_workspace_folder_that_cannot_be_created_is_named(
    workspace: Workspace, command: str
) -> None:
    (workspace.root / "blocker").write_text("a file, not a folder")
    result = workspace.cli(command, str(workspace.root / "blocker" / "shop"))
    assert result.exit_code == 1, result.output
    assert "blocker/shop: cannot create the folder: Not a directory (pass another DIR)" in (
        result.output
    )


@pytest.mark.slow
def test_ctrl_c_during_an_import_leaves_the_store_as_it_was(shop: Workspace) -> None:
    """The import reads JSON lines from a pipe: once it has written its first batches it
    blocks reading the next line, and Ctrl-C reaches it there, in the middle of the
    import's transaction, every time."""
    db = shop.root / "regard.db"
    before = snapshot(db)
    process = subprocess.Popen(
        [*regard_command("--config", str(shop.config)), "import", "contacts", "-"],
        cwd=shop.root,
        env=subprocess_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    for i in range(5_000):  # two batches written, the third one half read
        process.stdin.write(json.dumps({"id": f"c{i}", "email": f"c{i}@example.com"}) + "\n")
    process.stdin.flush()
    wait_until_blocked_reading(process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "Aborted!" in stderr
    assert "Traceback" not in stderr
    assert snapshot(db) == before


def wait_until_blocked_reading(process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until the process sleeps in a read of its standard input (Linux /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the import ended before it was interrupted"
        try:
            state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            call = Path(f"/proc/{process.pid}/syscall").read_text().split()
        except (OSError, IndexError):
            call, state = [], ""
        # syscall 0 on x86-64 (63 on arm64) is read; its first argument the fd, 0x0 = stdin
        if state == "S" and call[:2] in (["0", "0x0"], ["63", "0x0"]):
            return
        time.sleep(0.01)
    raise AssertionError("the import never blocked reading its input")
