"""Dispatch: send every delivery whose time has come, and record how it went.

One lane per provider: ``delivery.concurrency`` workers share one ``httpx.AsyncClient``,
take claimed deliveries from a small local batch (claimed atomically, see
:mod:`regard.delivery.claims`), wait for the provider's ``rate`` if it has one, send, and
record the outcome at once. A stop request (``stop`` set, e.g. SIGTERM to the daemon)
ends claiming; requests in flight finish and are recorded; claimed deliveries that were not
sent yet go back to ``pending``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from regard.campaigns.loader import load_campaigns
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.delivery import claims
from regard.delivery.owners import default_owner
from regard.delivery.ratelimit import RateLimiter, parse_rate
from regard.delivery.records import delivery_record
from regard.engine import release_due
from regard.errors import RegardError
from regard.providers import Dead, Outcome, Provider, Retry, Sent, build_provider
from regard.store import Store
from regard.times import to_epoch

log = logging.getLogger("regard.delivery")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs ~0.1 s, once per tick
    otherwise (a daemon, a demo running months of ticks)."""
    return httpx.create_ssl_context()


@dataclass
class DispatchResult:
    """What one dispatch did. ``failed`` counts deliveries that became ``dead``."""

    claimed: int = 0
    reclaimed: int = 0  # claims taken up from a run that is gone or whose lease ended
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    lost: int = 0  # outcomes not recorded because another run had taken the claim over
    deferred: int = 0  # due, but held back to their window or daily limit
    unsubscribed: int = 0  # skipped: the contact unsubscribed after the tick decided
    simulated: bool = False
    skipped_providers: dict[str, str] = field(default_factory=dict)  # name → why
    duration: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "reclaimed": self.reclaimed,
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "released": self.released,
            "lost": self.lost,
            "deferred": self.deferred,
            "unsubscribed": self.unsubscribed,
            "simulated": self.simulated,
            "skipped_providers": dict(self.skipped_providers),
            "duration": round(self.duration, 3),
        }


def dispatch(
    store: Store,
    config: Config,
    at: datetime,
    *,
    owner: str | None = None,
    stop: threading.Event | None = None,
    simulate: bool = False,
    campaigns: Iterable[Campaign] | None = None,
    released: bool = False,
) -> DispatchResult:
    """Send the deliveries due at ``at`` (pending with ``not_before ≤ at``, and claims of
    runs that are gone or whose lease has ended), then record each outcome.

    First, deliveries outside their campaign's window or over its daily limit are held
    back (``campaigns``: the loaded campaigns; read from the config when not given), and
    those whose contact unsubscribed since the tick are skipped.
    ``at`` is "now" for the records (``sent_at``, the next attempt time); leases use the
    real clock, since they protect against real processes. ``simulate``: nothing is sent,
    due deliveries are marked sent at ``at``. ``released``: the caller has just held back
    deliveries for these campaigns at ``at`` (a tick ends with ``release_due``), so it is
    not done twice. Never raises for a failed delivery.
    """
    started = time.monotonic()
    result = DispatchResult(simulated=simulate)
    if not released:
        if campaigns is None:
            campaigns = load_campaigns(config).campaigns
        with store.write() as conn:
            result.deferred = release_due(conn, config, campaigns, at)
    result.unsubscribed = claims.skip_unsubscribed(store, at=to_epoch(at), now=int(time.time()))
    if simulate:
        marked = claims.mark_sent_simulated(
            store, at=to_epoch(at), now=int(time.time()), costs=config.provider_costs
        )
        result.claimed = result.sent = len(marked)
    else:
        run = _Dispatch(store, config, at, owner or default_owner(), stop or threading.Event())
        asyncio.run(run.all_lanes(result))
    result.duration = time.monotonic() - started
    return result


