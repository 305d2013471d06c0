"""What an install has: the documented install works without a PyPI release, and the
systemd units, `daemon --help` and the docs point only at what an installed regard has."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import Workspace

ROOT = Path(__file__).resolve().parent.parent
UNITS = ("regard.service", "regard-status.service", "regard-status.timer")
INSTALLED = "/opt/regard/venv/share/regard/systemd"  # the docs' virtualenv, its units


def test_the_wheel_carries_the_systemd_units(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("regard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for unit in UNITS:
            (member,) = [n for n in names if n.endswith(f".data/data/share/regard/systemd/{unit}")]
            assert archive.read(member) == (ROOT / "deploy" / unit).read_bytes()


def test_units_point_only_at_what_an_install_has() -> None:
    for unit in UNITS:
        text = (ROOT / "deploy" / unit).read_text(encoding="utf-8")
        assert "/opt/regard/docs" not in text and "Documentation=file:" not in text
        assert "cp deploy/" not in text
    service = (ROOT / "deploy" / "regard.service").read_text(encoding="utf-8")
    assert f"cp {INSTALLED}/regard.service /etc/systemd/system/" in service
    # the secret's name is the one the docs and the Postmark provider use
    assert "POSTMARK_SERVER_TOKEN=" in service and "POSTMARK_TOKEN=" not in service


def test_daemon_help_names_the_installed_unit(workspace: Workspace) -> None:
    out = workspace.cli("daemon", "--help").output
    assert "deploy/" not in out
    assert "share/regard/systemd/regard.service" in out


def test_the_docs_install_and_upgrade_from_the_repository_or_a_wheel() -> None:
    docs = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    commands = "\n".join(re.findall(r"```sh\n(.*?)```", docs, flags=re.S))
    installs = re.findall(r"pip install[^\n]*", commands)
    assert installs
    for line in installs:
        # no `pip install regard` / `--upgrade regard`: there is no such release
        assert not re.search(r"pip install (--upgrade )?regard\b", line), line
        assert re.search(r"(/opt/regard/src|\.whl)", line), line
    assert f"cp {INSTALLED}/regard.service /etc/systemd/system/" in docs
    assert "cp deploy/" not in docs and "POSTMARK_SERVER_TOKEN" in docs
