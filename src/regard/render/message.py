"""Rendering one message: a campaign's template for one contact and occasion.

The template file is picked by the contact's locale; each block the channel needs is
rendered in the sandbox (``html`` with autoescape, the others without) and every problem
becomes a :class:`~regard.errors.TemplateError` naming the file and line.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Template, TemplateNotFound, TemplateSyntaxError
from jinja2.runtime import Context

from regard.channels import channel, sms
from regard.errors import ProviderError, TemplateError
from regard.providers import adapter_class
from regard.render import unsubscribe
from regard.render.context import Record, contact_view, event_view, no_event, wrap
from regard.render.environment import (
    MAX_RENDER_MEMORY,
    MessageEnvironment,
    SecurityError,
    pick_template,
    prepared_context,
    render_block,
    reset_budget,
    template_line,
)
from regard.render.filters import FILTERS, rendering_for
from regard.render.text import html_to_text
from regard.render.unsubscribe import Links, wants_link
from regard.store.lifecycle import message_text
from regard.validation import utf8_text

if TYPE_CHECKING:
    from regard.campaigns.model import Campaign
    from regard.config import Config
    from regard.providers.base import Provider

CARD_WIDTH = 40  # characters per line on a typical A6 card in a handwriting font


@dataclass(frozen=True)
class Message:
    """A rendered message: what the channel uses is set, the rest is None."""

    subject: str | None = None
    text: str | None = None
    html: str | None = None
    card: str | None = None
    unsubscribe_footer: bool = False  # regard appended the unsubscribe line (render/unsubscribe.py)


class Templates:
    """The templates of one folder, compiled once: plain for text, escaping for HTML.

    A compiled template is used until :meth:`refresh` finds its file (or a layout, partial
    or macro file it was built from) changed: once per render batch, not once per
    ``get_template`` (templates do not change while a tick renders, and a stat of every
    file of every message was a twentieth of a big tick)."""

    def __init__(self, templates_dir: Path) -> None:
        self.dir = templates_dir
        self.plain = MessageEnvironment(templates_dir, autoescape=False)
        self.escaping = MessageEnvironment(templates_dir, autoescape=True)
        for env in (self.plain, self.escaping):
            env.add_filters(FILTERS)
        self.globals = dict(self.plain.globals)  # both environments have the same

    def refresh(self) -> None:
        """Forget the compiled templates whose files changed since they were read."""
        for env in (self.plain, self.escaping):
            env.refresh()

    def load(self, path: Path, *, html: bool = False) -> Template:
        """The compiled template of ``path``; a syntax error names its line."""
        env = self.escaping if html else self.plain
        try:
            return env.get_template(path.name)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"{path}:{exc.lineno}: {exc.message}") from None
        except TemplateNotFound:
            raise TemplateError(f"{path}: no such template") from None
        except UnicodeDecodeError:
            try:
                utf8_text(path, path.read_bytes())
            except ValueError as exc:
                raise TemplateError(str(exc)) from None
            raise


_FOLDERS: dict[Path, Templates] = {}


def templates_for(config: Config, folder: Path | None = None, *, refresh: bool = True) -> Templates:
    """The (cached) templates of the config's templates folder, refreshed (files changed
    since they were compiled are read again) unless ``refresh`` is false."""
    folder = folder or config.templates_dir
    templates = _FOLDERS.get(folder)
    if templates is None:
        templates = _FOLDERS[folder] = Templates(folder)
    elif refresh:
        templates.refresh()
    return templates


def message_context(
    config: Config,
    campaign: Campaign,
    contact: Mapping[str, Any],
    event: Mapping[str, Any] | None,
    occasion: str,
    now: datetime,
) -> dict[str, Any]:
    """The variables a template sees, exactly: contact, event, occasion, campaign, sender, now."""
    return {
        "contact": Record("contact", contact_view(contact)),
        "event": Record("event", event_view(event))
        if event is not None
        else no_event(campaign.trigger.type),
        "occasion": occasion,
        "campaign": _campaign(campaign),
        "sender": _sender(config),
        "now": now,
    }


def _campaign(campaign: Campaign) -> Record:
    """``campaign`` as templates see it, made once per campaign object (read-only)."""
    if _last_campaign and _last_campaign[0][0] is campaign:
        return _last_campaign[0][1]
    record = Record(
        "campaign",
        {
            "id": campaign.id,
            "name": campaign.title,
            "channel": campaign.channel,
            "provider": campaign.provider,
            "template": campaign.template,
            "trigger": campaign.trigger.type,
        },
    )
    _last_campaign[:] = [(campaign, record)]
    return record


_last_campaign: list[tuple[object, Record]] = []


def _sender(config: Config) -> Record:
    """``sender`` as templates see it (keys as written in ``[sender]``), made once per
    config: the layout's footer reads a dozen of its fields in every message."""
    if _last_sender and _last_sender[0][0] is config.sender:
        return _last_sender[0][1]
    # an unset sender field is empty, not "": a signature must not print blank
    fields = config.sender.model_dump(by_alias=True)
    record = Record("sender", {k: wrap(f"sender.{k}", v or None) for k, v in fields.items()})
    _last_sender[:] = [(config.sender, record)]
    return record


