"""Tables for people: a header row, aligned columns, and no cell that can forge a line.

Ids, campaign names and reasons come from files and services: a newline or a terminal
escape inside one must not start a new row or recolour the screen, so every cell is made
printable first (control characters written as ``\\n``, ``\\x1b``, …).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(value: object) -> str:
    """``value`` as one line of text: ``None`` as ``-``, control characters escaped."""
    if value is None:
        return "-"
    text = str(value)
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def columns(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """``header`` and ``rows`` as aligned lines, every column left-aligned, two spaces
    apart; the last column is not padded."""
    cells = [[printable(c) for c in header], *([printable(c) for c in row] for row in rows)]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        padded = [c + " " * (w - _width(c)) for c, w in zip(row[:-1], widths, strict=False)]
        return "  ".join([*padded, row[-1]]).rstrip()

    return [line(row) for row in cells]
