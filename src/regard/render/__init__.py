"""Rendering messages: the sandboxed Jinja environment, locale filters, ``render_message``
(in a worker process with bounded time and memory: :mod:`regard.render.isolation`)."""

from regard.render.isolation import render_message
from regard.render.message import Message, address_line, card_limit, wrap_card

__all__ = ["Message", "address_line", "card_limit", "render_message", "wrap_card"]