_last_sender: list[tuple[object, Record]] = []  # the sender most renders use, and its Record


def render_message(
    config: Config,
    campaign: Campaign,
    contact: Mapping[str, Any],
    event: Mapping[str, Any] | None,
    occasion: str,
    now: datetime,
    *,
    provider: Provider | type[Provider] | None = None,
    links: Links | None = None,
    delivery_id: str = "",
) -> Message:
    """The message of ``campaign`` for ``contact`` on ``occasion``, rendered at ``now``.

    ``event`` is the triggering event (None where there is none: anniversaries, and the
    lapse of a contact who was never active).
    ``provider`` decides the card length limit (default: the campaign's provider).
    ``links`` and ``delivery_id`` make a marketing e-mail's ``unsubscribe_url``
    (:mod:`regard.render.unsubscribe`). Raises TemplateError naming the template file, line and the problem.
    """
    renders = Renders(config, campaign, now, provider=provider, links=links)
    return renders.render(contact, event, occasion, delivery_id)


class Renders:
    """Messages of one campaign rendered at one instant (a batch of a tick): the template
    files are checked for changes once, when the batch starts, and each locale's file is
    picked once; :meth:`render` is :func:`render_message` for one contact."""

    def __init__(
        self,
        config: Config,
        campaign: Campaign,
        now: datetime,
        *,
        provider: Provider | type[Provider] | None = None,
        links: Links | None = None,
    ) -> None:
        self.config, self.campaign, self.now = config, campaign, now
        self.provider, self.links = provider, links
        self.folder = config.templates_dir
        self.templates = templates_for(config, self.folder)
        self.kind = channel(campaign.channel)
        self.shop = unsubscribe.shop_name(config)
        self._paths: dict[str, Path | None] = {}

    def path(self, locale: str) -> Path | None:
        """The message file of ``locale`` (looked up once per batch)."""
        if locale not in self._paths:
            self._paths[locale] = pick_template(self.folder, self.campaign.template, locale)
        return self._paths[locale]

    def render(
        self,
        contact: Mapping[str, Any],
        event: Mapping[str, Any] | None,
        occasion: str,
        delivery_id: str = "",
    ) -> Message:
        """The message for ``contact`` (see :func:`render_message`)."""
        config, campaign = self.config, self.campaign
        locale = str(contact.get("locale") or config.locale)
        path = self.path(locale)
        if path is None:
            raise TemplateError(
                f"{self.folder / (campaign.template + '.j2')}: no template "
                f"{campaign.template!r} for locale {locale!r} (and no {campaign.template}.j2)"
            )
        templates = self.templates
        variables = message_context(config, campaign, contact, event, occasion, self.now)
        variables.update(unsubscribe.context(self.links, campaign, delivery_id))
        blocks: dict[str, str] = {}
        tz = contact.get("timezone") or config.timezone
        kind = self.kind
        country = contact.get("country")
        with rendering_for(
            locale, str(tz), config.currency, fallback=config.locale, country=country or None
        ):
            reset_budget()
            needed = kind.required_blocks
            plain = templates.load(path)
            # shared: the variables are the context's only parent (globals merged in once here)
            variables = {**templates.globals, **variables}
            context = _prepared(plain, variables, path)
            html_context = None
            if "html" in kind.optional_blocks:
                escaping = templates.load(path, html=True)
                html_context = _prepared(escaping, variables, path)
                if "html" not in html_context.blocks:
                    html_context = None
            for block in needed:
                if block not in context.blocks:
                    if block == "text" and html_context is not None:
                        continue  # made from the HTML below
                    raise TemplateError(
                        f"{path}: no {{% block {block} %}} ({kind.article} {campaign.channel} "
                        "message needs "
                        f"{' and '.join(needed)})"
                    )
                blocks[block] = _render(context, block, path)
            if html_context is not None:
                blocks["html"] = _render(html_context, "html", path)
                if "text" in needed and "text" not in blocks:
                    blocks["text"] = html_to_text(blocks["html"])
        message = Message(
            subject=" ".join(blocks["subject"].split()) if "subject" in blocks else None,
            text=_tidy(blocks["text"]) if "text" in blocks else None,
            html=blocks["html"].strip() if "html" in blocks else None,
            card=_tidy(blocks["card"]) if "card" in blocks else None,
        )
        for block in needed:
            if not getattr(message, block):
                raise TemplateError(f"{path}: block {block} renders empty")
        if message.card is not None:
            _check_card_length(config, campaign, message.card, path, self.provider)
        if campaign.channel == "sms" and message.text and len(message.text) > sms.MAX_CHARS:
            raise TemplateError(
                f"{path}: the SMS text is {len(message.text)} characters long "
                f"({sms.describe(message.text)}); an SMS takes at most {sms.MAX_CHARS}"
            )
        return unsubscribe.with_footer(message, variables, locale, self.shop)


