"""regard.toml → a validated, immutable Config.

Found by ``--config PATH``, else ``$REGARD_CONFIG``, else ``./regard.toml``. Relative paths
are relative to the config file; ``${NAME}`` in any string is the environment variable NAME.
"""

from __future__ import annotations

import math
import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from regard.channels import CHANNELS, ConsentRule, channel
from regard.errors import ConfigError
from regard.times import parse_duration, parse_rate, zone
from regard.validation import StrictModel, read_toml, validate

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
SignedDuration = Annotated[
    timedelta, BeforeValidator(lambda v: parse_duration(v, allow_negative=True))
]


RETURN_ADDRESS = (
    "name", "company", "email", "phone", "street", "address2", "postal_code", "city", "state",
    "country",
)  # fmt: skip


class Sender(StrictModel):
    """Who the messages come from; the return address of cards; the legal footer of
    e-mails (a German business letter names the register court and number, the managing
    directors and the VAT id: HGB §37a, GmbHG §35a)."""

    name: str = ""
    company: str = ""
    email: str = ""
    phone: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""
    website: str = ""
    logo_url: str = ""  # an https:// image shown at the top of the e-mail layout
    brand_color: str = ""  # the layout's accent colour, "#rrggbb"
    reply_to: str = ""  # where answers go, when not to `email`
    vat_id: str = ""  # USt-IdNr., e.g. "DE123456789"
    # "Amtsgericht Berlin-Charlottenburg, HRB 12345" (`register` in the file and templates;
    # the attribute is named apart from pydantic's own ``register``)
    register_: str = Field(default="", alias="register")
    managing_director: str = ""  # Geschäftsführer(in), several separated by commas
    imprint: str = ""  # the link to the full imprint (Impressum) page, or its text

    def return_address(self) -> dict[str, str]:
        """The sender as a card's return address (the postal fields, as before the legal
        fields were added)."""
        return self.model_dump(include=set(RETURN_ADDRESS))

    @field_validator("brand_color")
    @classmethod
    def _colour(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", value):
            raise ValueError(f'{value!r} is not a colour like "#c2185b"')
        return value

    @field_validator("logo_url", "website")
    @classmethod
    def _web_address(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"https?://", value):
            raise ValueError(f"{value!r} is not a web address starting with https://")
        return value

    address2: str = ""  # a second address line (a card's return address)
    state: str = ""  # state or province, where the country needs one (US, CA)


class ConsentRules(StrictModel):
    """What each channel needs: opt-in (consent_<channel> must be true) or opt-out. One key
    per channel of :mod:`regard.channels`, defaulting to that channel's own rule."""

    def rule(self, channel_name: str) -> ConsentRule:
        """The rule for ``channel_name``."""
        value: ConsentRule = getattr(self, channel_name)
        return value

    @model_validator(mode="after")
    def _existing_customer_is_email_only(self) -> ConsentRules:
        for name in CHANNELS:
            if name != "email" and getattr(self, name) == "existing-customer":
                raise ValueError(
                    f'{name} = "existing-customer": that rule (UWG §7(3)) exists for '
                    'email only; use "opt-in" or "opt-out"'
                )
        return self


if TYPE_CHECKING:
    Consent = ConsentRules
else:
    Consent = create_model(
        "Consent",
        __base__=ConsentRules,
        __module__=__name__,
        **{name: (ConsentRule, channel(name).default_consent) for name in CHANNELS},
    )


class Limits(StrictModel):
    """At most ``contact_max`` deliveries per contact in any window of ``contact_window``."""

    contact_max: int = Field(default=2, ge=0)  # 0 = no cap
    contact_window: Duration = timedelta(days=7)


class DeliverySettings(StrictModel):
    concurrency: int = Field(default=8, ge=1, le=256)
    timeout: Duration = timedelta(seconds=10)
    attempts: int = Field(default=8, ge=1)
    backoff: Duration = timedelta(minutes=1)
    max_backoff: Duration = timedelta(hours=6)
    lease: Duration = timedelta(minutes=5)  # a claim older than this is taken up again

    @model_validator(mode="after")
    def _lease_outlives_requests(self) -> DeliverySettings:
        # a claim waits for at most one request before its own starts; a lease shorter than
        # two requests could expire mid-send and let another run send the delivery again
        if self.lease < 2 * self.timeout:
            raise ValueError(
                "lease must be at least twice timeout, or a slow send could be taken up "
                "again by another run while it is still in flight"
            )
        return self


class SchedulerSettings(StrictModel):
    interval: Duration = timedelta(minutes=5)


class ServerSettings(StrictModel):
    """``[server]``: where ``regard serve`` listens and what links in messages start with.

    ``secret`` signs unsubscribe links; without it a random one is generated once and kept
    in the store (``store.settings``), so links stay valid across restarts."""

    listen: str = "127.0.0.1:8787"
    public_url: str = ""  # default: http://<listen>
    secret: SecretStr | None = None
    unsubscribe_mailto: str | None = None  # an address for List-Unsubscribe's mailto: form

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(f"{value!r} is not an http(s) URL like https://regard.example.com")
        return value.rstrip("/")

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def base_url(self) -> str:
        """What links start with: ``public_url``, else ``http://<listen>``."""
        return self.public_url or f"http://{self.listen}"


def split_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8787`` for IPv6) → (host, port); ValueError otherwise."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^\s:\[\]]+):(\d+)", value)
    if not m:
        raise ValueError(f"{value!r} is not host:port like 127.0.0.1:8787")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 < port < 65536:
        raise ValueError(f"port {port} of {value!r} is not between 1 and 65535")
    return host, port


