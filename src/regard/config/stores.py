"""A config's ``store`` (and ``migrate-store --to``): a SQLite file path, or a PostgreSQL URL,
checked and shown without its password."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

# a store that is a URL (anything else is a SQLite file path)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
STORE_SCHEMES = ("postgresql", "postgres")


def is_store_url(target: str | Path) -> bool:
    """Whether ``target`` (a config's ``store``, a ``--to`` argument) is a URL."""
    return isinstance(target, str) and _SCHEME.match(target) is not None


def check_store_url(url: str) -> None:
    """ValueError unless ``url`` is a PostgreSQL connection URL regard can open:
    ``postgresql://user@host:5432/db`` (also ``postgres://``; libpq's query parameters,
    ``?host=/run/postgresql`` for a unix socket, are allowed). The messages never show
    the password."""
    shown = redact_url(url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in STORE_SCHEMES:
        raise ValueError(
            f"{shown!r}: unknown kind of store {parts.scheme!r}: a SQLite file "
            '(store = "regard.db") or a PostgreSQL URL (store = "postgresql://user@host/db")'
        )
    if any(c.isspace() for c in url):
        raise ValueError(f"{shown!r} contains a space; percent-encode it (%20)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{shown!r}: the port is not a number between 1 and 65535") from None
    if port == 0:
        raise ValueError(f"{shown!r}: the port is not a number between 1 and 65535")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ValueError(
            f"{shown!r}: name one database after the host, as in "
            "postgresql://regard@db.example.com:5432/regard"
        )
    if parts.fragment:
        raise ValueError(f"{shown!r}: a URL of a database has no #fragment")


def redact_url(url: str) -> str:
    """``url`` with its password (and a ``password=`` query parameter) replaced by ``***``:
    what messages and logs may show of a store URL."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_password(url: str) -> str | None:
    """The password a store URL carries (in its user part or a ``password=`` parameter)."""
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    found = re.search(r"(?i)(?:^|&)password=([^&]*)", parts.query)
    return unquote(found.group(1)) if found else None