class _Dispatch:
    def __init__(
        self, store: Store, config: Config, at: datetime, owner: str, stop: threading.Event
    ) -> None:
        self.store = store
        self.config = config
        self.settings = config.delivery
        self.at = to_epoch(at)
        self.owner = owner
        self.stop = stop
        self.gone: list[str] = []  # owners of claims whose run has ended

    async def all_lanes(self, result: DispatchResult) -> None:
        self.gone = claims.abandoned(self.store.conn)
        names = claims.due_providers(self.store.conn, self.at, int(time.time()), self.gone)
        lanes: list[tuple[str, Provider, RateLimiter | None]] = []
        for name in names:
            try:
                table = self.config.providers.get(name)
                if table is None:
                    raise RegardError(f"no [providers.{name}] in the config")
                limiter = RateLimiter(parse_rate(table.rate)) if table.rate else None
                lanes.append((name, build_provider(name, self.config), limiter))
            except (RegardError, ValueError) as exc:
                # left pending: they go out once the config names the provider again
                result.skipped_providers[name] = str(exc)
                log.error("provider %s: deliveries left pending: %s", name, exc)
        if not lanes:
            return
        concurrency = self.settings.concurrency
        limits = httpx.Limits(
            max_connections=concurrency * len(lanes), max_keepalive_connections=concurrency
        )
        timeout = httpx.Timeout(self.settings.timeout.total_seconds())
        async with httpx.AsyncClient(
            timeout=timeout, limits=limits, verify=tls_context()
        ) as client:
            try:
                await asyncio.gather(
                    *(self._lane(n, p, lim, client, result) for n, p, lim in lanes)
                )
            finally:
                for _, provider, _ in lanes:
                    await provider.aclose()

    async def _lane(
        self,
        name: str,
        provider: Provider,
        limiter: RateLimiter | None,
        client: httpx.AsyncClient,
        result: DispatchResult,
    ) -> None:
        concurrency = self.settings.concurrency
        lease = int(self.settings.lease.total_seconds())
        batch = concurrency
        if limiter is not None:
            # never claim more than the rate lets out in a quarter of the lease
            batch = max(1, min(concurrency, int(lease / 4 / limiter.interval)))
        ready: deque[claims.Claim] = deque()
        exhausted = False

        def next_claim() -> claims.Claim | None:
            # synchronous on purpose: no other worker can run between the look and the claim
            nonlocal exhausted
            if self.stop.is_set():
                return None
            if not ready and not exhausted:
                got = claims.claim(
                    self.store,
                    provider=name,
                    owner=self.owner,
                    at=self.at,
                    now=int(time.time()),
                    lease_seconds=lease,
                    limit=batch,
                    gone=self.gone,
                )
                result.claimed += len(got)
                result.reclaimed += sum(c.reclaimed for c in got)
                exhausted = not got
                ready.extend(got)
            return ready.popleft() if ready else None

        async def worker() -> None:
            while not self.stop.is_set():
                if limiter is not None:
                    await limiter.acquire()
                claimed = next_claim()
                if claimed is None:
                    return
                outcome = await self._attempt(provider, claimed, client)
                self._record(claimed, outcome, result)

        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            if ready:
                result.released += claims.release(
                    self.store, [c.id for c in ready], owner=self.owner, at=self.at
                )

    async def _attempt(
        self, provider: Provider, claimed: claims.Claim, client: httpx.AsyncClient
    ) -> Outcome:
        """One attempt; whatever goes wrong in it becomes a Retry, never an exception."""
        try:
            return await provider.send(delivery_record(claimed.row), client)
        except Exception as exc:
            # the class only: an exception's text may carry an address or a secret
            log.warning("delivery %s: unexpected %s", claimed.id, type(exc).__name__)
            return Retry(f"unexpected error: {type(exc).__name__}")

    def _record(self, claimed: claims.Claim, outcome: Outcome, result: DispatchResult) -> None:
        common: dict[str, Any] = {"owner": self.owner, "at": self.at, "now": int(time.time())}
        provider = claimed.row["provider"]
        if isinstance(outcome, Sent):
            table = self.config.providers.get(provider)
            ok = claims.record_sent(
                self.store,
                claimed,
                message_id=outcome.message_id,
                cost=table.cost if table else None,
                **common,
            )
            result.sent += ok
        elif isinstance(outcome, Dead):
            ok = claims.record_dead(
                self.store,
                claimed,
                reason=outcome.reason,
                unsubscribe=outcome.unsubscribe,
                **common,
            )
            result.failed += ok
            if ok:
                log.warning("delivery %s via %s: dead: %s", claimed.id, provider, outcome.reason)
        else:
            state = claims.record_retry(
                self.store,
                claimed,
                reason=outcome.reason,
                retry_after=outcome.retry_after,
                settings=self.settings,
                **common,
            )
            ok = state is not None
            result.retried += state == "pending"
            result.failed += state == "dead"
            if state is not None:
                verb = "gave up" if state == "dead" else "will be retried"
                log.warning(
                    "delivery %s via %s: %s: %s", claimed.id, provider, verb, outcome.reason
                )
        if not ok:
            result.lost += 1
            log.warning(
                "delivery %s: claim taken over by another run; outcome not recorded", claimed.id
            )
