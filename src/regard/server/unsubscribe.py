"""``GET /u/<token>``, ``POST /u/<token>``, ``POST /u/<token>/resubscribe``: the way out of
marketing, one click from every marketing e-mail."""

from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
