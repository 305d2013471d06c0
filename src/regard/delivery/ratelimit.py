"""A provider's optional request rate, ``rate = "10/s"`` (or ``"/m"``, ``"/h"``)."""

from __future__ import annotations

import asyncio
import re
import time

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*$")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: str) -> float:
    """``"10/s"`` → 10.0 requests per second; ``"30/m"`` → 0.5. Raises ValueError."""
    m = _RATE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(
            f'{text!r} is not a rate: a positive number of requests per s, m or h, like "10/s"'
        )
    return float(m.group(1)) / _PER[m.group(2)]


class RateLimiter:
    """Spaces requests evenly: at most ``per_second`` of them start each second.

    Even spacing (rather than bursts) is what providers' rate limits measure, and it keeps
    a claimed delivery from waiting long for its turn.
    """

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for the next free slot."""
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)
