"""Streaming readers for import files: CSV and JSONL, one row at a time.

``open_rows(path)`` yields ``(line, row)`` where ``line`` is the 1-based line the row starts
on (so errors can say ``FILE:LINE``) and ``row`` is a dict of column → value, or a
:class:`BadLine` when the line itself cannot be read (malformed JSON, a CSV row with the
wrong number of fields). ``-`` is JSONL from stdin.

CSV: UTF-8 with or without a byte-order mark, a header row, ``,`` or ``;`` (whichever the
header uses more), quoted fields (which may span lines). Values are strings; ``""`` means
empty. JSONL: one JSON object per line; blank lines are ignored. JSON (``.json``): one
array of objects (what a shop's REST API answers), read object by object so that a large
file streams too; each row's line is the one its object starts on.

``rename`` (``--map``, ``[import] map``) renames columns as they are read: a CSV header
once, a JSON object's keys per row.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from regard.errors import InputError
from regard.store import fields

Row = dict[str, Any]


@dataclass(frozen=True)
class BadLine:
    """A line that is not a row at all; ``reason`` says why."""

    reason: str


@dataclass(frozen=True)
class Ignored:
    """A row a shop format leaves out on purpose (an order not yet paid); ``reason`` says why."""

    reason: str


@dataclass
class Source:
    """An open import file. ``name`` is how errors refer to it; ``size`` is its length in
    bytes (None for stdin) and ``bytes_read`` how far reading has come, for progress."""

    name: str
    kind: str  # "csv" | "jsonl" | "json"
    size: int | None
    binary: IO[bytes]
    columns: tuple[str, ...] | None = None
    delimiter: str = ","  # a CSV file's field separator, once its header is read
    required: tuple[str, ...] = ()
    rename: dict[str, str] = field(default_factory=dict)
    _owned: bool = field(default=True, repr=False)

    def rows(self) -> Iterator[tuple[int, Row | BadLine]]:
        """Every data row with the line it starts on."""
        if self.kind == "csv":
            return self._csv_rows()
        rows = self._json_rows() if self.kind == "json" else self._jsonl_rows()
        return self._renamed(rows) if self.rename else rows

    def _renamed(
        self, rows: Iterator[tuple[int, Row | BadLine]]
    ) -> Iterator[tuple[int, Row | BadLine]]:
        rename = self.rename
        for line, row in rows:
            if isinstance(row, dict):
                row = {rename.get(k, k): v for k, v in row.items()}
            yield line, row

    def close(self) -> None:
        if self._owned:
            self.binary.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lines -------------------------------------------------------------------------
    def _text(self, newline: str | None) -> Iterator[str]:
        """Decoded lines (a leading byte-order mark dropped); bytes that are not UTF-8 stop
        the import with the line they are on. A line longer than MAX_ROW_CHARS is never
        held whole: it comes as its first MAX_ROW_CHARS + 1 characters, without its end."""
        text = io.TextIOWrapper(self.binary, encoding="utf-8-sig", newline=newline)
        number = 0
        try:
            while line := text.readline(fields.MAX_ROW_CHARS + 1):
                number += 1
                if len(line) > fields.MAX_ROW_CHARS and not line.endswith("\n"):
                    while (rest := text.readline(fields.MAX_ROW_CHARS)) and not rest.endswith("\n"):
                        pass  # the rest of the line, dropped as it is read
                yield line
        except UnicodeDecodeError:
            raise self._not_utf8(number + 1) from None
        finally:
            with contextlib.suppress(ValueError):  # the file was closed first
                text.detach()  # so that closing the text layer never closes stdin

    def _not_utf8(self, reached: int) -> InputError:
        """The error for a file that is not UTF-8, at its first bad line (else ``reached``,
        the line reading had come to)."""
        return InputError(
            f"{self.name}:{self._first_bad_line() or reached}: the file is not UTF-8 text "
            "(save or export it as UTF-8)"
        )

    def _first_bad_line(self) -> int | None:
        """Text is decoded in chunks, so the error's line is found again line by line."""
        try:
            self.binary.seek(0)
        except (OSError, ValueError):
            return None
        for number, raw in enumerate(self.binary, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
        return None

    @property
    def bytes_read(self) -> int:
        """How far reading has come, in bytes (0 where that is unknown, e.g. a pipe)."""
        try:
            return self.binary.tell()
        except (OSError, ValueError):
            return 0

    # -- CSV ---------------------------------------------------------------------------
    def _csv_rows(self) -> Iterator[tuple[int, Row | BadLine]]:
        # the csv reader iterates the text layer itself (in C): no Python code per line
        text = io.TextIOWrapper(self.binary, encoding="utf-8-sig", newline="")
        previous_end = 1
        try:
            columns = self._csv_header(text)
            width = len(columns)
            reader = csv.reader(text, delimiter=self.delimiter, strict=True)
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield previous_end + 1, BadLine(f"malformed CSV: {exc}")
                    previous_end = reader.line_num + 1
                    continue
                start = previous_end + 1
                previous_end = reader.line_num + 1
                if len(values) != width:
                    if not values or (len(values) == 1 and not values[0].strip() and width > 1):
                        continue  # a blank line
                    yield (
                        start,
                        BadLine(f"{len(values)} values, but the header has {width} columns"),
                    )
                    continue
                yield start, dict(zip(columns, values, strict=True))
        except UnicodeDecodeError:
            raise self._not_utf8(previous_end + 1) from None
        finally:
            with contextlib.suppress(ValueError):  # the file was closed first
                text.detach()  # so that closing the text layer never closes stdin

    def _csv_header(self, text: IO[str]) -> tuple[str, ...]:
        """Read the header line: the delimiter, and the columns (renamed), checked."""
        header_line = text.readline()
        if not header_line:
            raise InputError(f"{self.name}: the file is empty (expected a header row)")
        delimiter = (
            ";" if _unquoted_count(header_line, ";") > _unquoted_count(header_line, ",") else ","
        )
        self.delimiter = delimiter
        header = next(csv.reader([header_line], delimiter=delimiter))
        columns = tuple(self.rename.get(c.strip(), c.strip()) for c in header)
        _check_header(self.name, columns, self.required)
        if len(columns) > fields.MAX_COLUMNS:
            raise InputError(
                f"{self.name}:1: the header has {len(columns)} columns; a row may have at "
                f"most {fields.MAX_COLUMNS} (see docs/import.md, Limits)"
            )
        self.columns = columns
        return columns

    def csv_batches(self, size: int) -> Iterator[CsvBatch]:
        """A CSV file's data rows in batches of up to ``size``, as the csv module reads
        them (lists of the header's width), with the lines they start on; the lines that
        are not rows come along as BadLine, blank lines are left out — the same rows and
        lines as :meth:`rows`, without a dict per row. (``columns`` is set once the
        first batch is read.)"""
        text = io.TextIOWrapper(self.binary, encoding="utf-8-sig", newline="")
        end = 1  # the line the previous row ended on
        try:
            width = len(self._csv_header(text))
            reader = csv.reader(text, delimiter=self.delimiter, strict=True)
            done = False
            while not done:
                batch = CsvBatch([], [], [])
                lines, rows = batch.lines, batch.rows
                done = True
                try:
                    for values in reader:
                        lines.append(end + 1)
                        end = reader.line_num + 1
                        rows.append(values)
                        if len(rows) >= size:
                            done = False
                            break
                except csv.Error as exc:
                    batch.bad.append((end + 1, BadLine(f"malformed CSV: {exc}")))
                    end = reader.line_num + 1
                    done = False
                if rows and (min(map(len, rows)) != width or max(map(len, rows)) != width):
                    _off_width(batch, width)
                if rows or batch.bad:
                    yield batch
        except UnicodeDecodeError:
            raise self._not_utf8(end + 1) from None
        finally:
            with contextlib.suppress(ValueError):  # the file was closed first
                text.detach()  # so that closing the text layer never closes stdin

    # -- JSONL -------------------------------------------------------------------------
    def _jsonl_rows(self) -> Iterator[tuple[int, Row | BadLine]]:
        for number, line in enumerate(self._text(newline=None), start=1):
            if not line.strip():
                continue
            if len(line) > fields.MAX_ROW_CHARS:
                yield number, BadLine(fields.TOO_LONG)
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                yield number, BadLine(f"not valid JSON: {exc}")
                continue
            except RecursionError:
                yield number, BadLine(TOO_DEEP)
                continue
            problem = fields.row_problem(value) if isinstance(value, dict) else None
            if problem is not None:
                yield number, BadLine(problem)
                continue
            if not isinstance(value, dict):
                yield number, BadLine("expected a JSON object per line")
                continue
            yield number, value

    # -- JSON --------------------------------------------------------------------------
    def _json_rows(self) -> Iterator[tuple[int, Row | BadLine]]:
        """The objects of one top-level array, each decoded as soon as it is complete."""
        decoder = json.JSONDecoder()
        chunks = self._chunks()
        buffer, at, line, done = "", 0, 1, False

        def more() -> bool:
            nonlocal buffer, at, done
            chunk = next(chunks, None)
            if chunk is None:
                done = True
                return False
            buffer = buffer[at:] + chunk
            at = 0
            return True

        def skip_space() -> None:
            nonlocal at, line
            while True:
                while at < len(buffer) and buffer[at] in " \t\r\n":
                    line += buffer[at] == "\n"
                    at += 1
                if at < len(buffer) or not more():
                    return

        skip_space()
        if at >= len(buffer) or buffer[at] != "[":
            raise InputError(
                f"{self.name}:{line}: expected a JSON array of objects ([{{...}}, {{...}}])"
            )
        at += 1
        expect_item = True
        while True:
            skip_space()
            if at >= len(buffer):
                raise InputError(f"{self.name}:{line}: the JSON array is not closed (missing ])")
            if buffer[at] == "]":
                return
            if not expect_item:
                if buffer[at] != ",":
                    raise InputError(f"{self.name}:{line}: not valid JSON: expected , or ]")
                at += 1
                expect_item = True
                continue
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, at)
                except RecursionError:
                    raise InputError(f"{self.name}:{line}: {TOO_DEEP}") from None
                except json.JSONDecodeError as exc:
                    if len(buffer) - at > fields.MAX_ROW_CHARS:
                        raise InputError(f"{self.name}:{line}: {fields.TOO_LONG}") from None
                    if not done and more():
                        continue  # the value goes on in the next chunk
                    raise InputError(
                        f"{self.name}:{line + buffer.count(chr(10), at, exc.pos)}: "
                        f"not valid JSON: {exc.msg}"
                    ) from None
                break
            start = line
            line += buffer.count("\n", at, end)
            at = end
            expect_item = False
            if not isinstance(value, dict):
                yield start, BadLine("expected a JSON object in the array")
            elif (problem := fields.row_problem(value)) is not None:
                yield start, BadLine(problem)
            else:
                yield start, value

    def _chunks(self) -> Iterator[str]:
        """The text in pieces of 1 MiB (a byte-order mark dropped): a REST answer is often
        one long line, so this reads by size, not by line."""
        text = io.TextIOWrapper(self.binary, encoding="utf-8-sig", newline="")
        try:
            while chunk := text.read(1 << 20):
                yield chunk
        except UnicodeDecodeError:
            raise InputError(
                f"{self.name}:{self._first_bad_line() or 1}: the file is not UTF-8 text "
                "(save or export it as UTF-8)"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                text.detach()


TOO_DEEP = fields.TOO_DEEP


@dataclass
class CsvBatch:
    """Rows of a CSV file (each a list of the header's width) with the lines they start on,
    and the lines of the same stretch that are not rows."""

    lines: list[int]
    rows: list[list[str]]
    bad: list[tuple[int, BadLine]]


def _off_width(batch: CsvBatch, width: int) -> None:
    """Move the rows of another width out of ``batch``: blank lines are dropped, the rest
    become BadLine (as :meth:`Source.rows` reads them)."""
    lines, rows = [], []
    for line, values in zip(batch.lines, batch.rows, strict=True):
        if len(values) == width:
            lines.append(line)
            rows.append(values)
        elif values and not (len(values) == 1 and not values[0].strip() and width > 1):
            reason = f"{len(values)} values, but the header has {width} columns"
            batch.bad.append((line, BadLine(reason)))
    batch.lines, batch.rows = lines, rows


def _unquoted_count(line: str, char: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def _check_header(name: str, columns: tuple[str, ...], required: tuple[str, ...]) -> None:
    problems = [
        f"{name}:1: {column}: the required column is missing (the header has: {', '.join(columns)})"
        for column in required
        if column not in columns
    ]
    seen: set[str] = set()
    for n, column in enumerate(columns, start=1):
        if not column:
            problems.append(f"{name}:1: column {n} has no name")
        elif column in seen:
            problems.append(f"{name}:1: {column}: the column appears twice")
        seen.add(column)
    if problems:
        raise InputError("\n".join(problems))


def open_rows(
    path: str | Path,
    *,
    required: tuple[str, ...] = (),
    stdin: IO[bytes] | None = None,
    rename: dict[str, str] | None = None,
) -> Source:
    """Open ``path`` for reading rows: ``.csv``, ``.jsonl`` (or ``.ndjson``), ``.json`` (an
    array of objects), or ``-`` for JSONL on stdin. Raises InputError for a missing file or
    an unknown format, and (when reading starts) for a CSV header without one of the
    ``required`` columns. ``rename`` maps a column's name in the file to the one read."""
    rename = dict(rename or {})
    if str(path) == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return Source(
            name="<stdin>",
            kind="jsonl",
            size=None,
            binary=stream,
            required=required,
            rename=rename,
            _owned=False,
        )
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        kind = "csv"
    elif suffix in (".jsonl", ".ndjson"):
        kind = "jsonl"
    elif suffix == ".json":
        kind = "json"
    else:
        raise InputError(
            f"{p}: unknown file type {suffix or '(none)'!r}: use .csv, .jsonl or .json"
        )
    try:
        binary = p.open("rb")
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read: {exc.strerror}") from None
    size = p.stat().st_size
    return Source(
        name=str(p), kind=kind, size=size, binary=binary, required=required, rename=rename
    )
