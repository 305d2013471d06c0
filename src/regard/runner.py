"""One run: evaluate every campaign at T (a tick), then dispatch what is due.

``regard run`` calls :func:`run_once` once; the daemon calls it every interval. Each run is
recorded as a ``ticks`` row (inserted when it starts, completed when it ends, so a run that
was killed shows up as one without ``finished_at``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from regard.campaigns.loader import load_campaigns
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.delivery import DispatchResult, dispatch
from regard.delivery.claims import abandoned
from regard.delivery.dispatch import send_context
from regard.engine import tick
from regard.store import Store
from regard.store.sendtime import NO_CONTEXT, SendContext
from regard.times import Instant, iso, now_instant


@dataclass
class RunResult:
    """What one run did: the tick's decisions, then the dispatch."""

    kind: str
    at: Instant
    evaluated: int = 0
    enqueued: dict[str, int] = field(default_factory=dict)  # new deliveries by state
    dispatch: DispatchResult = field(default_factory=DispatchResult)
    campaign_errors: list[str] = field(default_factory=list)  # broken files, skipped
    due: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would be sent
    decisions: list[dict[str, Any]] = field(default_factory=list)  # dry run: the tick's
    deferred: int = 0  # pending deliveries the tick held back to their window or daily limit
    waiting: int = 0  # pending after the run, due later (window, daily limit, next attempt)
    dry_run: bool = False
    duration: float = 0.0
    tick_id: int | None = None
    # templates that did not render: their occasions were skipped, the message never sent
    render_errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Deliveries that became dead in this run."""
        return self.dispatch.failed

    def as_dict(self) -> dict[str, Any]:
        """The JSON summary (``ticks.result`` and ``regard run --json``)."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "at": iso(self.at),
            "dry_run": self.dry_run,
            "evaluated": self.evaluated,
            "enqueued": dict(self.enqueued),
            "sent": self.dispatch.sent,
            "failed": self.dispatch.failed,
            "retried": self.dispatch.retried,
            "released": self.dispatch.released,
            "reclaimed": self.dispatch.reclaimed,
            "deferred": self.deferred + self.dispatch.deferred,
            "waiting": self.waiting,
            "unsubscribed": self.dispatch.unsubscribed,
            "stopped": dict(self.dispatch.stopped),
            "campaign_errors": list(self.campaign_errors),
            "duration": round(self.duration, 3),
        }
        if self.dispatch.skipped_providers:
            data["skipped_providers"] = dict(self.dispatch.skipped_providers)
        if self.dispatch.paused:
            data["paused_providers"] = dict(self.dispatch.paused)
        if self.dispatch.unconfirmed:
            data["unconfirmed"] = self.dispatch.unconfirmed
        if self.dry_run:
            data["decisions"] = list(self.decisions)
            data["would_dispatch"] = list(self.due)
        return data


def run_once(
    store: Store,
    config: Config,
    at: Instant,
    *,
    kind: str = "run",
    dry_run: bool = False,
    stop: threading.Event | None = None,
) -> RunResult:
    """Tick at ``at`` (every campaign evaluated, decisions recorded), then dispatch.

    Campaign files are read afresh; a broken one is reported in ``campaign_errors`` and
    skipped while the others run. ``dry_run``: the same tick in a transaction that is
    rolled back, and the list of what would be dispatched; nothing is written or sent.
    ``stop`` (set by the daemon on SIGTERM) ends dispatch early, as
    :func:`regard.delivery.dispatch` describes.
    """
    started = time.monotonic()
    result = RunResult(kind="dry-run" if dry_run else kind, at=at, dry_run=dry_run)
    loaded = load_campaigns(config)
    result.campaign_errors = list(loaded.errors)
    if dry_run:
        with store.rolled_back():
            _tick(store, config, loaded.campaigns, at, result)
            result.due = due_deliveries(store, at, send_context(config, loaded.campaigns))
        result.duration = time.monotonic() - started
        return result
    store.contacts.use_rates(config.currencies)  # a daemon sees a changed [currencies]
    tick_id = result.tick_id = store.ticks.start(result.kind, at)
    try:
        # one tick evaluates at a time on a store (engine.tick holds Ticks.exclusive:
        # a lock file on SQLite, an advisory lock on PostgreSQL, however many daemons and
        # runs); dispatch, after it, is shared across them by the claims
        _tick(store, config, loaded.campaigns, at, result)
        # the tick has just held back what is outside its window or over a daily limit
        result.dispatch = dispatch(
            store, config, at, stop=stop, campaigns=loaded.campaigns, released=True
        )
        result.waiting = store.deliveries.waiting(at)
    finally:
        result.duration = time.monotonic() - started
        store.ticks.finish(tick_id, result.as_dict())
    return result


def _tick(
    store: Store, config: Config, campaigns: list[Campaign], at: Instant, result: RunResult
) -> None:
    outcome = tick(store, config, campaigns, at, kind=result.kind)
    result.evaluated = outcome.evaluated
    result.enqueued = outcome.counts
    result.deferred = outcome.deferred
    result.render_errors = sorted(
        {d.error for d in outcome.decisions if d.reason == "render_error" and d.error}
    )
    if result.dry_run:
        result.decisions = [d.as_json() for d in outcome.decisions]


def due_deliveries(
    store: Store, at: Instant, context: SendContext = NO_CONTEXT
) -> list[dict[str, Any]]:
    """What a dispatch at ``at`` would send now: id, campaign, contact, provider, due time
    (not what a send-time rule would stop, under ``context``)."""
    return [
        {
            "delivery_id": d["id"],
            "campaign": d["campaign"],
            "contact_id": d["contact_id"],
            "occasion": d["occasion"],
            "channel": d["channel"],
            "provider": d["provider"],
            "due_at": iso(d["due_at"]),
            "attempts": d["attempts"],
        }
        for d in store.deliveries.due(at, now_instant(), abandoned(store), context)
    ]
