"""The channels regard reaches a contact on, one module each, registered by name.

A channel says what the rest of regard needs to know about it: the consent rule it has by
default, which address it writes to (and which one an unsubscribe by address names), the
template blocks a message for it needs, and how a rendered message becomes the delivery's
parts. Adding a channel is one module here plus its import below; config's ``[consent]``,
the campaign's ``channel``, the tick's address check and the renderer read this registry.
"""

from __future__ import annotations

from regard.channels import card, email, sms, webhook  # noqa: F401  (importing registers them)
from regard.channels.base import Channel, ConsentRule, Parts, channel, names

CHANNELS: tuple[str, ...] = names()

__all__ = ["CHANNELS", "Channel", "ConsentRule", "Parts", "channel", "names"]
