"""A webhook: the delivery record posted to the shop's own system; a text, no address."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.channels.base import Channel


class Webhook(Channel):
    name = "webhook"
    position = 4
    default_consent = "opt-out"

    def recipient(self, contact: Mapping[str, Any]) -> None:
        return None
