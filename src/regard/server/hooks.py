"""``POST /hooks/<provider name>``: what the providers report after sending."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
