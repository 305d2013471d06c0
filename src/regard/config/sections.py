"""The tables of regard.toml: [sender], [consent], [limits], [delivery], [scheduler],
[server], [providers.NAME], [sources.NAME] and [import], each a validated model; the whole
file is :class:`regard.config.Config`."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    create_model,
    field_validator,
    model_validator,
)

from regard.channels import CHANNELS, ConsentRule, channel
from regard.times import parse_duration, parse_rate
from regard.validation import StrictModel

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
