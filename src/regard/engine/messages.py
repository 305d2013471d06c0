"""Rendering at enqueue: the message is rendered when the delivery is decided and stored
with it (``{to, subject, text, html, card, headers}``), so what ``preview`` shows is what is
sent. A marketing e-mail's link and headers are made here (:mod:`regard.render.unsubscribe`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regard.campaigns.model import Campaign
from regard.channels import channel
from regard.config import Config
from regard.errors import TemplateError
from regard.render import render_message
from regard.render.unsubscribe import Links, wants_link
from regard.times import Instant, from_epoch
from regard.triggers import Occasion


class Renderer:
    """Renders the messages of one tick."""

    def __init__(self, config: Config, links: Links | None = None) -> None:
        self.config = config
        self.links = _SignedOnce.wrapping(links) if links is not None else None
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
        try:
            message = render_message(
                self.config,
                campaign,
                contact,
                event,
                occasion.occasion,
                from_epoch(at),
                links=self.links,
                delivery_id=delivery_id,
            )
        except TemplateError as exc:
            return None, str(exc)
        parts = channel(campaign.channel).parts(
            {"subject": message.subject, "text": message.text, "html": message.html,
             "card": message.card},
            card=campaign.card.model_dump() if campaign.card else None,
            sender=dict(self.sender),
        )  # fmt: skip
        return {
            "to": to,
            "subject": parts.subject,
            "text": parts.text,
            "html": parts.html,
            "card": parts.card,
            "headers": self.links.headers(delivery_id)
            if self.links is not None and wants_link(campaign)
            else {},
        }, None


@dataclass(frozen=True)
class _SignedOnce(Links):
    """Links that sign each delivery id once: its message's link, footer and headers all
    carry the same token."""

    _signed: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def wrapping(cls, links: Links) -> _SignedOnce:
        return cls(links.base_url, links.secret, links.mailto)

    def url(self, delivery_id: str) -> str:
        signed = self._signed.get(delivery_id)
        if signed is None:
            if len(self._signed) > 64:
                self._signed.clear()
            signed = self._signed[delivery_id] = super().url(delivery_id)
        return signed
