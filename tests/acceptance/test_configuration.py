"""SPEC "Configuration: regard.toml": lookup order, relative paths, ${NAME}, durations,
unknown keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from regard.cli import cli

from .conftest import CONFIG, Shop

CONTACT = json.dumps({"id": "c1", "email": "c1@example.com"}) + "\n"


def write_config(folder: Path, store: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "regard.toml"
    path.write_text(CONFIG.replace('"regard.db"', json.dumps(store)), encoding="utf-8")
    return path


def import_contact(args: list[str], env: dict[str, str] | None = None) -> None:
    result = CliRunner().invoke(cli, [*args, "import", "contacts", "-"], input=CONTACT, env=env)
    assert result.exit_code == 0, result.output


def test_config_option_wins_over_environment_and_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = write_config(tmp_path / "explicit", "explicit.db")
    from_env = write_config(tmp_path / "env", "env.db")
    write_config(tmp_path / "cwd", "cwd.db")
    monkeypatch.chdir(tmp_path / "cwd")
    import_contact(["--config", str(explicit)], env={"REGARD_CONFIG": str(from_env)})
    assert (tmp_path / "explicit" / "explicit.db").exists()
    assert not (tmp_path / "env" / "env.db").exists()
    assert not (tmp_path / "cwd" / "cwd.db").exists()


def test_environment_wins_over_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env = write_config(tmp_path / "env", "env.db")
    write_config(tmp_path / "cwd", "cwd.db")
    monkeypatch.chdir(tmp_path / "cwd")
    import_contact([], env={"REGARD_CONFIG": str(from_env)})
    assert (tmp_path / "env" / "env.db").exists()
    assert not (tmp_path / "cwd" / "cwd.db").exists()


def test_regard_toml_in_cwd_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path / "cwd", "cwd.db")
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delenv("REGARD_CONFIG", raising=False)
    import_contact([])
    assert (tmp_path / "cwd" / "cwd.db").exists()


def test_no_config_anywhere_is_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REGARD_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["import", "contacts", "-"], input=CONTACT)
    assert result.exit_code == 1
    assert "regard.toml" in result.output


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "shop", "data/regard.db")
    (tmp_path / "shop" / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    import_contact(["--config", str(config)])
    assert (tmp_path / "shop" / "data" / "regard.db").exists()
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_environment_variables_are_substituted(tmp_path: Path) -> None:
    config = write_config(tmp_path, "${SHOP_DB_NAME}.db")
    import_contact(["--config", str(config)], env={"SHOP_DB_NAME": "from-env"})
    assert (tmp_path / "from-env.db").exists()


def test_missing_environment_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGARD_NO_SUCH_VARIABLE", raising=False)
    config = write_config(tmp_path, "${REGARD_NO_SUCH_VARIABLE}.db")
    result = CliRunner().invoke(
        cli, ["--config", str(config), "import", "contacts", "-"], input=CONTACT
    )
    assert result.exit_code == 1
    assert "REGARD_NO_SUCH_VARIABLE" in result.output
    assert not list(tmp_path.glob("*.db"))


@pytest.mark.parametrize(
    "extra, key",
    [
        ('timezon = "UTC"\n', "timezon"),
        ("[limits]\ncontact_maxx = 3\n", "contact_maxx"),
        ('[providers.outbox2]\ntype = "file"\npath = "x.jsonl"\npaht = "y"\n', "paht"),
    ],
)
def test_unknown_config_keys_are_errors(shop: Shop, extra: str, key: str) -> None:
    shop.configure(extra)
    result = shop.cli("check")
    assert result.exit_code == 1
    assert key in result.output
    assert "regard.toml" in result.output


def test_unknown_campaign_key_is_an_error(shop: Shop) -> None:
    shop.campaign("thanks", 'type = "post_purchase"\n', max_latness="2d")
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "max_latness" in result.output
    assert "thanks.toml" in result.output


@pytest.mark.parametrize("bad", ["10 days", "10", "1y", "d", "-1d"])
def test_bad_durations_are_errors(shop: Shop, bad: str) -> None:
    shop.configure(f'[scheduler]\ninterval = "{bad}"\n')
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "interval" in result.output


@pytest.mark.parametrize("good", ["90s", "5m", "12h", "90d", "2w"])
def test_durations_in_every_unit(shop: Shop, good: str) -> None:
    shop.configure(f'[scheduler]\ninterval = "{good}"\n')
    assert shop.cli("check").exit_code == 0


def test_a_day_is_24_hours_across_daylight_saving(shop: Shop) -> None:
    # Berlin springs forward on 2026-03-29: one "day" later is 24 h, not the same wall time
    shop.campaign("thanks", 'type = "post_purchase"\ndelay = "1d"\n')
    shop.campaign("weekly", 'type = "post_purchase"\ndelay = "1w"\n', max_lateness="30d")
    shop.contacts({"id": "c1"})
    shop.order("o1", "c1", "2026-03-28T12:00:00+01:00")
    due = {d["campaign"]: d["due_at"] for d in shop.plan("2026-04-10T00:00:00Z")}
    assert due == {"weekly": "2026-04-04T11:00:00Z"}
    assert [d["due_at"] for d in shop.plan("2026-03-29T11:00:00Z", "thanks")] == [
        "2026-03-29T11:00:00Z"
    ]


def test_negative_offset_points_back(shop: Shop) -> None:
    shop.campaign(
        "birthday",
        'type = "anniversary"\nfield = "birthday"\noffset = "-7d"\nat = "09:00"\n',
        max_lateness="1d",
    )
    shop.contacts({"id": "c1", "birthday": "1990-06-15"})
    assert shop.decided("2026-06-08T12:00:00Z") == [
        ("c1", "birthday:2026", "pending", "2026-06-08T07:00:00Z")
    ]


def test_timezone_defaults_to_utc(shop: Shop) -> None:
    text = shop.ws.config.read_text(encoding="utf-8").replace('timezone = "Europe/Berlin"\n', "")
    shop.ws.config.write_text(text, encoding="utf-8")
    shop.contacts({"id": "c1", "signup_at": "2026-01-10T10:00:00"})
    assert shop.json("contacts", "show", "c1")["signup_at"] == "2026-01-10T10:00:00Z"


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nirgends.toml"
    result = CliRunner().invoke(cli, ["--config", str(missing), "check"])
    assert result.exit_code == 1
    assert "nirgends.toml" in result.output


def test_invalid_toml_names_the_line(shop: Shop) -> None:
    shop.ws.config.write_text(CONFIG + "\n[limits\ncontact_max = 2\n", encoding="utf-8")
    result = shop.cli("check")
    assert result.exit_code == 1
    assert "regard.toml" in result.output
    assert str(CONFIG.count("\n") + 2) in result.output


def test_config_is_global_before_or_after_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "shop", "shop.db")
    (tmp_path / "shop" / "campaigns").mkdir()
    (tmp_path / "shop" / "templates").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REGARD_CONFIG", raising=False)
    runner = CliRunner()
    imported = runner.invoke(
        cli, ["import", "contacts", "-", "--config", str(config)], input=CONTACT
    )
    assert imported.exit_code == 0, imported.output
    shown = runner.invoke(cli, ["contacts", "show", "c1", "--json", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == "c1"
    listed = runner.invoke(cli, ["deliveries", "--json", "--config", str(config)])
    assert (listed.exit_code, json.loads(listed.stdout)) == (0, [])
    checked = runner.invoke(cli, ["check", "--config", str(config)])
    assert checked.exit_code == 0, checked.output
