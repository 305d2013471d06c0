from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner

from regard.cli import cli
from regard.synthetic import generate


def init(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["init", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_init_creates_a_working_starter_workspace(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    code, out, _ = init(str(folder))
    assert code == 0
    assert f"created {folder / 'regard.toml'}" in out and "next steps" in out
    config = tomllib.loads((folder / "regard.toml").read_text(encoding="utf-8"))
    assert config["timezone"] == "Europe/Berlin" and config["locale"] == "de"
    assert config["providers"]["outbox"]["type"] == "file"
    skeleton = Path(__file__).resolve().parent.parent / "src" / "regard" / "skeleton"
    for part in ("campaigns", "templates"):
        expected = sorted(p.name for p in (skeleton / part).iterdir())
        assert sorted(p.name for p in (folder / part).iterdir()) == expected
    assert list((folder / "campaigns").glob("*.toml"))
    # the reference of every key comes along: a pip-installed regard has no source tree
    example = (skeleton.parent.parent.parent / "config.example.toml").read_text(encoding="utf-8")
    assert (folder / "config.example.toml").read_text(encoding="utf-8") == example
    assert "config.example.toml beside this file" in (folder / "regard.toml").read_text("utf-8")

    # the starter takes a shop's data as it is
    contacts, events = generate(1, 50).write_csv(tmp_path / "data")
    runner = CliRunner()
    config_args = ["--config", str(folder / "regard.toml")]
    for kind, path in (("contacts", contacts), ("events", events)):
        result = runner.invoke(
            cli, [*config_args, "import", kind, str(path)], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
    check = runner.invoke(cli, [*config_args, "check"], catch_exceptions=False)
    assert check.exit_code == 0, check.output


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "regard.toml").write_text("# mine\n", encoding="utf-8")
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "thank-you.toml").write_text("# mine too\n", encoding="utf-8")
    code, _, err = init(str(tmp_path))
    assert code == 1
    assert "would overwrite existing files, so nothing was written" in err
    assert f"  {tmp_path / 'regard.toml'}" in err
    assert f"  {tmp_path / 'campaigns' / 'thank-you.toml'}" in err
    assert (tmp_path / "regard.toml").read_text(encoding="utf-8") == "# mine\n"
    assert not (tmp_path / "templates").exists()
