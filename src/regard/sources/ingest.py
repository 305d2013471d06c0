"""``POST /ingest/<source name>`` without the HTTP: verify, map, commit.

:func:`prepare` runs first, on the raw body: the source is looked up (:class:`UnknownSource`,
404), the signature or token checked in constant time (:class:`Unauthorized`, 401) before
a byte is parsed, then the body mapped to a :class:`Batch` (:class:`MalformedBody`, 400).
:func:`commit` then writes the batch in one transaction, with the count ``regard status``
shows; records that fail validation raise :class:`RejectedRecords` (422 for ``api``) and
nothing is stored. When :func:`commit` returns, the write is committed: only then may the
request be answered 200. A webhook sent twice changes nothing the second time (every write
is an upsert by id; a void keeps its first time; a forgotten contact stays forgotten).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from regard.config import Config, SourceTable
from regard.errors import InputError, RegardError
from regard.forget import forget_contact
from regard.sources import source_type
from regard.sources.base import Batch, MalformedBody, Unauthorized
from regard.store import Store
from regard.store.record_import import RejectedRecords, import_records
from regard.times import Instant

__all__ = [
    "Batch",
    "MalformedBody",
    "Received",
    "RejectedRecords",
    "Unauthorized",
    "UnknownSource",
    "commit",
    "commit_many",
    "ingest",
    "prepare",
]

log = logging.getLogger("regard.ingest")


class UnknownSource(RegardError):
    """No ``[sources.NAME]`` of that name (HTTP 404)."""


@dataclass(frozen=True)
class Received:
    """What a request stored: ``contacts`` and ``events`` taken (written, changed or not),
    ``voided`` events voided, ``forgotten`` contacts erased; ``ignored`` why nothing was
    meant to be stored. ``answer()`` is the JSON of the 200."""

    source: str
    topic: str
    contacts: int = 0
    events: int = 0
    voided: int = 0
    forgotten: int = 0
    ignored: str | None = None

    def answer(self) -> dict[str, object]:
        """``{"ok": true, "contacts": N, "events": N}``."""
        return {"ok": True, "contacts": self.contacts, "events": self.events}


def source_table(config: Config, name: str) -> SourceTable:
    """``[sources.<name>]``; raises UnknownSource."""
    table = config.sources.get(name)
    if table is None:
        raise UnknownSource(f"no source {name!r} in the config ([sources.{name}])")
    return table


def prepare(
    config: Config, name: str, headers: Mapping[str, str], body: bytes, now: Instant
) -> Batch:
    """Look up source ``name``, verify ``body`` (raw bytes) against its secret, then map it.
    Raises UnknownSource, Unauthorized or MalformedBody; touches no store."""
    table = source_table(config, name)
    kind = source_type(table.type)
    if not kind.verify(table.secret.get_secret_value(), headers, body):
        what = "token" if table.type == "api" else "signature"
        raise Unauthorized(f"source {name!r}: the {what} is wrong or missing")
    return kind.receive(headers, body, now)


def commit(store: Store, config: Config, name: str, batch: Batch, now: Instant) -> Received:
    """Write ``batch`` of source ``name`` in one transaction with its count for ``status``;
    committed when this returns. Raises RejectedRecords (nothing written)."""
    day = datetime.fromtimestamp(now, config.tz).date().isoformat()
    forgotten = 0
    for contact_id in batch.forget:
        # erasure is its own transaction (it checkpoints the WAL after it commits)
        try:
            forget_contact(store, config, contact_id)
            forgotten += 1
        except InputError:
            pass  # not in the store (or forgotten already): nothing to erase
    with store.write():
        taken = import_records(
            store, config, batch.contacts, batch.events,
            voids=batch.voids, lenient=batch.lenient, now=now,
        )  # fmt: skip
        store.inbound.record(name, day, now, batch.topic)
    received = Received(
        source=name, topic=batch.topic, contacts=taken.contacts, events=taken.events,
        voided=taken.voided, forgotten=forgotten, ignored=batch.ignored,
    )  # fmt: skip
    if batch.ignored:
        log.info("source %s: %s: ignored (%s)", name, batch.topic, batch.ignored)
    for dropped in taken.dropped:
        # the field's name and why, never its value (personal data stays out of logs)
        log.warning("source %s: %s: dropped %s", name, batch.topic, dropped.split(":", 1)[0])
    return received


def commit_many(
    store: Store, config: Config, batches: Sequence[tuple[str, Batch, Instant]]
) -> list[Received | RejectedRecords]:
    """:func:`commit` for many requests in ONE transaction (the server's group commit: the
    requests that arrived while the store was busy share one ``BEGIN``/``COMMIT``). Each
    batch is a savepoint: one rejected batch is rolled back alone and its
    RejectedRecords returned in its place; everything else is committed when this returns.
    Batches that forget (``customers/redact``) are committed one by one before the rest."""
    results: dict[int, Received | RejectedRecords] = {}
    for n, (name, batch, now) in enumerate(batches):
        if batch.forget:
            results[n] = _one(store, config, name, batch, now)
    with store.write():
        for n, (name, batch, now) in enumerate(batches):
            if n not in results:
                results[n] = _one(store, config, name, batch, now)
    return [results[n] for n in range(len(batches))]


def _one(
    store: Store, config: Config, name: str, batch: Batch, now: Instant
) -> Received | RejectedRecords:
    try:
        return commit(store, config, name, batch, now)
    except RejectedRecords as rejected:
        return rejected


def ingest(
    store: Store,
    config: Config,
    name: str,
    headers: Mapping[str, str],
    body: bytes,
    now: Instant,
) -> Received:
    """:func:`prepare` then :func:`commit`: a request received in one call."""
    return commit(store, config, name, prepare(config, name, headers, body, now), now)
