"""What every area of the store's API shares: the store's connection and transactions."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regard.store import Store


def address_hash(address: str) -> str:
    """``sha256:<hex>`` of an address in its normal form (:func:`normal_address`; how
    forgotten addresses are kept).

    Also registered as the SQL function ``address_hash(text)`` on every store connection, so
    queries recognise a hashed suppression the same way Python code does.
    """
    return "sha256:" + hashlib.sha256(normal_address(address).encode("utf-8")).hexdigest()


_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"\+[1-9][0-9]{5,14}")


def normal_address(address: str) -> str:
    """The one form addresses are compared in: an e-mail address lower-cased whole (local
    part too: no mail system regard talks to tells ``Anna@`` from ``anna@``, and a bounce
    must stop both); a phone number in E.164 (``+49 30 1234-567``, ``0049301234567`` →
    ``+49301234567``); anything else stripped, as it is. A ``sha256:`` hash is left as
    it is."""
    text = address.strip()
    if text.startswith("sha256:"):
        return text
    if "@" in text:
        return text.lower()
    phone = _PHONE_PUNCTUATION.sub("", text)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    return phone if _E164.fullmatch(phone) else text


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
