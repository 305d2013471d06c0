"""Provider adapters, one module each, found by the ``type`` users write in config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from regard.errors import ConfigError, ProviderError
from regard.providers import (  # noqa: F401  (importing registers the adapters)
    brevo,
    file,
    handwrytten,
    postmark,
    seven,
    smtp,
    twilio,
    webhook,
)
from regard.providers.base import Provider, adapter_class, registered_types
from regard.providers.http import HTTPProvider
from regard.providers.outcomes import (
    Dead,
    OnUnknown,
    Outcome,
    Paused,
    Retry,
    Sent,
    Unconfirmed,
    Unknown,
)
from regard.validation import describe, key_line

if TYPE_CHECKING:
    from regard.config import Config, ProviderTable

__all__ = [
    "Dead",
    "HTTPProvider",
    "OnUnknown",
    "Outcome",
    "Paused",
    "Provider",
    "Retry",
    "Sent",
    "Unconfirmed",
    "Unknown",
    "adapter_class",
    "build_provider",
    "check_provider_tables",
    "registered_types",
    "validate_provider_table",
]


def validate_provider_table(
    name: str, table: ProviderTable, path: Path, text: str, config: Config | None = None
) -> list[str]:
    """Problems with ``[providers.NAME]`` as ``FILE:LINE: key: reason`` lines (empty if fine).

    With ``config``, the adapter is also built, so what it needs from the rest of the
    config (a sender address, say) is reported at load time rather than at dispatch.
    """
    try:
        cls = adapter_class(table.type)
    except ProviderError as exc:
        return [f"{path}: providers.{name}.type: {exc}"]
    try:
        cls.Options.model_validate(table.options)
    except ValidationError as exc:
        problems = describe(exc, cls.Options, path, text, prefix=("providers", name))
        # a value still waiting for its environment variable is checked once it is set
        waiting = config.unset_keys(name) if config is not None else set()
        problems = [p for p in problems if not any(f": {key}: " in p for key in waiting)]
        if problems:
            return problems
    if config is not None and not config.unset_variables(name):
        # (a table still missing a secret from the environment is built when it sends)
        try:
            cls(name, table, config)
        except ProviderError as exc:
            line = key_line(text, ("providers", name))
            return [f"{path}:{line}: providers.{name}: {exc}" if line else f"{path}: {exc}"]
    return []


def build_provider(name: str, config: Config) -> Provider:
    """The ready adapter for ``[providers.NAME]``."""
    table = config.providers.get(name)
    if table is None:
        raise ProviderError(f"no provider {name!r} in {config.path or 'the config'}")
    unset = config.unset_variables(name)
    if unset:
        raise ConfigError("\n".join(unset))
    return adapter_class(table.type)(name, table, config)


def check_provider_tables(config: Config) -> None:
    """Each ``[providers.NAME]`` of the config must name a known adapter whose own keys
    validate; raises ConfigError listing every problem as ``FILE:LINE: key: reason``."""
    path = config.path or Path("regard.toml")
    problems: list[str] = []
    for name, table in config.providers.items():
        problems.extend(validate_provider_table(name, table, path, config.source_text, config))
    if problems:
        raise ConfigError("\n".join(problems))
