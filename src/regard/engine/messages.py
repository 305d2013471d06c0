"""Rendering at enqueue: the message is rendered when the delivery is decided and stored
with it (``{to, subject, text, html, card, headers}``), so what ``preview`` shows is what is
sent. A marketing e-mail's link and headers are made here (:mod:`regard.render.unsubscribe`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from regard.campaigns.model import Campaign
from regard.channels import channel
from regard.config import Config
from regard.errors import TemplateError
from regard.render.isolation import Job, render_messages
from regard.render.unsubscribe import Links, wants_link
from regard.times import Instant, from_epoch
from regard.triggers import Occasion


class Renderer:
    """Renders the messages of one tick."""

    def __init__(self, config: Config, links: Links | None = None) -> None:
        self.config = config
        self.links = links
        self.sender = config.sender.return_address()

    def render(
        self,
        campaign: Campaign,
        contact: dict[str, Any],
        occasion: Occasion,
        to: Any,
        at: Instant,
        event: Mapping[str, Any] | None = None,
        delivery_id: str = "",
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(the stored message, None) or (None, the template error): never half a message.

        ``event`` is the triggering event's stored row (``store.events.get``), if any. A
        card's handwritten text is the record's ``text``; ``card`` holds its design, font
        and the sender (the return address).
        """
        (rendered,) = self.render_many(
            campaign, [Wanted(contact, occasion, to, event, delivery_id)], at
        )
        return rendered

    def render_many(
        self, campaign: Campaign, wanted: Sequence[Wanted], at: Instant
    ) -> list[tuple[dict[str, Any] | None, str | None]]:
        """:meth:`render` for each of ``wanted`` (one campaign at one instant), in order:
        one request to the render worker for all of them, each token signed once."""
        if not wanted:
            return []
        links = self.links
        marketing = links is not None and wants_link(campaign)
        if links is not None and marketing:
            links = links.signing(w.delivery_id for w in wanted)
        jobs = [Job(w.contact, w.event, w.occasion.occasion, w.delivery_id) for w in wanted]
        results = render_messages(self.config, campaign, jobs, from_epoch(at), links=links)
        kind = channel(campaign.channel)
        card = campaign.card.model_dump() if campaign.card else None
        stored: list[tuple[dict[str, Any] | None, str | None]] = []
        for w, message in zip(wanted, results, strict=True):
            if isinstance(message, TemplateError):
                stored.append((None, str(message)))
                continue
            parts = kind.parts(
                {"subject": message.subject, "text": message.text, "html": message.html,
                 "card": message.card},
                card=card,
                sender=dict(self.sender),
            )  # fmt: skip
            headers = links.headers(w.delivery_id) if links is not None and marketing else {}
            stored.append((
                {"to": w.to, "subject": parts.subject, "text": parts.text, "html": parts.html,
                 "card": parts.card, "headers": headers},
                None,
            ))  # fmt: skip
        return stored


class Wanted(NamedTuple):
    """One message a tick wants: for whom, on which occasion, to which address, with which
    triggering event, under which delivery id."""

    contact: dict[str, Any]
    occasion: Occasion
    to: Any
    event: Mapping[str, Any] | None = None
    delivery_id: str = ""