class Stored:
    """How the rendered messages of one campaign become what their deliveries store:
    ``{to, subject, text, html, card, headers}`` (a card's handwritten text is the record's
    ``text``; ``card`` holds its design, font and the sender, the return address; a
    marketing e-mail's headers carry its unsubscribe link). ``links``: those the messages
    were rendered with (their tokens signed once for the batch)."""

    def __init__(self, config: Config, campaign: Campaign, links: Links | None) -> None:
        self.kind = channel(campaign.channel)
        self.card = campaign.card.model_dump() if campaign.card else None
        self.sender = config.sender.return_address()
        self.links = links if links is not None and wants_link(campaign) else None

    def message(
        self, message: Message, to: Any, delivery_id: str, keep: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The stored message of ``message``, sent to ``to`` as delivery ``delivery_id``;
        with ``keep``, only those of its keys."""
        parts = self.kind.parts(
            {"subject": message.subject, "text": message.text, "html": message.html,
             "card": message.card},
            card=self.card,
            sender=dict(self.sender),
        )  # fmt: skip
        headers = self.links.headers(delivery_id) if self.links is not None else {}
        stored = {"to": to, "subject": parts.subject, "text": parts.text, "html": parts.html,
                  "card": parts.card, "headers": headers}  # fmt: skip
        return stored if keep is None else {key: stored[key] for key in keep}

    def text(
        self, message: Message, to: Any, delivery_id: str, keep: Sequence[str] | None = None
    ) -> str:
        """:meth:`message` as the row stores it: its JSON text."""
        text = message_text(self.message(message, to, delivery_id, keep))
        assert text is not None  # a message always has its keys
        return text


def _prepared(template: Template, variables: dict[str, Any], path: Path) -> Context:
    with _template_problems(path):
        context = prepared_context(template, variables)
    return context


def _render(context: Context, block: str, path: Path) -> str:
    with _template_problems(path):
        text = render_block(context, block)
    return text


@contextmanager
def _template_problems(path: Path) -> Iterator[None]:
    """Whatever a template's code does wrong (a filter on the wrong type, an unknown
    currency code, deep recursion, a layout that is missing or does not parse) is a problem
    of that template, never a crash of the tick: a TemplateError naming the file and line."""
    try:
        yield
    except TemplateNotFound as exc:
        raise TemplateError(f"{path}: no template {exc.name!r} in {path.parent}") from None
    except TemplateSyntaxError as exc:
        where = exc.filename or str(path)
        raise TemplateError(f"{where}:{exc.lineno}: {exc.message}") from None
    except Exception as exc:
        raise _template_error(exc, path) from None


def _template_error(exc: BaseException, path: Path) -> TemplateError:
    """The error of a failed render, naming the file and line it came from (a layout's or a
    partial's own, when it was theirs)."""
    found = template_line(exc)
    if found is None:
        where = str(path)
    else:
        filename, line = found
        shown = path if Path(filename).name == path.name else path.parent / Path(filename).name
        where = f"{shown}:{line}"
    reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        reason = f"rendering needed more than {MAX_RENDER_MEMORY >> 20} MB"
    kind = "refused: " if isinstance(exc, SecurityError | MemoryError) else ""
    return TemplateError(f"{where}: {kind}{reason}")


_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    joined = "\n".join([line.rstrip() for line in text.strip().splitlines()])
    return _BLANK_LINES.sub("\n\n", joined) if "\n\n\n" in joined else joined


def card_limit(
    config: Config, campaign: Campaign, provider: Provider | type[Provider] | None = None
) -> int | None:
    """The longest card text the campaign's provider takes (None: no limit known)."""
    if provider is not None:
        return provider.card_max_chars
    table = config.providers.get(campaign.provider)
    if table is None:
        return None
    try:
        return adapter_class(table.type).card_max_chars
    except ProviderError:
        return None


def _check_card_length(
    config: Config,
    campaign: Campaign,
    card: str,
    path: Path,
    provider: Provider | type[Provider] | None,
) -> None:
    limit = card_limit(config, campaign, provider)
    if limit is not None and len(card) > limit:
        raise TemplateError(
            f"{path}: the card text is {len(card)} characters long; provider "
            f"{campaign.provider!r} takes at most {limit}"
        )


def wrap_card(text: str, width: int = CARD_WIDTH) -> str:
    """Card text wrapped as it will be written: paragraphs kept, lines at most ``width``."""
    out = []
    for line in text.splitlines():
        out.append(textwrap.fill(line, width=width) if line.strip() else "")
    return "\n".join(out)


def address_line(to: Mapping[str, Any]) -> str:
    """A postal address on one line, as people write it: ``Eva Schön, Am Markt 2, 04109
    Leipzig, DE`` (the postal code and city together, empty parts left out)."""
    place = f"{to.get('postal_code') or ''} {to.get('city') or ''}".strip()
    parts = [
        to.get("name"),
        to.get("company"),
        to.get("street"),
        to.get("address2"),
        place,
        to.get("country"),
    ]
    return ", ".join(str(p) for p in parts if p)
