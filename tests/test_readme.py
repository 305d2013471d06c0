"""The README's first command block is what a newcomer runs: it must be the demo and the
test command that CI runs, and both must exist as described."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/regard demo"
TEST = "bash .ci/run"


def first_command_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"(?m)((?:^    \S.*\n)+)", text)
    assert block, "README.md has no indented command block"
    before = text[: block.start()]
    assert before.strip().count("\n") <= 1, "the commands must be the README's first lines"
    return [line[4:].split("  #")[0].strip() for line in block.group(1).splitlines()]


def test_readme_starts_with_the_demo_and_the_test_command() -> None:
    assert first_command_block() == [DEMO, TEST]


def test_the_test_command_is_what_ci_runs() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash")
    assert "pip install --quiet -e '.[test]'" in script
    for check in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert check in script


def test_the_demo_command_exists_with_its_default_folder() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["regard"] == "regard.cli:main"
    from regard.cli import COMMANDS

    assert COMMANDS["demo"] == "regard.cli.demo:demo"
    from regard.cli.demo import demo
    from regard.demo import RESPONSE_RATE

    assert f"probability {RESPONSE_RATE:.0%}" in (demo.help or "")  # the planted effect, told
    folder = next(p for p in demo.params if p.name == "folder")
    assert folder.default == "regard-demo"
    assert "./regard-demo" in (ROOT / "README.md").read_text(encoding="utf-8")
