from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from regard.errors import ConfigError
from regard.providers import build_provider
from regard.times import parse_duration
from regard.workspace import load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "regard.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'store = "data/shop.db"\n'))
    assert config.timezone == "UTC"
    assert config.limits.contact_max == 2
    assert config.limits.contact_window == timedelta(days=7)
    assert config.store_path == (tmp_path / "data" / "shop.db").resolve()


def test_regard_config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, 'locale = "de"\n')
    monkeypatch.setenv("REGARD_CONFIG", str(path))
    assert load_config(None).locale == "de"


def test_env_substitution_and_missing_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = '[providers.hooks]\ntype = "file"\npath = "${OUTBOX_DIR}/m.jsonl"\n'
    monkeypatch.setenv("OUTBOX_DIR", "out")
    config = load_config(write(tmp_path, text))
    assert config.providers["hooks"].options["path"] == "out/m.jsonl"
    monkeypatch.delenv("OUTBOX_DIR")
    # a provider's variables are needed when it is built to send, not to read the config
    config = load_config(write(tmp_path, text))
    with pytest.raises(
        ConfigError, match=r":3: providers\.hooks\.path: environment variable OUTBOX_DIR is not set"
    ):
        build_provider("hooks", config)


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    text = 'timezone = "UTC"\n\n[limits]\ncontact_mx = 3\n'
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert (
        str(info.value)
        == f"{tmp_path / 'regard.toml'}:4: limits.contact_mx: unknown key (did you mean 'contact_max'?)"
    )


def test_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"timezone: unknown time zone 'Europe/Berln'"):
        load_config(write(tmp_path, 'timezone = "Europe/Berln"\n'))
    with pytest.raises(ConfigError, match=r":2: delivery.timeout: '10 seconds' is not a duration"):
        load_config(write(tmp_path, '[delivery]\ntimeout = "10 seconds"\n'))


def test_toml_syntax_error_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"regard.toml:2: TOML syntax"):
        load_config(write(tmp_path, 'locale = "de"\ncurrency = EUR\n'))


def test_unknown_provider_type_and_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"providers.x.type: unknown provider type 'fiel'"):
        load_config(write(tmp_path, '[providers.x]\ntype = "fiel"\n'))
    with pytest.raises(
        ConfigError, match=r":3: providers.x.pth: unknown key \(did you mean 'path'\?\)"
    ):
        load_config(write(tmp_path, '[providers.x]\ntype = "file"\npth = "a.jsonl"\n'))


def test_missing_config_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="regard init"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(days=14)),
        ("30s", timedelta(seconds=30)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_negative_durations_only_where_allowed() -> None:
    assert parse_duration("-7d", allow_negative=True) == timedelta(days=-7)
    with pytest.raises(ValueError, match="negative"):
        parse_duration("-7d")
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("7 days")
