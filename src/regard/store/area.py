"""What every area of the store's API shares: the store's connection and transactions."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regard.store import Store


def address_hash(address: str) -> str:
    """``sha256:<hex>`` of an address, trimmed and lower-cased (how forgotten addresses are kept).

    Also registered as the SQL function ``address_hash(text)`` on every store connection, so
    queries recognise a hashed suppression the same way Python code does.
    """
    return "sha256:" + hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()


def forgotten_hash(contact_id: str) -> str:
    """How an erased contact id is remembered (in ``forgotten``): sha256 hex of its UTF-8
    bytes."""
    return hashlib.sha256(contact_id.encode("utf-8")).hexdigest()


class Area:
    """One area of the store's API (contacts, deliveries, …).

    A method that writes opens ``self.store.write()``, which becomes a savepoint when the
    caller already holds a transaction (a tick, ``plan``), so it joins the caller's.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn
