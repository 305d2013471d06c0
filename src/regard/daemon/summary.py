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

COUNTS = ("evaluated", "sent", "failed", "dead")


def tick_facts(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The counts of a tick result, with ``enqueued`` as an object keyed by state."""
    result = result or {}
    facts: dict[str, Any] = {name: int(result.get(name) or 0) for name in COUNTS}
    enqueued = result.get("enqueued") or {}
    facts["enqueued"] = (
        {str(k): int(v) for k, v in enqueued.items() if v} if isinstance(enqueued, Mapping) else {}
    )
    return facts


def tick_text(at: datetime, facts: Mapping[str, Any], duration: float) -> str:
    enqueued = ", ".join(f"{n} {state}" for state, n in sorted(facts["enqueued"].items()))
    text = (
        f"tick {iso(at)}: evaluated {facts['evaluated']}, "
        f"enqueued {enqueued or 'none'}; sent {facts['sent']}, failed {facts['failed']}"
    )
    if facts["dead"]:
        text += f", dead {facts['dead']}"
    return f"{text} ({duration:.2f}s)"


def log_tick(at: datetime, result: Mapping[str, Any] | None, duration: float) -> None:
    """Log one line for the tick at ``at`` and one per problem or failure it reports."""
    facts = tick_facts(result)
    level = logging.WARNING if facts["failed"] or facts["dead"] else logging.INFO
    logger.log(
        level,
        "%s",
        tick_text(at, facts, duration),
        extra={"event": "tick", "at": iso(at), "duration": round(duration, 3), **facts},
    )
    result = result or {}
    for problem in result.get("problems") or ():
        logger.error(
            "skipped a broken campaign, the others ran: %s",
            problem,
            extra={"event": "campaign_skipped", "at": iso(at)},
        )
    for failure in result.get("failures") or ():
        _log_failure(at, failure)


def _log_failure(at: datetime, failure: Mapping[str, Any]) -> None:
    # only ids and the provider's answer: never the address or the message
    fields = {k: failure.get(k) for k in ("delivery_id", "campaign", "provider", "state", "reason")}
    logger.warning(
        "delivery %s (%s via %s) %s: %s",
        fields["delivery_id"],
        fields["campaign"],
        fields["provider"],
        "is dead" if fields["state"] == "dead" else "will be retried",
        fields["reason"],
        extra={"event": "delivery_failed", "at": iso(at), **fields},
    )
