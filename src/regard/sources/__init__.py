"""Where the shop's data comes in: ``[sources.NAME]`` tables, found by ``type``.

One module per shop knows that shop's field names (:mod:`regard.sources.shopify`,
:mod:`regard.sources.woocommerce`) and maps its objects to import rows, the same mapping
for its webhooks, its exports and its sync; :mod:`regard.sources.api` is regard's own JSON.
:mod:`regard.sources.ingest` verifies a request, maps it and commits it to the store.

Each source type has a ``type`` (what ``[sources.NAME] type`` says), ``verify(secret,
headers, body) -> bool`` on the raw body, in constant time, and ``receive(headers, body,
now) -> Batch``, which parses only a verified body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from regard.sources.api import ApiSource
from regard.sources.base import Batch
from regard.sources.shopify import ShopifySource
from regard.sources.shopify.sync import sync_shopify
from regard.sources.sync import Runner
from regard.sources.woocommerce import WooCommerceSource
from regard.sources.woocommerce.sync import sync_woocommerce

__all__ = ["SOURCE_TYPES", "SYNC_RUNNERS", "SourceType", "source_type"]


class SourceType(Protocol):
    """What ``POST /ingest/<name>`` needs from a source type."""

    type: str

    def verify(self, secret: str, headers: Mapping[str, str], body: bytes) -> bool: ...

    def receive(self, headers: Mapping[str, str], body: bytes, now: int) -> Batch: ...


SOURCE_TYPES: dict[str, SourceType] = {}


def register(source: SourceType) -> None:
    """Add a source type; two claiming one ``type`` is a bug."""
    if source.type in SOURCE_TYPES:
        raise RuntimeError(f"two source types claim the type {source.type!r}")
    SOURCE_TYPES[source.type] = source


for _source in (ShopifySource(), WooCommerceSource(), ApiSource()):
    register(_source)


def source_type(name: str) -> SourceType:
    """The source type called ``name`` (config validation keeps it to the known ones)."""
    return SOURCE_TYPES[name]


# `regard sync`: the runner of each source type that has an API to pull from
SYNC_RUNNERS: dict[str, Runner] = {"shopify": sync_shopify, "woocommerce": sync_woocommerce}
