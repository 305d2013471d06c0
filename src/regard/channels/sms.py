"""SMS: to the contact's ``phone`` (E.164); a text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.channels.base import Channel, text


class Sms(Channel):
    name = "sms"
    position = 2
    article = "an"
    default_consent = "opt-in"

    def address(self, contact: Mapping[str, Any]) -> str | None:
        return text(contact.get("phone")) or None
