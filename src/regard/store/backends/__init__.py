"""The two engines under the one store: SQLite (a file, the default) and PostgreSQL (a
database server, for many daemons on one store).

The store's areas speak one SQL, written for SQLite. On PostgreSQL, ``Store.conn`` is
:class:`regard.store.backends.postgres.Connection`, which presents the part of
``sqlite3.Connection`` the areas use and translates each statement text once (cached):
placeholders, the few spellings the engines differ in, DDL types. The SQLite functions
the areas call (``json_each``, ``json_extract``, ``json_patch``, ``strftime``,
``normal_address``, ``address_hash`` …) exist on PostgreSQL as SQL functions of the same
name and meaning, made by its schema (:mod:`regard.store.backends.pg_schema`).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Dialect = Literal["sqlite", "postgresql"]

_URL = re.compile(r"^postgres(ql)?://", re.IGNORECASE)


def is_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database (``postgresql://`` or
    ``postgres://``) rather than a SQLite file."""
    return isinstance(target, str) and bool(_URL.match(target))


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def dialect_of(conn: object) -> Dialect:
    """The engine behind a store connection (``Store.conn``)."""
    return "sqlite" if isinstance(conn, sqlite3.Connection) else "postgresql"
