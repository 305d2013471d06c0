"""E-mail: to the contact's ``email``; a subject and a text, optionally HTML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.channels.base import Channel, text


class Email(Channel):
    name = "email"
    position = 1
    article = "an"
    default_consent = "opt-in"
    required_blocks = ("subject", "text")
    optional_blocks = ("html",)

    def address(self, contact: Mapping[str, Any]) -> str | None:
        return text(contact.get("email")) or None
