"""What every area of the store's API shares: the store's connection and transactions."""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regard.store import Store


PSEUDONYM_KEY = "pseudonym_key"  # the row of ``meta`` holding the store's key
ADDRESS_PREFIX = "hmac-sha256:"  # how a forgotten address is kept in ``suppressions``


_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"\+[1-9][0-9]{5,14}")


def normal_address(address: str) -> str:
    """The one form addresses are stored and compared in: an e-mail address lower-cased
    whole (local part too: no mail system regard talks to tells ``Anna@`` from ``anna@``,
    and a bounce must stop both); a phone number in E.164 (``+49 30 1234-567``,
    ``0049301234567`` → ``+49301234567``); anything else stripped, as it is. A forgotten
    address (``hmac-sha256:…``, or ``sha256:…`` of older stores) is left as it is.

    Also registered as the SQL function ``normal_address(text)`` on every store connection.
    """
    text = address.strip()
    if text.startswith((ADDRESS_PREFIX, "sha256:")):
        return text
    if "@" in text:
        return text.lower()
    phone = _PHONE_PUNCTUATION.sub("", text)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    return phone if _E164.fullmatch(phone) else text


class Pseudonyms:
    """The keyed hashes by which the store remembers what it has forgotten.

    Each is HMAC-SHA256, under a random key of this store (kept in ``meta``, made by the
    migration that introduced it), of the SHA-256 of the value. Without the key, a
    pseudonym cannot be tested against guesses (a numeric customer id, a known address);
    with it, the store recognises a forgotten id or address when it comes back. Hashing
    the SHA-256 rather than the value let that migration re-key the plain SHA-256 digests
    that older stores kept.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def keyed(self, digest_hex: str) -> str:
        """The pseudonym of a value whose SHA-256 hex digest is ``digest_hex``."""
        return hmac.new(self._key, digest_hex.encode("ascii"), hashlib.sha256).hexdigest()

    def contact(self, contact_id: str) -> str:
        """How an erased contact id is remembered (in ``forgotten``, and in the
        ``forgotten:<pseudonym>`` contact id of its anonymous rows)."""
        return self.keyed(hashlib.sha256(contact_id.encode("utf-8")).hexdigest())

    def address(self, address: str) -> str:
        """``hmac-sha256:<hex>`` of an address in its normal form (:func:`normal_address`;
        how a forgotten address is kept in ``suppressions``).

        Also registered as the SQL function ``address_hash(text)`` on the store's
        connection, so queries recognise a hashed suppression the way Python code does.
        """
        normal = normal_address(address).encode("utf-8")
        return ADDRESS_PREFIX + self.keyed(hashlib.sha256(normal).hexdigest())


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
