"""Helpers for adapter tests: build a configured adapter from a real regard.toml, make
one delivery attempt through it with a real httpx client, and delivery records per channel.
The HTTP server they talk to is the ``sink`` fixture (tests/httpsink.py)."""

from __future__ import annotations

import asyncio
import socket
import textwrap
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from regard.providers import Outcome, Provider, build_provider
from regard.workspace import load_config


@pytest.fixture
def make_provider(workspace: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Provider]:
    """Add ``[providers.NAME]`` = ``table`` to the workspace's regard.toml, load it the way
    the CLI does (env substitution, validation) and build the adapter."""
    base: dict[str, str] = {}  # the config as the test left it before the first adapter

    def make(table: str, env: dict[str, str] | None = None, name: str = "svc") -> Provider:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        basic = base.setdefault("text", workspace.config.read_text(encoding="utf-8"))
        text = f"{basic}\n[providers.{name}]\n{textwrap.dedent(table)}"
        workspace.config.write_text(text, encoding="utf-8")
        return build_provider(name, load_config(workspace.config))

    return make


Deliver = Callable[..., Outcome]
Record = Callable[..., dict[str, Any]]


@pytest.fixture
def deliver() -> Deliver:
    """One attempt through an adapter with a real httpx client, as dispatch makes it."""
    return attempt


@pytest.fixture
def record() -> Record:
    """A delivery record for a channel (``record("card", text=...)``)."""
    return delivery_record


@pytest.fixture
def answer_with() -> Callable[..., Outcome]:
    """One attempt whose answer is ``httpx.Response(status, json=body, headers=headers)``
    without a socket (httpx.MockTransport): for tables of a service's error answers."""

    def answer(
        provider: Provider,
        record: dict[str, Any],
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, json=body, headers=headers)

        return attempt(provider, record, transport=httpx.MockTransport(handler))

    return answer


def attempt(
    provider: Provider,
    record: dict[str, Any],
    timeout: float = 5.0,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    uncertain: bool = False,
    since: int | None = None,
) -> Outcome:
    """One attempt as dispatch makes it (``uncertain``: an earlier one may have reached the
    service; ``since``: when the first was made)."""

    async def go() -> Outcome:
        async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
            try:
                return await provider.attempt(record, client, uncertain=uncertain, since=since)
            finally:
                await provider.aclose()

    return asyncio.run(go())


def delivery_record(channel: str = "email", **overrides: Any) -> dict[str, Any]:
    """A delivery record as the contract defines it, for ``channel``."""
    to: Any = {
        "email": "erika.mustermann@example.de",
        "sms": "+4915112345678",
        "webhook": None,
        "card": {
            "name": "Erika Mustermann",
            "company": "",
            "street": "Hauptstraße 1",
            "postal_code": "80331",
            "city": "München",
            "country": "DE",
        },
    }[channel]
    record: dict[str, Any] = {
        "delivery_id": "d_3f2a9c1e5b7d4f6a8c0e2b4d6f8a1c3e",
        "campaign": "thank-you",
        "contact_id": "c-1001",
        "occasion": "o-5001",
        "channel": channel,
        "to": to,
        "subject": "Danke für Ihre Bestellung" if channel == "email" else None,
        "text": "Hallo Erika, danke für Ihre erste Bestellung!",
        "html": "<p>Hallo Erika, danke für Ihre erste Bestellung!</p>"
        if channel == "email"
        else None,
        "card": {"design": None, "font": None, "sender": None} if channel == "card" else None,
        "created_at": "2026-11-22T07:00:00Z",
    }
    record.update(overrides)
    return record


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
