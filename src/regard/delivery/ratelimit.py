"""A provider's optional request rate, ``rate = "10/s"`` (parsed by :func:`regard.times.parse_rate`)."""

from __future__ import annotations

import time

from regard.times import parse_rate

__all__ = ["RateLimiter", "parse_rate"]


class RateLimiter:
    """Spaces requests evenly: at most ``per_second`` of them start each second.

    Even spacing (rather than bursts) is what providers' rate limits measure, and it keeps
    a claimed delivery from waiting long for its turn. The dispatcher reserves a slot only
    when it has a delivery to claim for it, and waits for it before claiming.
    """

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = time.monotonic()

    def reserve(self) -> float:
        """Take the next free slot; returns how many seconds until it starts (0: now)."""
        now = time.monotonic()
        wait = self._next - now
        self._next = max(now, self._next) + self.interval
        return max(0.0, wait)
