"""Rendering at enqueue: the message is rendered when the delivery is decided and stored
with it (``{to, subject, text, html, card}``), so what ``preview`` shows is what is sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.campaigns.model import Campaign
from regard.channels import channel
from regard.config import Config
from regard.errors import TemplateError
from regard.render import render_message
from regard.times import Instant, from_epoch
from regard.triggers import Occasion


class Renderer:
    """Renders the messages of one tick."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def render(
        self,
        campaign: Campaign,
        contact: dict[str, Any],
        occasion: Occasion,
        to: Any,
        at: Instant,
        event: Mapping[str, Any] | None = None,
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
            )
        except TemplateError as exc:
            return None, str(exc)
        parts = channel(campaign.channel).parts(
            {"subject": message.subject, "text": message.text, "html": message.html,
             "card": message.card},
            card=campaign.card.model_dump() if campaign.card else None,
            sender=self.config.sender.return_address(),
        )  # fmt: skip
        return {
            "to": to,
            "subject": parts.subject,
            "text": parts.text,
            "html": parts.html,
            "card": parts.card,
        }, None