class ProviderTable(BaseModel):
    """``[providers.NAME]``: ``type`` picks the adapter, which validates the other keys."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str
    cost: Decimal | None = None
    rate: str | None = None

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)
        return value

    @property
    def options(self) -> dict[str, Any]:
        """The adapter's own keys (everything but type, cost and rate)."""
        return dict(self.model_extra or {})

    def __repr_args__(self) -> Any:
        # the adapter's keys hold tokens and secrets: a repr shows their names only
        yield from (("type", self.type), ("cost", self.cost), ("rate", self.rate))
        yield "options", sorted(self.options)


class SourceTable(StrictModel):
    """``[sources.NAME]``: where the shop's data comes in, at ``POST /ingest/NAME``.

    ``type`` is the shop (``shopify``, ``woocommerce``) or ``api`` (regard's own JSON);
    ``secret`` verifies the shop's webhook signatures, and is the bearer token of ``api``.
    """

    type: Literal["shopify", "woocommerce", "api"]
    secret: SecretStr

    @field_validator("secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError('the secret is empty (set it, e.g. secret = "${SHOP_WEBHOOK_SECRET}")')
        return value

    # `regard sync` (docs/sources.md): woocommerce: the shop's address and a REST API key
    url: str | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    # shopify: <name>.myshopify.com and an Admin API access token
    shop: str | None = None
    token: SecretStr | None = None
    sync_interval: Duration | None = None  # the daemon syncs this often (default: never)


class ImportSettings(StrictModel):
    """``[import]``: how ``regard import`` reads files by default. ``format`` is the layout
    (``plain``: regard's own fields; ``shopify``, ``woocommerce``: the shops' exports);
    ``map`` renames columns of the plain format, file column → field
    (``{ Kundennr = "id", "E-Mail" = "email" }``), for contacts and events alike; a
    ``--map`` given on the command line adds to it and wins."""

    format: Literal["plain", "shopify", "woocommerce"] = "plain"
    map: dict[str, str] = {}


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
        if _SCHEME.match(value):
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
                problems.append(f"{where}: {'.'.join(loc)}: {_unset_message(name)}")
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
        return _SCHEME.match(self.store) is not None

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


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# a store that is a URL (anything else is a SQLite file path)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
STORE_SCHEMES = ("postgresql", "postgres")


def is_store_url(target: str | Path) -> bool:
    """Whether ``target`` (a config's ``store``, a ``--to`` argument) is a URL."""
    return isinstance(target, str) and _SCHEME.match(target) is not None


def check_store_url(url: str) -> None:
    """ValueError unless ``url`` is a PostgreSQL connection URL regard can open:
    ``postgresql://user@host:5432/db`` (also ``postgres://``; libpq's query parameters,
    ``?host=/run/postgresql`` for a unix socket, are allowed). The messages never show
    the password."""
    shown = redact_url(url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in STORE_SCHEMES:
        raise ValueError(
            f"{shown!r}: unknown kind of store {parts.scheme!r}: a SQLite file "
            '(store = "regard.db") or a PostgreSQL URL (store = "postgresql://user@host/db")'
        )
    if any(c.isspace() for c in url):
        raise ValueError(f"{shown!r} contains a space; percent-encode it (%20)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{shown!r}: the port is not a number between 1 and 65535") from None
    if port == 0:
        raise ValueError(f"{shown!r}: the port is not a number between 1 and 65535")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ValueError(
            f"{shown!r}: name one database after the host, as in "
            "postgresql://regard@db.example.com:5432/regard"
        )
    if parts.fragment:
        raise ValueError(f"{shown!r}: a URL of a database has no #fragment")


def redact_url(url: str) -> str:
    """``url`` with its password (and a ``password=`` query parameter) replaced by ``***``:
    what messages and logs may show of a store URL."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_password(url: str) -> str | None:
    """The password a store URL carries (in its user part or a ``password=`` parameter)."""
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    found = re.search(r"(?i)(?:^|&)password=([^&]*)", parts.query)
    return unquote(found.group(1)) if found else None


def _unset_message(name: str) -> str:
    return (
        f"environment variable {name} is not set "
        f"(export {name}=… or put it in the service's environment file)"
    )


def substitute_env(
    data: Any,
    path: Path,
    loc: tuple[str, ...] = (),
    unset: list[tuple[tuple[str, ...], str]] | None = None,
    found: list[tuple[tuple[str, ...], str]] | None = None,
) -> Any:
    """Replace ``${NAME}`` in every string of ``data`` by the environment variable NAME.

    A variable that is not set is an error, except inside a ``[providers.NAME]`` table
    when ``unset`` is given: there it is left as written and recorded in ``unset``, since
    a provider's secrets are needed only by the commands that send through it. ``found``
    collects the values substituted inside ``[providers.NAME]`` tables (its secrets)."""
    if isinstance(data, dict):
        return {k: substitute_env(v, path, (*loc, k), unset, found) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute_env(v, path, (*loc, str(i)), unset, found) for i, v in enumerate(data)]
    if isinstance(data, str):

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                if unset is not None and len(loc) > 2 and loc[0] == "providers":
                    unset.append((loc, name))
                    return m.group(0)
                raise ConfigError(f"{path}: {'.'.join(loc)}: {_unset_message(name)}")
            value = os.environ[name]
            if found is not None and loc[:1] == ("providers",) and value:
                found.append((loc, value))
            return value

        return _VAR.sub(repl, data)
    return data


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
