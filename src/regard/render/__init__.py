"""Rendering messages: the sandboxed Jinja environment, locale filters, ``render_message``."""

from regard.render.message import Message, address_line, card_limit, render_message, wrap_card

__all__ = ["Message", "address_line", "card_limit", "render_message", "wrap_card"]
