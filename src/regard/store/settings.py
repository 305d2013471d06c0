"""Facts the store keeps for the server: the ``settings`` table, one text value per key."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from regard.store.area import Area
from regard.times import now_instant

SERVER_SECRET = "server_secret"


class Settings(Area):
    """The ``settings`` table: values made once and kept (never personal data)."""

    def get(self, key: str) -> str | None:
        """The value of ``key``, or None when it was never set."""
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def get_or_create(self, key: str, make: Callable[[], str]) -> str:
        """The value of ``key``; when there is none, ``make()`` is stored and returned. Two
        processes asking at once get the same value (the first one's)."""
        found = self.get(key)
        if found is not None:
            return found  # read, no write transaction: the usual case
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, make(), now_instant()),
            )
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            return str(row[0])

    def server_secret(self) -> str:
        """The secret that signs links when ``[server] secret`` is not set: 32 random bytes
        (URL-safe base64), generated on first use and kept, so links outlive restarts."""
        return self.get_or_create(SERVER_SECRET, lambda: secrets.token_urlsafe(32))
