"""The SQL an import writes rows with: one ``INSERT … ON CONFLICT (id) DO UPDATE … WHERE``
per set of columns a run of rows brings, touching only rows that really change.

Files (:mod:`regard.store.importer`) and records (:mod:`regard.store.record_import`: the
ingest API, shop webhooks, sync) write through the same statements, so a contact or an
event is stored alike whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from regard.store.rows import ParsedRow


def runs_of(
    batch: list[tuple[int, ParsedRow]], now: int
) -> Iterator[tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    """Consecutive rows that set the same columns, as (columns, parameter rows); keeping
    file order means a later row for the same id wins."""
    key: tuple[str, ...] | None = None
    params: list[tuple[Any, ...]] = []
    for _, parsed in batch:
        if parsed.fresh is None:
            row_key = parsed.key
            params_row = (parsed.id, *parsed.values, now)
        else:  # the stored form of a new row comes along (see _upsert_sql)
            row_key = (*parsed.key, FRESH)
            params_row = (parsed.id, *parsed.values, parsed.fresh, now)
        if row_key != key:
            if params and key is not None:
                yield key, params
            key, params = row_key, []
        params.append(params_row)
    if params and key is not None:
        yield key, params


FRESH = "\x00fresh"  # the last entry of a key whose rows bring their patch column's new form


@lru_cache(maxsize=64)
def contact_sql(key: tuple[str, ...]) -> str:
    return _upsert_sql("contacts", key, "attributes", ("created_at", "updated_at"), "updated_at")


@lru_cache(maxsize=64)
def event_sql(key: tuple[str, ...]) -> str:
    return _upsert_sql("events", key, "properties", ("imported_at",), "imported_at")


@lru_cache(maxsize=64)
def insert_sql(key: tuple[str, ...]) -> str:
    """:func:`event_sql`'s insert alone: ``ON CONFLICT (id) DO NOTHING``."""
    return event_sql(key).split(" ON CONFLICT ", 1)[0] + " ON CONFLICT (id) DO NOTHING"


WIDE_PATCH = 8192  # characters of a patch from which the linear merge is the faster one


def _patched(target: str, n: int) -> str:
    """``target`` with the merge patch ?n applied: SQLite's ``json_patch`` for an ordinary
    patch (in C: the fastest), ``merge_patch`` (regard.store.rows, one pass over each
    object) for a wide one, where json_patch's scan of the target for every key of the
    patch is quadratic (100,000 attributes: 48.7 s)."""
    return (
        f"CASE WHEN length(?{n}) > {WIDE_PATCH} THEN merge_patch({target}, ?{n}) "
        f"ELSE json_patch({target}, ?{n}) END"
    )


def _upsert_sql(
    table: str, key: tuple[str, ...], patch_column: str, stamps: tuple[str, ...], touched: str
) -> str:
    """``INSERT … ON CONFLICT (id) DO UPDATE … WHERE <something differs>`` for the columns
    in ``key``. Parameters: ?1 = id, then one per column, then the import time. The JSON
    patch column is merged (:func:`_patched`: a null removes the key). A key ending in
    ``FRESH`` has one more parameter before the time: the patch column as a new row stores
    it (its nulls already left out), which spares SQLite a JSON round trip per insert."""
    fresh = bool(key) and key[-1] == FRESH
    if fresh:
        key = key[:-1]
    columns = ["id", *key, *stamps]
    placeholders = ["?1"]
    sets, differs = [], []
    for n, column in enumerate(key, start=2):
        if column == patch_column:
            placeholders.append(f"?{len(key) + 2}" if fresh else _patched("'{}'", n))
            merged = _patched(f"{table}.{column}", n)
            sets.append(f"{column} = {merged}")
            differs.append(f"{table}.{column} IS NOT {merged}")
        else:
            placeholders.append(f"?{n}")
            sets.append(f"{column} = excluded.{column}")
            differs.append(f"{table}.{column} IS NOT excluded.{column}")
    stamp = f"?{len(key) + 2 + fresh}"
    placeholders.extend(stamp for _ in stamps)
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(placeholders)})"
    if not sets:
        return f"{head} ON CONFLICT (id) DO NOTHING"
    return (
        f"{head} ON CONFLICT (id) DO UPDATE SET {', '.join(sets)}, {touched} = {stamp} "
        f"WHERE {' OR '.join(differs)}"
    )
