"""regard.toml → a validated, immutable Config.

Found by ``--config PATH``, else ``$REGARD_CONFIG``, else ``./regard.toml``. Relative paths
are relative to the config file; ``${NAME}`` in any string is the environment variable NAME.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator

from regard.channels import CHANNELS
from regard.config.env import substitute_env, unset_message
from regard.config.sections import (
    RETURN_ADDRESS,
    Consent,
    ConsentRules,
    DeliverySettings,
    Duration,
    ImportSettings,
    Limits,
    ProviderTable,
    SchedulerSettings,
    Sender,
    ServerSettings,
    SignedDuration,
    SourceTable,
    split_listen,
)
from regard.config.stores import (
    STORE_SCHEMES,
    check_store_url,
    is_store_url,
    redact_url,
    url_password,
)
from regard.errors import ConfigError
from regard.times import zone
from regard.validation import StrictModel, read_toml, validate

__all__ = [
    "RETURN_ADDRESS",
    "STORE_SCHEMES",
    "Config",
    "Consent",
    "ConsentRules",
    "DeliverySettings",
    "Duration",
    "ImportSettings",
    "Limits",
    "ProviderTable",
    "SchedulerSettings",
    "Sender",
    "ServerSettings",
    "SignedDuration",
    "SourceTable",
    "check_store_url",
    "find_config",
    "is_store_url",
    "read_config",
    "redact_url",
    "split_listen",
    "substitute_env",
    "url_password",
]


class Config(StrictModel):
    timezone: str = "UTC"
    locale: str = "en"
    currency: str = "EUR"
    store: str = "regard.db"
    campaigns: str = "campaigns"
    templates: str = "templates"
    sender: Sender = Sender()
    consent: Consent = Consent()
    limits: Limits = Limits()
    delivery: DeliverySettings = DeliverySettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    providers: dict[str, ProviderTable] = {}
    sources: dict[str, SourceTable] = {}
    server: ServerSettings | None = None  # [server]: regard serve, links in messages
    # channel → the provider a campaign of that channel uses when it names none
    channels: dict[str, str] = {}
    imports: ImportSettings = Field(default=ImportSettings(), alias="import")
    # [currencies]: CHF = 1.04 — one CHF is worth 1.04 of `currency` (see docs/import.md)
    currencies: dict[str, float] = {}

    _base: Path = PrivateAttr(default=Path("."))
    _path: Path | None = PrivateAttr(default=None)
    _text: str = PrivateAttr(default="")  # the file's text, for errors that name a line
    # ``${NAME}`` of a [providers.*] table whose variable is not set: (key path, NAME);
    # a provider's secrets are needed only when it is built to send
    _unset: list[tuple[tuple[str, ...], str]] = PrivateAttr(default_factory=list)
    # the values ``${NAME}`` brought into a [providers.*] table: (key path, value); every
    # one is a secret of that provider, whatever the key
    _from_env: list[tuple[tuple[str, ...], str]] = PrivateAttr(default_factory=list)
    # resolving touches the file system; a tick resolves the templates folder per message
    _resolved: dict[tuple[Path, str], Path] = PrivateAttr(default_factory=dict)

    @field_validator("store")
    @classmethod
    def _store_target(cls, value: str) -> str:
        if is_store_url(value):
            check_store_url(value)
        elif not value.strip():
            raise ValueError('is empty (a SQLite file like "regard.db", or postgresql://…)')
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        try:
            Locale.parse(value.replace("-", "_"))
        except (UnknownLocaleError, ValueError) as exc:
            raise ValueError(f"unknown locale {value!r}") from exc
        return value

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"{value!r} is not an ISO 4217 currency code like EUR")
        return value

    @field_validator("currencies")
    @classmethod
    def _rates(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        base = info.data.get("currency", "EUR")
        rates: dict[str, float] = {}
        for code, rate in value.items():
            if not re.fullmatch(r"[A-Z]{3}", code):
                raise ValueError(f"{code!r} is not an ISO 4217 currency code like CHF")
            if not math.isfinite(rate) or rate <= 0:
                raise ValueError(f"{code}: a rate is a positive number of {base} per {code}")
            if code == base:
                raise ValueError(f"{code}: is the config's own currency (its rate is 1)")
            rates[code] = float(rate)
        return rates

    def rate(self, code: str | None) -> float | None:
        """What one unit of ``code`` is worth in the config's currency: 1 for the config's
        own currency (and for amounts without a currency), None without a rate."""
        if code is None or code == self.currency:
            return 1.0
        return self.currencies.get(code)

    @field_validator("channels")
    @classmethod
    def _channel_defaults(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        providers = info.data.get("providers") or {}
        for name, provider in value.items():
            if name not in CHANNELS:
                raise ValueError(
                    f"{name}: no such channel (channels: {', '.join(sorted(CHANNELS))})"
                )
            if provider not in providers:
                known = ", ".join(sorted(providers)) or "none"
                raise ValueError(f"{name}: no [providers.{provider}] in the config ({known})")
        return value

    def __repr_args__(self) -> Any:
        # a store URL may carry the database password: a repr shows it without
        for key, value in super().__repr_args__():
            yield key, (redact_url(value) if key == "store" and is_store_url(value) else value)

    # -- derived -------------------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def provider_costs(self) -> dict[str, float]:
        """Per-delivery cost of each provider that declares one, in the config's currency."""
        return {name: float(t.cost) for name, t in self.providers.items() if t.cost is not None}

    @property
    def path(self) -> Path | None:
        """The config file this was loaded from (None for built-in defaults)."""
        return self._path

    @property
    def source_text(self) -> str:
        """The text of the config file ("" for built-in defaults)."""
        return self._text

    def environment_values(self, provider: str) -> list[str]:
        """The values that ``[providers.<provider>]`` took from the environment."""
        return [value for loc, value in self._from_env if loc[:2] == ("providers", provider)]

    def unset_keys(self, provider: str) -> set[str]:
        """The dotted keys of ``[providers.<provider>]`` whose environment variable is not set."""
        return {".".join(loc) for loc, _ in self._unset if loc[:2] == ("providers", provider)}

    def unset_variables(self, provider: str) -> list[str]:
        """What ``[providers.<provider>]`` needs from the environment and does not find, one
        ``FILE:LINE: key: reason`` line per variable (empty when all are set). Such a
        provider cannot be built: every other command works without its secrets."""
        from regard.validation import key_line

        problems = []
        for loc, name in self._unset:
            if loc[:2] == ("providers", provider):
                line = key_line(self._text, loc)
                where = f"{self._path}:{line}" if line else f"{self._path}"
                problems.append(f"{where}: {'.'.join(loc)}: {unset_message(name)}")
        return problems

    def resolve(self, relative: str | Path) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        key = (self._base, str(relative))
        if key not in self._resolved:
            p = Path(relative).expanduser()
            self._resolved[key] = p if p.is_absolute() else (self._base / p).resolve()
        return self._resolved[key]

    @property
    def store_is_url(self) -> bool:
        """Whether ``store`` names a PostgreSQL database (a ``postgresql://`` URL)."""
        return is_store_url(self.store)

    @property
    def store_target(self) -> Path | str:
        """What :func:`regard.store.open_store` opens: the SQLite file (absolute), or the
        PostgreSQL URL as written (its password included: never print it, print
        :attr:`store_label`)."""
        return self.store if self.store_is_url else self.store_path

    @property
    def store_label(self) -> str:
        """The store for messages and logs: the file, or the URL without its password."""
        return redact_url(self.store) if self.store_is_url else str(self.store_path)

    @property
    def store_path(self) -> Path:
        """The SQLite store file. A PostgreSQL store has none: asking is a bug of the
        caller, which must use :attr:`store_target`."""
        if self.store_is_url:
            raise ConfigError(
                f"{self._path or 'the config'}: store: {self.store_label} is a PostgreSQL "
                "database, not a file; this command works on SQLite stores only"
            )
        return self.resolve(self.store)

    @property
    def campaigns_dir(self) -> Path:
        return self.resolve(self.campaigns)

    @property
    def templates_dir(self) -> Path:
        return self.resolve(self.templates)


def find_config(explicit: str | Path | None) -> Path:
    """The config file to use: ``--config``, else ``$REGARD_CONFIG``, else ./regard.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("REGARD_CONFIG")
    if env:
        return Path(env)
    return Path("regard.toml")


def read_config(explicit: str | Path | None = None) -> Config:
    """Find, read, substitute and validate the config; every problem raises ConfigError.

    The ``[providers.NAME]`` tables are checked only as far as config knows them (a table
    with a ``type``); each adapter validates its own keys:
    :func:`regard.workspace.load_config` reads the config and has them checked."""
    path = find_config(explicit)
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such config file (run `regard init` to create a workspace, "
            "or pass --config PATH / set REGARD_CONFIG)"
        )
    try:
        data, text = read_toml(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    unset: list[tuple[tuple[str, ...], str]] = []
    from_env: list[tuple[tuple[str, ...], str]] = []
    data = substitute_env(data, path, unset=unset, found=from_env)
    try:
        config = validate(Config, data, path, text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    config._unset = unset
    config._from_env = from_env
    config._base = path.resolve().parent
    config._path = path.resolve()
    config._text = text
    return config
