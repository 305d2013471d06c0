"""The PostgreSQL store: the private test cluster, and what only PostgreSQL has."""

from __future__ import annotations

import psycopg


def test_each_test_gets_its_own_empty_database(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT current_database(), version()").fetchone()
    assert row is not None
    assert pg_url.endswith("/" + row[0])
    assert row[1].startswith("PostgreSQL")
