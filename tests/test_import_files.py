from __future__ import annotations

import json
import subprocess

from conftest import Workspace, regard_command, subprocess_env
from import_helpers import contact, rows


def test_semicolon_csv_with_bom_and_quoted_multiline_fields(workspace: Workspace) -> None:
    path = workspace.root / "excel.csv"
    text = (
        "id;first_name;street;note\r\n"
        '1;Jürgen;"Lindenstraße 5; Hinterhaus";"zwei\r\nZeilen"\r\n'
        "\r\n"
        "2;Anna;;\r\n"
        "3;x\r\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    result = workspace.cli("import", "contacts", str(path))
    assert result.exit_code == 1
    assert f"{path}:6: row: 2 values, but the header has 4 columns" in result.stderr
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("3;x\r\n", "").encode("utf-8"))
    assert workspace.cli("import", "contacts", str(path)).exit_code == 0
    db = workspace.store_target
    c = contact(db, "1")  # the BOM did not become part of the first column's name
    assert c["first_name"] == "Jürgen" and c["street"] == "Lindenstraße 5; Hinterhaus"
    assert json.loads(c["attributes"]) == {"note": "zwei\r\nZeilen"}
    assert contact(db, "2")["street"] is None


def test_comma_csv_with_semicolons_inside_quotes(workspace: Workspace) -> None:
    path = workspace.write("c.csv", 'id,city,note\n1,Köln,"a;b;c;d"\n')
    assert workspace.cli("import", "contacts", str(path)).exit_code == 0
    assert json.loads(contact(workspace.store_target, "1")["attributes"]) == {"note": "a;b;c;d"}


def test_jsonl_from_stdin(workspace: Workspace) -> None:
    lines = '{"id": "1", "email": "a@b.de"}\n{"id": "2", "email": "broken"}\n'
    result = workspace.cli("import", "contacts", "-", input=lines)
    assert result.exit_code == 1
    assert "<stdin>:2: email: 'broken' is not a valid e-mail address" in result.stderr
    result = workspace.cli("import", "contacts", "-", "--skip-invalid", "--json", input=lines)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["inserted"], data["invalid"], data["dropped"]) == (2, 0, 1)
    assert data["problems"][0].startswith("<stdin>:2: email: ")
    assert data["problems"][0].endswith("(dropped)")


def test_stdin_through_a_real_pipe_shows_no_progress_bar(workspace: Workspace) -> None:
    lines = "".join(f'{{"id": "{n}"}}\n' for n in range(5000))
    done = subprocess.run(
        [*regard_command("--config", str(workspace.config)), "import", "contacts", "-"],
        input=lines,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "5000 rows: 5000 new" in done.stdout


def test_lines_that_are_not_rows(workspace: Workspace) -> None:
    path = workspace.write("c.jsonl", '{"id": "1"}\n{"id": \n[1, 2]\n')
    result = workspace.cli("import", "contacts", str(path))
    assert result.exit_code == 1
    assert f"{path}:2: row: not valid JSON: " in result.stderr
    assert f"{path}:3: row: expected a JSON object per line" in result.stderr
    assert "2 bad rows; nothing was imported" in result.stderr


def test_files_that_cannot_be_read(workspace: Workspace) -> None:
    cases = {
        "missing.csv": None,
        "c.xlsx": b"id\n1\n",
        "latin1.csv": "id,city\n1,Köln\n".encode("latin-1"),
        "empty.csv": b"",
        "twice.csv": b"id,email,email\n1,a@b.de,a@b.de\n",
    }
    for name, data in cases.items():
        if data is not None:
            (workspace.root / name).write_bytes(data)
    messages = {
        name: workspace.cli("import", "contacts", str(workspace.root / name)) for name in cases
    }
    for result in messages.values():
        assert result.exit_code == 1
    root = workspace.root
    assert f"{root}/missing.csv: no such file" in messages["missing.csv"].stderr
    assert "unknown file type '.xlsx': use .csv, .jsonl or .json" in messages["c.xlsx"].stderr
    assert f"{root}/latin1.csv:2: the file is not UTF-8 text" in messages["latin1.csv"].stderr
    assert "the file is empty (expected a header row)" in messages["empty.csv"].stderr
    assert f"{root}/twice.csv:1: email: the column appears twice" in messages["twice.csv"].stderr
    assert rows(root / "regard.db", "SELECT * FROM contacts") == []


def test_a_csv_without_its_required_columns(workspace: Workspace) -> None:
    contacts = workspace.write("c.csv", "email\na@b.de\n")
    result = workspace.cli("import", "contacts", str(contacts), "--skip-invalid")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {contacts}:1: id: the required column is missing (the header has: email)\n"
    )
    events = workspace.write("e.csv", "id;kunde;datum\n1;2;2026-01-01\n")
    result = workspace.cli("import", "events", str(events))
    assert result.exit_code == 1
    assert (
        f"{events}:1: contact_id: the required column is missing (the header has: id, kunde, datum)"
        in result.stderr
    )
    assert f"{events}:1: occurred_at: the required column is missing" in result.stderr


def test_a_terminal_gets_a_progress_bar(workspace: Workspace) -> None:
    import os
    import pty

    path = workspace.write("c.csv", "id\n" + "".join(f"{n}\n" for n in range(3000)))
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [*regard_command("--config", str(workspace.config)), "import", "contacts", str(path)],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            env=subprocess_env(),
            timeout=60,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal side is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0
    assert b"importing" in shown and b"100%" in shown
    assert "3000 rows: 3000 new" in done.stdout


def test_jsonl_values_of_the_wrong_kind(workspace: Workspace) -> None:
    contacts = workspace.write(
        "c.jsonl",
        '{"id": "1", "first_name": ["A"], "attributes": [1]}\n'
        '{"id": true}\n'
        '{"id": "3", "consent_email": "sometimes", "birthday": "1980-13-01"}\n',
    )
    result = workspace.cli("import", "contacts", str(contacts))
    assert result.exit_code == 1
    assert f'{contacts}:1: first_name: must be text, not ["A"]' in result.stderr
    assert f"{contacts}:1: attributes: must be a JSON object" in result.stderr
    assert f"{contacts}:2: id: must be text, not true" in result.stderr
    assert (
        f"{contacts}:3: consent_email: 'sometimes' is not a boolean (true/false, yes/no, 1/0, or empty)"
        in result.stderr
    )
    assert (
        f"{contacts}:3: birthday: '1980-13-01' is not a date (expected YYYY-MM-DD)" in result.stderr
    )
    assert "3 bad rows; nothing was imported" in result.stderr
    ok = workspace.write("ok.jsonl", '{"id": "1"}\n')
    assert workspace.cli("import", "contacts", str(ok)).exit_code == 0
    events = workspace.write(
        "e.jsonl",
        '{"id": "e1", "contact_id": "1", "occurred_at": "2026-01-01", "properties": "x", '
        '"items": [{"sku": "A", "quantity": "two"}], "amount": true}\n',
    )
    result = workspace.cli("import", "events", str(events))
    assert result.exit_code == 1
    assert f"{events}:1: properties: must be a JSON object" in result.stderr
    assert f"{events}:1: items: item 1: quantity must be a number" in result.stderr
    assert (
        f"{events}:1: amount: true is not a decimal number (like 49.90 or 49,90)" in result.stderr
    )
