"""A provider's optional request rate, ``rate = "10/s"`` (parsed by :func:`regard.times.parse_rate`)."""

from __future__ import annotations

import asyncio
import time

from regard.times import parse_rate

__all__ = ["RateLimiter", "parse_rate"]


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
