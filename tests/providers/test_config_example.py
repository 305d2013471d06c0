"""config.example.toml documents every adapter: with its commented provider tables
switched on (and their environment variables set), it loads and builds every adapter."""

from __future__ import annotations

import re
from pathlib import Path

from regard.providers import build_provider, registered_types
from regard.workspace import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
COMMENTED_KEY = re.compile(
    r"^# (\[(?:providers|sources)\.[\w-]+\]|\[server\]|[a-z_]+ = .*)$", re.MULTILINE
)


def test_every_adapter_is_documented_and_valid(tmp_path, monkeypatch):
    text = COMMENTED_KEY.sub(r"\1", EXAMPLE.read_text(encoding="utf-8"))
    for name in set(re.findall(r"\$\{(\w+)\}", text)):
        monkeypatch.setenv(name, "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=" if "WEBHOOK" in name else "x")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef")
    config_path = tmp_path / "regard.toml"
    config_path.write_text(text, encoding="utf-8")

    config = load_config(config_path)

    types = {table.type for table in config.providers.values()}
    built_in = {k for k, cls in registered_types().items() if cls.__module__.startswith("regard.")}
    assert types == built_in
    for name in config.providers:
        build_provider(name, config)
    assert config.server is not None and config.server.base_url.startswith("https://")
    assert {t.type for t in config.sources.values()} == {"shopify"}


def test_only_what_needs_no_account_is_switched_on():
    config = load_config(EXAMPLE)
    assert {t.type for t in config.providers.values()} == {"file", "postmark"}
    assert config.providers["mail"].options["server_token"] == "POSTMARK_API_TEST"
