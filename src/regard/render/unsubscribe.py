"""The way out of every marketing e-mail: the signed link, the footer, the headers.

- The **token** names the delivery (its id: a hash, nothing personal) and is signed with
  the server secret by itsdangerous' :class:`~itsdangerous.Signer` (HMAC-SHA256; the
  signature is checked in constant time). ``<delivery id>.<signature>``: unguessable
  without the secret, and nothing in it reads as a person.
- ``unsubscribe_url`` = ``<public_url>/u/<token>`` is in the template context of marketing
  e-mails. A template that does not show it gets a one-line footer in the contact's
  language (de, en) appended to ``text`` and ``html``: every marketing mail under the
  existing-customer rule must show how to object (UWG §7(3)).
- The delivery record's ``headers`` carry ``List-Unsubscribe`` (``<mailto:…>`` first when
  ``[server] unsubscribe_mailto`` is set) and ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click``, as RFC 8058 (https://www.rfc-editor.org/rfc/rfc8058)
  defines them and Gmail and Yahoo require of bulk senders.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from itsdangerous import BadSignature, Signer

from regard.config import Config, ServerSettings

if TYPE_CHECKING:
    from regard.campaigns.model import Campaign
    from regard.render.message import Message
    from regard.store import Store

SALT = "regard.unsubscribe"
CONTEXT_NAME = "unsubscribe_url"

FOOTERS = {
    "de": "Keine Werbung mehr von {shop}? Hier abmelden: {url}",
    "en": "Don't want these e-mails from {shop}? Unsubscribe: {url}",
}
HTML_FOOTERS = {
    "de": 'Keine Werbung mehr von {shop}? <a href="{url}">Hier abmelden</a>.',
    "en": 'Don\'t want these e-mails from {shop}? <a href="{url}">Unsubscribe</a>.',
}


@lru_cache(maxsize=8)
def _signer(secret: str) -> Signer:
    return Signer(secret, salt=SALT, digest_method=hashlib.sha256)


@lru_cache(maxsize=8)
def _signing_key(secret: str) -> bytes:
    return _signer(secret).derive_key()


def make_token(secret: str, delivery_id: str) -> str:
    """The signed token of ``delivery_id``: itsdangerous's ``Signer.sign`` (HMAC-SHA256 of
    the id under the salted key, URL-safe base64 without padding, after a dot), its key
    derived once per secret instead of once per token (a big day signs 50,000)."""
    signature = hmac.new(_signing_key(secret), delivery_id.encode("utf-8"), hashlib.sha256)
    return f"{delivery_id}.{base64.urlsafe_b64encode(signature.digest()).rstrip(b'=').decode()}"


def read_token(secret: str, token: str) -> str | None:
    """The delivery id a token names, or None when its signature does not verify (forged,
    truncated, signed with another secret)."""
    try:
        value = _signer(secret).unsign(token.encode("utf-8"))
    except (BadSignature, UnicodeError):
        return None
    delivery_id = value.decode("ascii", errors="replace")
    # base64 leaves spare bits in a signature's last character: only the one spelling
    # regard made is the token, so changing any character of it breaks it
    return delivery_id if make_token(secret, delivery_id) == token else None


def link_secret(config: Config, store: Store) -> str:
    """The key that signs links: ``[server] secret``, else the one kept in the store."""
    server = config.server
    if server is not None and server.secret is not None:
        return server.secret.get_secret_value()
    return store.settings.server_secret()


@dataclass(frozen=True)
class Links:
    """How links in messages are made: the base URL, the secret, the mailto address."""

    base_url: str
    secret: str
    mailto: str | None = None

    @classmethod
    def of(cls, config: Config, secret: str) -> Links:
        server = config.server or ServerSettings()
        return cls(server.base_url, secret, server.unsubscribe_mailto)

    def token(self, delivery_id: str) -> str:
        """The delivery's signed token."""
        return make_token(self.secret, delivery_id)

    def url(self, delivery_id: str) -> str:
        """``<public_url>/u/<token>``."""
        return f"{self.base_url}/u/{self.token(delivery_id)}"

    def signing(self, delivery_ids: Iterable[str]) -> Links:
        """These links with the tokens of ``delivery_ids`` signed once, here: a message's
        link, footer and headers all carry its one token, and a render worker handed
        these links signs nothing again."""
        return Signed(
            self.base_url,
            self.secret,
            self.mailto,
            {delivery_id: self.token(delivery_id) for delivery_id in delivery_ids},
        )

    def headers(self, delivery_id: str) -> dict[str, str]:
        """The RFC 8058 pair for the delivery (mailto first when configured)."""
        targets = [f"<{self.url(delivery_id)}>"]
        if self.mailto:
            subject = quote(f"unsubscribe {self.token(delivery_id)}")
            targets.insert(0, f"<mailto:{self.mailto}?subject={subject}>")
        return {
            "List-Unsubscribe": ", ".join(targets),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


@dataclass(frozen=True)
class Signed(Links):
    """Links whose tokens for some deliveries are signed already (:meth:`Links.signing`)."""

    tokens: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def token(self, delivery_id: str) -> str:
        known = self.tokens.get(delivery_id)
        return known if known is not None else super().token(delivery_id)


# what check and sample renders sign with: the links look real, no secret is involved
SAMPLE_LINKS = Links("http://127.0.0.1:8787", "sample")


def wants_link(campaign: Campaign) -> bool:
    """Marketing e-mails carry the link, the footer and the headers."""
    return campaign.purpose == "marketing" and campaign.channel == "email"


def context(links: Links | None, campaign: Campaign, delivery_id: str) -> dict[str, Any]:
    """What the template context gains: ``unsubscribe_url`` for marketing e-mails."""
    if links is None or not wants_link(campaign):
        return {}
    return {CONTEXT_NAME: links.url(delivery_id)}


def shows_link(message: Message, url: str) -> bool:
    """The rendered template shows the link itself (in its text, or its html when it has
    one): no footer is needed then."""
    in_text = message.text is not None and url in message.text
    in_html = message.html is None or html.escape(url) in message.html or url in message.html
    return in_text and in_html


def with_footer(message: Message, variables: Mapping[str, Any], locale: str, shop: str) -> Message:
    """``message`` with the one-line footer appended to ``text`` and ``html`` when the
    template does not show ``unsubscribe_url`` (unchanged for other messages)."""
    url = variables.get(CONTEXT_NAME)
    if not isinstance(url, str) or shows_link(message, url):
        return message
    language = locale.replace("-", "_").split("_")[0].lower()
    language = language if language in FOOTERS else "en"
    name = shop or ("uns" if language == "de" else "us")
    text = message.text
    if text is not None and url not in text:
        text = f"{text}\n\n{FOOTERS[language].format(shop=name, url=url)}"
    body = message.html
    if body is not None and html.escape(url) not in body and url not in body:
        line = HTML_FOOTERS[language].format(shop=html.escape(name), url=html.escape(url))
        footer = f'<p style="font-size:12px;color:#666666">{line}</p>'
        at = body.lower().rfind("</body>")
        body = body[:at] + footer + body[at:] if at >= 0 else body + "\n" + footer
    return replace(message, text=text, html=body, unsubscribe_footer=True)


def shop_name(config: Config) -> str:
    """The shop's name as messages and pages show it."""
    return config.sender.name or config.sender.company


def is_loopback(url: str) -> bool:
    """``url`` points at this machine (nobody else can open such a link)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


REAL_EMAIL_TYPES = frozenset({"postmark"})  # providers that put mail in real inboxes


def check_notes(config: Config, campaign: Campaign, template_shows: bool) -> list[str]:
    """What ``check`` says about a marketing e-mail's way out: the footer regard adds when
    the template does not show the link, and a warning when a real e-mail service would
    send links that only this machine can open."""
    if not wants_link(campaign):
        return []
    notes = []
    if not template_shows:
        notes.append(
            f"campaign {campaign.id}: the template does not show {{{{ {CONTEXT_NAME} }}}}; "
            "a one-line unsubscribe footer is appended to its text and html"
        )
    table = config.providers.get(campaign.provider)
    base = (config.server or ServerSettings()).base_url
    if table is not None and table.type in REAL_EMAIL_TYPES and is_loopback(base):
        notes.append(
            f"warning: campaign {campaign.id} sends through {campaign.provider!r} "
            f"({table.type}) but unsubscribe links start with {base}, which only this "
            "machine can open: set [server] public_url to the server's public https address"
        )
    return notes
