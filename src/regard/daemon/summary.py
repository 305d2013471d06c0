"""The line a tick leaves in the log, and one more per failure it met.

A tick's result (what ``regard.runner.run_once`` returns and records in ``ticks.result``)
is read for its counts: occasions evaluated, deliveries enqueued by state, sent, failed;
broken campaign files it skipped and deliveries that failed are logged one line each.
Nothing of a message's content is ever logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from regard.daemon.logs import logger
from regard.times import iso

COUNTS = ("evaluated", "sent", "retried", "failed", "released", "reclaimed")


def tick_facts(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The counts of a tick result (``failed``: became dead), ``enqueued`` keyed by state."""
    result = result or {}
    facts: dict[str, Any] = {name: int(result.get(name) or 0) for name in COUNTS}
    enqueued = result.get("enqueued") or {}
    facts["enqueued"] = (
        {str(k): int(v) for k, v in enqueued.items() if v} if isinstance(enqueued, Mapping) else {}
    )
    return facts


def tick_text(at: datetime, facts: Mapping[str, Any], duration: float) -> str:
    """``tick …: evaluated 40, enqueued 3 pending, 1 skipped; sent 3, to retry 1, failed 0``."""
    enqueued = ", ".join(f"{n} {state}" for state, n in sorted(facts["enqueued"].items()))
    text = (
        f"tick {iso(at)}: evaluated {facts['evaluated']}, enqueued {enqueued or 'none'}; "
        f"sent {facts['sent']}, to retry {facts['retried']}, failed {facts['failed']}"
    )
    if facts["released"]:
        text += f", released {facts['released']}"
    if facts["reclaimed"]:
        text += f", {facts['reclaimed']} taken up after a crash"
    return f"{text} ({duration:.2f}s)"


def log_tick(at: datetime, result: Mapping[str, Any] | None, duration: float) -> None:
    """Log one line for the tick at ``at``, and one per broken campaign file it skipped
    (failed deliveries and skipped providers are logged by dispatch as they happen)."""
    facts = tick_facts(result)
    level = logging.WARNING if facts["failed"] else logging.INFO
    logger.log(
        level,
        "%s",
        tick_text(at, facts, duration),
        extra={"event": "tick", "at": iso(at), "duration": round(duration, 3), **facts},
    )
    for problem in (result or {}).get("campaign_errors") or ():
        logger.error(
            "campaign skipped, the others ran: %s",
            problem,
            extra={"event": "campaign_skipped", "at": iso(at)},
        )
