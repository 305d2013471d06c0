"""A newline (or another control character) in a campaign's file name, a contact id or a
provider's reason never starts a line of its own in ``campaigns``, ``run``, ``deliveries``,
``status`` or ``report`` (real files, the real CLI in its own process)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import run_regard as regard

FORGED = "evil\nFORGED line\x1b[31m"
T = "2026-06-01T09:00:00Z"


def shop(root: Path, campaign: str) -> Path:
    (root / "regard.toml").write_text(
        'store = "regard.db"\ntimezone = "UTC"\n'
        '[providers.out]\ntype = "file"\npath = "out.jsonl"\n',
        encoding="utf-8",
    )
    for folder in ("campaigns", "templates"):
        (root / folder).mkdir()
    (root / "campaigns" / f"{campaign}.toml").write_text(
        'channel = "email"\nprovider = "out"\ntemplate = "t"\n[trigger]\ntype = "post_purchase"\n',
        encoding="utf-8",
    )
    (root / "templates" / "t.j2").write_text(
        "{% block subject %}Hi{% endblock %}{% block text %}Hi{% endblock %}", encoding="utf-8"
    )
    (root / "c.csv").write_text("id,email,consent_email\nc1,c1@example.org,yes\n", "utf-8")
    (root / "e.csv").write_text(f"id,contact_id,occurred_at\no1,c1,{T}\n", "utf-8")
    for kind, name in (("contacts", "c.csv"), ("events", "e.csv")):
        assert regard(root, "import", kind, str(root / name)).returncode == 0
    return root


def test_a_campaign_file_name_with_a_newline_is_refused_in_one_line(tmp_path: Path) -> None:
    root = shop(tmp_path, FORGED)
    listed = regard(root, "campaigns")
    # was: "evil" on one line, "FORGED line  post_purchase  email …" on the next
    assert listed.stdout == "no campaigns\n"
    expected = (
        f"{root / 'campaigns'}/evil\\nFORGED line\\x1b[31m.toml: the file name contains the "
        "control character U+000A; a campaign's id is its file name: rename the file"
    )
    assert listed.stderr.splitlines() == [expected]
    ran = regard(root, "run", "--at", T)
    assert ran.returncode == 1
    assert f"error: {expected}" in ran.stderr.splitlines()
    assert not any(line.startswith("FORGED") for line in ran.stderr.splitlines())


def test_ids_and_reasons_stored_with_newlines_stay_on_their_line(tmp_path: Path) -> None:
    """A store written before ids were checked (or by another tool) holds a delivery whose
    campaign, contact and reason contain newlines."""
    root = shop(tmp_path, "thanks")
    assert regard(root, "run", "--at", T).returncode == 0
    with sqlite3.connect(root / "regard.db") as conn:
        conn.execute(
            "UPDATE deliveries SET campaign = ?, contact_id = ?, state = 'dead', reason = ?",
            (FORGED, "c1\nHealth:       OK", "boom\nHealth:       OK"),
        )
    outputs = {
        command: regard(root, *command.split()).stdout
        for command in ("deliveries", "status", "report", "campaigns")
    }
    for command, output in outputs.items():
        lines = output.splitlines()
        assert not any(line.startswith("FORGED") for line in lines), (command, output)
        assert "\x1b" not in output, command
    status = outputs["status"].splitlines()
    assert sum(line.startswith("Health:") for line in status) == 1, status  # its own only
    assert any("evil\\nFORGED line\\x1b[31m" in line for line in outputs["report"].splitlines())
    assert any("boom\\nHealth:       OK" in line for line in status)
