"""Event rows of a CSV file validated a batch at a time, one column after the other.

:func:`parse_event` (regard.store.rows) reads one row: a dict, a function call per field.
For a plain CSV file that is most of an import's time, so :class:`EventColumns` reads a
batch of rows (the csv module's lists) column by column instead: each column is one pass
of C-level ``map`` (``str.strip``, ``datetime.fromisoformat``, a dict of the values seen
before), and the parameter rows of the upsert are zipped from the columns. Values that
repeat (types, amounts, currencies, void times, the properties' combinations) are
validated once each, with the very functions :func:`parse_event` calls.

It only decides what is plainly right. A row with anything off the common path (an empty
or non-printable id, a time ``datetime.fromisoformat`` cannot read or out of range, a bad
amount or currency, an NPS answer without a score from 0 to 10) is handed back by its
index, and the importer reads it through :func:`parse_event`, which reports its problems
(``FILE:LINE: field: reason``) and drops its bad optional fields exactly as for any row.
For every row it keeps, the result is the ParsedRow :func:`parse_event` gives
(tests/test_import_columns.py compares them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any

from regard.store import fields
from regard.store.rows import COMPUTED, RowContext, _dumps
from regard.times import EARLIEST_EPOCH, LATEST_EPOCH

# a column of amounts as fields.decimal reads them (\d as there: any Unicode digit, which
# float() reads too), one value a line; and those german_decimal reads the same way
_PLAIN = re.compile(r"(?:[+-]?\d+(?:[.,]\d+)?)?(?:\n(?:[+-]?\d+(?:[.,]\d+)?)?)*")
_GERMAN_PLAIN = re.compile(r"(?:[+-]?\d+(?:,\d+)?)?(?:\n(?:[+-]?\d+(?:,\d+)?)?)*")
_BAD = object()  # a value whose row goes to parse_event
_CACHE_LIMIT = 50_000  # distinct values remembered per column (then forgotten, batch-wise)
_fromiso = datetime.fromisoformat
_timestamp = datetime.timestamp
_tzinfo = attrgetter("tzinfo")
_EPOCH_DAY = datetime(2000, 1, 1, tzinfo=UTC)  # a placeholder for a time that is bad
TYPED = ("amount", "currency", "voided_at")


@dataclass
class EventBatch:
    """What :meth:`EventColumns.parse` makes of a batch. ``params`` are the upsert's
    parameter rows ``(id, *values[, fresh], now)`` for the columns ``key``; ``lines``,
    ``contact_ids`` and ``digests`` (the hash of ``(key, values)``, as the same-id-twice
    check takes it from a ParsedRow) go with them; ``slow`` are the indices (into the batch)
    of the rows :func:`parse_event` must read."""

    params: list[tuple[Any, ...]]
    lines: list[int]
    contact_ids: list[str]
    digests: list[int]
    slow: list[int]


class EventColumns:
    """The column-wise reader of event rows with the header ``columns``."""

    def __init__(self, columns: tuple[str, ...], ctx: RowContext, now: int) -> None:
        at = {name: n for n, name in enumerate(columns)}
        self.id_at, self.contact_at, self.time_at = at["id"], at["contact_id"], at["occurred_at"]
        self.type_at = at.get("type")
        # in the header's order, as parse_event meets them
        self.typed = [(name, n) for n, name in enumerate(columns) if name in TYPED]
        self.props = [
            (name, n)
            for n, name in enumerate(columns)
            if name not in ("id", "contact_id", "type", "occurred_at", *TYPED)
        ]
        self.key: tuple[str, ...] = (
            "contact_id",
            "type",
            "occurred_at",
            *(name for name, _ in self.typed),
            *(("properties",) if self.props else ()),
        )
        self.ctx = ctx
        self.now = now
        tz = ctx.timezone
        amount = ctx.amount
        self.checks: dict[str, Callable[[str], Any]] = {
            "amount": lambda v: amount("amount", v),
            "currency": lambda v: fields.currency("currency", v),
            "voided_at": lambda v: fields.instant("voided_at", v, tz),
        }
        self.caches: dict[str, dict[Any, Any]] = {name: {} for name in (*TYPED, "type", "props")}
        self.prefixes = [_dumps(name) + ":" for name, _ in self.props]

    @staticmethod
    def applies(columns: tuple[str, ...]) -> bool:
        """Whether rows of these columns can be read here (else: row by row): the required
        ones are there, and none is read as JSON text (``items``, ``properties``) or
        refused (a computed fact)."""
        if not {"id", "contact_id", "occurred_at"} <= set(columns):
            return False
        return not any(c in ("items", "properties") or c in COMPUTED for c in columns)

    def parse(self, lines: list[int], rows: list[list[str]], digests: bool = True) -> EventBatch:
        """The batch's rows (all of the header's width), read column by column; without
        ``digests`` (when the importer needs none) EventBatch.digests is empty."""
        count = len(rows)
        cols = list(zip(*rows, strict=True))
        slow: set[int] = set()
        ids = self._ids(cols[self.id_at], slow)
        contact_ids = self._ids(cols[self.contact_at], slow)
        if self.type_at is None:
            kinds: list[str] = ["order"] * count
        else:
            kinds = self._cached(cols[self.type_at], "type", _kind, slow)
        times = self._times(cols[self.time_at], slow)
        values: list[list[Any]] = [contact_ids, kinds, times]
        amounts: list[Any] | None = None
        for name, n in self.typed:
            if name == "amount":
                column = amounts = self._amounts(cols[n], slow)
            else:
                column = self._cached(cols[n], name, self.checks[name], slow)
            values.append(column)
        if "nps" in kinds:  # an answer needs its score, from 0 to 10 (parse_event says why)
            for n, kind in enumerate(kinds):
                if kind == "nps":
                    score = None if amounts is None else amounts[n]
                    if type(score) is not float or not 0 <= score <= 10:
                        slow.add(n)
        extra: list[Any] = []
        if self.props:
            patches, fresh = self._properties([cols[n] for _, n in self.props])
            values.append(patches)
            extra.append(fresh)
        key = self.key
        hashes = list(map(hash, zip(repeat(key), zip(*values, strict=True)))) if digests else []
        params = list(zip(ids, *values, *extra, repeat(self.now, count), strict=False))
        if not slow:
            return EventBatch(params, lines, contact_ids, hashes, [])
        keep = [n for n in range(count) if n not in slow]
        return EventBatch(
            [params[n] for n in keep],
            [lines[n] for n in keep],
            [contact_ids[n] for n in keep],
            [hashes[n] for n in keep] if digests else [],
            sorted(slow),
        )

    # -- columns -------------------------------------------------------------------------
    @staticmethod
    def _ids(column: tuple[str, ...], slow: set[int]) -> list[str]:
        """Stripped ids; an empty one, or one with a control character, goes slow."""
        ids = list(map(str.strip, column))
        if "" in ids:
            slow.update(n for n, value in enumerate(ids) if not value)
        if fields.has_control("".join(ids)):
            slow.update(n for n, value in enumerate(ids) if fields.has_control(value))
        return ids

    def _times(self, column: tuple[str, ...], slow: set[int]) -> list[int]:
        """Epoch seconds of ISO times (a time without a zone in the config's); one that
        ``datetime.fromisoformat`` cannot read, or out of range, goes slow."""
        raw = list(map(str.strip, column))
        try:
            moments = list(map(_fromiso, raw))
        except ValueError:
            moments = []
            for n, value in enumerate(raw):
                try:
                    moments.append(_fromiso(value))
                except ValueError:
                    slow.add(n)
                    moments.append(_EPOCH_DAY)
        if None in map(_tzinfo, moments):
            tz = self.ctx.timezone
            moments = [m if m.tzinfo is not None else m.replace(tzinfo=tz) for m in moments]
        try:
            seconds = list(map(math.floor, map(_timestamp, moments)))
        except (OverflowError, ValueError):
            seconds = []
            for n, moment in enumerate(moments):
                try:
                    seconds.append(math.floor(moment.timestamp()))
                except (OverflowError, ValueError):
                    slow.add(n)
                    seconds.append(EARLIEST_EPOCH)
        if seconds and (min(seconds) < EARLIEST_EPOCH or max(seconds) >= LATEST_EPOCH):
            slow.update(
                n for n, value in enumerate(seconds) if not EARLIEST_EPOCH <= value < LATEST_EPOCH
            )
        return seconds

    def _amounts(self, column: tuple[str, ...], slow: set[int]) -> list[Any]:
        """Amounts: a column of plain decimals (``49.90``, ``49,90``, ``-3``; in a
        ``;``-separated file without a ``.``) is checked by one match over the whole column
        and converted by ``float``, as :func:`fields.decimal` converts each; any other
        column goes value by value (:meth:`_cached`)."""
        stripped = list(map(str.strip, column))
        joined = "\n".join(stripped)
        plain = _GERMAN_PLAIN if self.ctx.decimal_comma else _PLAIN
        if joined.count("\n") != len(stripped) - 1 or plain.fullmatch(joined) is None:
            return self._cached(column, "amount", self.checks["amount"], slow)
        if "," in joined:
            stripped = [value.replace(",", ".") for value in stripped]
        if "" in stripped:
            numbers: list[float | None] = [float(v) if v else None for v in stripped]
            present = [number for number in numbers if number is not None]
        else:
            present = list(map(float, stripped))
            numbers = list(present)
        if present and max(map(abs, present)) >= fields.LARGEST_AMOUNT:
            slow.update(
                n
                for n, number in enumerate(numbers)
                if number is not None and abs(number) >= fields.LARGEST_AMOUNT
            )
        return numbers

    def _cached(
        self, column: tuple[str, ...], name: str, check: Callable[[str], Any], slow: set[int]
    ) -> list[Any]:
        """``check`` of each value, computed once per distinct value; a value it refuses
        (FieldError) sends its rows slow."""
        cache = self.caches[name]
        missing = set(column).difference(cache)
        if missing:
            if len(cache) + len(missing) > _CACHE_LIMIT:
                cache.clear()
                missing = set(column)
            for value in missing:
                try:
                    cache[value] = check(value)
                except fields.FieldError:
                    cache[value] = _BAD
        found = list(map(cache.__getitem__, column))
        if _BAD in found:
            slow.update(n for n, value in enumerate(found) if value is _BAD)
        return found

    def _properties(self, columns: list[tuple[str, ...]]) -> tuple[list[str], list[str]]:
        """Each row's properties as the JSON merge patch it sets (an empty value: null, which
        removes the key) and as a new row stores them (its nulls left out)."""
        cache: dict[tuple[str, ...], tuple[str, str]] = self.caches["props"]
        combos = list(zip(*columns, strict=True))
        missing = set(combos).difference(cache)
        if missing:
            if len(cache) + len(missing) > _CACHE_LIMIT:
                cache.clear()
                missing = set(combos)
            prefixes = self.prefixes
            for combo in missing:
                parts, kept = [], []
                for prefix, value in zip(prefixes, combo, strict=True):
                    stripped = value.strip()
                    part = prefix + (_dumps(stripped) if stripped else "null")
                    parts.append(part)
                    if stripped:
                        kept.append(part)
                cache[combo] = ("{" + ",".join(parts) + "}", "{" + ",".join(kept) + "}")
        pairs = list(map(cache.__getitem__, combos))
        return list(map(_first, pairs)), list(map(_second, pairs))


def _kind(value: str) -> str:
    return value.strip() or "order"


_first, _second = itemgetter(0), itemgetter(1)
