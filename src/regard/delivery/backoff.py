"""When a delivery that failed for a passing reason is tried again.

Attempt n waits ``delivery.backoff × 2^(n−1)`` plus up to one ``backoff`` of random jitter
(so many deliveries failing together do not come back together), capped by
``delivery.max_backoff``. A provider's ``Retry-After`` wins when it asks for longer, up to
``max_backoff`` too: a service cannot park a delivery for a year (or overflow a date).

The formula is tenacity's ``wait_exponential_jitter``. Only the wait strategy is used, not
tenacity's retry loop: a delivery's attempts are persisted in the store and happen in later
runs, maybe in another process, so the loop lives in the ``deliveries`` table, not in memory.
"""

from __future__ import annotations

import math
from datetime import timedelta

from tenacity import RetryCallState, Retrying, wait_exponential_jitter

from regard.config import DeliverySettings


def retry_delay(
    attempt: int, settings: DeliverySettings, retry_after: float | None = None
) -> timedelta:
    """How long to wait after failed attempt number ``attempt`` (1 = the first attempt);
    ``retry_after``: the provider's wish in seconds from the run's instant (a Retry-After
    date already measured from it), honoured up to ``max_backoff``."""
    base = settings.backoff.total_seconds()
    cap = settings.max_backoff.total_seconds()
    strategy = wait_exponential_jitter(multiplier=base, max=cap, jitter=base)
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = max(1, attempt)
    seconds = min(strategy(state), cap)
    if retry_after is not None and math.isfinite(retry_after) and retry_after > seconds:
        seconds = min(retry_after, cap)
    # whole seconds, and never 0: a retry is never due again within the same run
    return timedelta(seconds=max(1, round(seconds)))
