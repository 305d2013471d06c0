"""``store`` in the config: a SQLite file, or a PostgreSQL URL (``postgresql://``,
``postgres://``) with ``${ENV}`` expansion, whose password is never shown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from regard.config import check_store_url, redact_url, url_password
from regard.daemon.logs import config_secrets
from regard.errors import ConfigError
from regard.workspace import load_config

PASSWORD = "s3cr3t-Pa55word"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "regard.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_is_a_path_relative_to_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'store = "data/shop.db"\n'))
    assert not config.store_is_url
    assert config.store_target == (tmp_path / "data" / "shop.db").resolve()
    assert config.store_label == str((tmp_path / "data" / "shop.db").resolve())


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_url_from_the_environment_is_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    url = f"{scheme}://regard:{PASSWORD}@db.example.com:5432/shop"
    monkeypatch.setenv("REGARD_PG_URL", url)
    config = load_config(write(tmp_path, 'store = "${REGARD_PG_URL}"\n'))
    assert config.store_is_url
    assert config.store_target == url  # what open_store gets: the password included
    assert config.store_label == f"{scheme}://regard:***@db.example.com:5432/shop"
    assert PASSWORD not in repr(config) and PASSWORD not in str(config)
    assert PASSWORD in config_secrets(config)  # the daemon's logs redact it
    with pytest.raises(ConfigError, match="is a PostgreSQL database, not a file") as caught:
        config.store_path  # noqa: B018
    assert PASSWORD not in str(caught.value)


def test_a_password_only_in_the_environment_is_found_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASS_PART", PASSWORD)
    path = write(tmp_path, 'store = "postgresql://regard:${PGPASS_PART}@db/shop"\n')
    config = load_config(path)
    assert config.store_label == "postgresql://regard:***@db/shop"
    assert PASSWORD in config_secrets(config)


def test_the_daemon_log_never_shows_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from regard.daemon.logs import setup_logging

    path = write(tmp_path, f'store = "postgresql://regard:{PASSWORD}@db:5432/shop"\n')
    config = load_config(path)
    handler = setup_logging("text", config_secrets(config))
    try:
        logging.getLogger("regard.daemon").error("cannot connect to %s", config.store)
    finally:
        logging.getLogger().removeHandler(handler)
    err = capsys.readouterr().err
    assert "cannot connect to" in err and PASSWORD not in err


def test_an_unset_variable_names_the_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGARD_PG_URL", raising=False)
    path = write(tmp_path, 'timezone = "UTC"\nstore = "${REGARD_PG_URL}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}: store: environment variable REGARD_PG_URL is not set" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"postgresql://regard:{PASSWORD}@db:99999/shop", "port is not a number"),
        (f"postgresql://regard:{PASSWORD}@db:x/shop", "port is not a number"),
        (f"postgresql://regard:{PASSWORD}@db:5432", "name one database"),
        (f"postgresql://regard:{PASSWORD}@db/a/b", "name one database"),
        (f"mysql://regard:{PASSWORD}@db/shop", "unknown kind of store 'mysql'"),
        (f"postgresql://regard:{PASSWORD}@db/my shop", "contains a space"),
    ],
)
def test_a_malformed_url_names_file_line_and_key_never_the_password(
    tmp_path: Path, url: str, reason: str
) -> None:
    path = write(tmp_path, f'locale = "de"\n\nstore = "{url}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: store: ")
    assert reason in message
    assert PASSWORD not in message


def test_an_empty_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"regard.toml:1: store: is empty"):
        load_config(write(tmp_path, 'store = ""\n'))


def test_libpq_forms_are_accepted() -> None:
    for url in (
        "postgresql:///regard?host=/run/postgresql",
        "postgresql://regard@[::1]:5433/regard?sslmode=require",
        "postgres://regard@db/regard%2Dshop",
    ):
        check_store_url(url)


def test_redaction() -> None:
    assert redact_url("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db?password=x&sslmode=require") == (
        "postgresql://u@h/db?password=***&sslmode=require"
    )
    assert redact_url("postgresql://h/db") == "postgresql://h/db"
    assert url_password("postgresql://u:p%40ss@h/db") == "p@ss"
    assert url_password("postgresql://u@h/db?sslmode=require&password=x") == "x"
    assert url_password("postgresql://u@h/db") is None


def test_commands_speak_of_the_store_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres = pytest.importorskip("regard.store.backends.postgres")
    from click.testing import CliRunner

    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_S", 1)  # the pool gives up after a second

    from regard.cli import cli

    # nothing listens on port 1: opening the store fails, and the message must not leak
    url = f"postgresql://regard:{PASSWORD}@127.0.0.1:1/shop?connect_timeout=2"
    monkeypatch.setenv("REGARD_PG_URL", url)
    path = write(tmp_path, 'store = "${REGARD_PG_URL}"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code != 0
    assert PASSWORD not in result.output
    assert PASSWORD not in repr(result.exception)
