"""Dispatch: send every delivery whose time has come, and record how it went.

One lane per provider: ``delivery.concurrency`` workers share one ``httpx.AsyncClient``,
take claimed deliveries from a small local batch (claimed atomically, see
:meth:`regard.store.deliveries.Deliveries.claim`), wait for the provider's ``rate`` if it
has one, send, and record the outcome at once. A lane without a ``rate`` claims its next
batch as soon as it takes the last delivery of the one before, so the claim's round trips
run while those requests are in flight (at most one batch ahead, given back unsent when
the run stops). A stop request (``stop`` set, e.g. SIGTERM
to the daemon) ends claiming; requests in flight finish and are recorded; claimed
deliveries that were not sent yet go back to ``pending``.

The lanes never wait on SQLite themselves: every claim, outcome and release runs on one
worker thread of the dispatch, so the event loop keeps serving HTTP while the store waits
for another process's lock, and the connection's transactions stay one after the other.
Outcomes that come in while that thread is busy are recorded together, in one transaction,
as soon as it is free; the worker goes on sending meanwhile, and the dispatch ends only once
every outcome is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import httpx

from regard.campaigns.loader import campaign_files, load_campaigns
from regard.campaigns.model import Campaign
from regard.channels import CHANNELS
from regard.config import Config
from regard.delivery import claims
from regard.delivery.owners import default_owner
from regard.delivery.ratelimit import RateLimiter, parse_rate
from regard.engine import release_due
from regard.errors import RegardError
from regard.providers import Dead, Outcome, Paused, Provider, Retry, Sent, build_provider
from regard.providers.outcomes import Unknown
from regard.store import Store
from regard.store.records import Claim
from regard.store.sendtime import SendContext
from regard.times import Instant, now_instant

log = logging.getLogger("regard.delivery")

ProviderFactory = Callable[[str, Config], Provider]
"""Builds the adapter of the provider named ``[providers.NAME]``; raises RegardError or
ValueError when it cannot (its deliveries are then left pending)."""

_STOP_POLL = 0.1  # how often a wait for a rate slot looks whether the run was stopped

_P = ParamSpec("_P")
_T = TypeVar("_T")


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
    # stopped by a send-time rule at the start (regard.store.sendtime), by reason
    stopped: dict[str, int] = field(default_factory=dict)
    skipped_providers: dict[str, str] = field(default_factory=dict)  # name → why
    # providers whose account cannot send, paused for this run: name → what to fix
    paused: dict[str, str] = field(default_factory=dict)
    unconfirmed: int = 0  # outcome unknown and the service cannot tell: a person decides
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
            "stopped": dict(self.stopped),
            "skipped_providers": dict(self.skipped_providers),
            "paused_providers": dict(self.paused),
            "unconfirmed": self.unconfirmed,
            "duration": round(self.duration, 3),
        }


def configured_provider(name: str, config: Config) -> Provider:
    """The adapter of ``[providers.NAME]`` as the config sets it up (the default factory)."""
    if name not in config.providers:
        raise RegardError(f"no [providers.{name}] in the config")
    return build_provider(name, config)


def send_context(config: Config, campaigns: Iterable[Campaign]) -> SendContext:
    """What the send-time rules need to know of this run: the config's consent rule per
    channel, and each campaign by what its file is now (enabled, disabled, or broken: a
    file of the campaigns folder that did not load). Without a campaigns folder the
    campaigns are unknown, and no campaign rule applies."""
    consent = {name: str(config.consent.rule(name)) for name in CHANNELS}
    if not config.campaigns_dir.is_dir():
        return SendContext(consent, None)
    states = {path.stem: "broken" for path in campaign_files(config)}
    for campaign in campaigns:
        states[campaign.id] = "enabled" if campaign.enabled else "disabled"
    return SendContext(consent, states)


def dispatch(
    store: Store,
    config: Config,
    at: Instant,
    *,
    owner: str | None = None,
    stop: threading.Event | None = None,
    campaigns: Iterable[Campaign] | None = None,
    released: bool = False,
    provider_factory: ProviderFactory | None = None,
    batch: int | None = None,
) -> DispatchResult:
    """Send the deliveries due at ``at`` (pending with ``not_before ≤ at``, and claims of
    runs that are gone or whose lease has ended), then record each outcome.

    First, the send-time rules (:mod:`regard.store.sendtime`) stop what the world overtook
    since the tick: the contact unsubscribed or withdrew consent, the campaign was
    disabled or its file removed (``campaigns``: the loaded campaigns; read from the
    config when not given; a campaign whose file does not load holds its deliveries), the
    occasion is too late. They run again inside every claim's transaction. Then deliveries
    outside their window or over their daily limit (as stored on each) are held back.
    ``at`` is "now" for the records (``sent_at``, the next attempt time); leases use the
    real clock, since they protect against real processes. ``released``: the caller has
    just held back deliveries for these campaigns at ``at`` (a tick ends with
    ``release_due``), so it is not done twice. ``provider_factory`` builds each lane's
    adapter (default: the configured one; ``simulate`` passes one that sends nothing).
    ``batch``: how many deliveries a lane claims at a time (default: its concurrency, twice
    that on PostgreSQL, one under a ``rate``). Never raises for a failed delivery.
    """
    started = time.monotonic()
    result = DispatchResult()
    loaded = list(load_campaigns(config).campaigns if campaigns is None else campaigns)
    context = send_context(config, loaded)
    # what the world overtook since the tick (unsubscribed, consent withdrawn, campaign
    # disabled or removed, too late) goes first, so it holds back nothing below
    result.stopped = store.deliveries.stop_due(at, context)
    result.unsubscribed = result.stopped.get("unsubscribed", 0)
    if not released:
        result.deferred = release_due(store, config, loaded, at)
    run = _Dispatch(
        store, config, at, owner or default_owner(), stop or threading.Event(),
        provider_factory or configured_provider, batch, result, context,
    )  # fmt: skip
    run.all_lanes()
    result.duration = time.monotonic() - started
    return result


@dataclass(frozen=True)
class _Lane:
    name: str
    provider: Provider
    limiter: RateLimiter | None


class _Dispatch:
    def __init__(
        self,
        store: Store,
        config: Config,
        at: Instant,
        owner: str,
        stop: threading.Event,
        factory: ProviderFactory,
        batch: int | None,
        result: DispatchResult,
        context: SendContext,
    ) -> None:
        self.store = store
        self.context = context
        self.config = config
        self.settings = config.delivery
        self.at = at
        self.owner = owner
        self.stop = stop
        self.factory = factory
        self.batch = batch
        self.gone: list[str] = []  # owners of claims whose run has ended
        self.result = result
        self.db: ThreadPoolExecutor | None = None  # the one thread that talks to the store
        self.sending = 0  # requests in flight
        self.on_thread = 0  # store calls handed to the store thread, not finished yet
        self.outcomes = _Outcomes(self)
        # no attempt outlives half the lease: a claim waits for at most one attempt before
        # its own, so together they end before the lease does (lease ≥ 2 × timeout, and
        # each exchange is bounded by the timeout), and no other run takes up a claim
        # whose request is still in flight
        self.attempt_deadline = self.settings.lease.total_seconds() / 2

    def all_lanes(self) -> None:
        result = self.result
        self.gone = claims.abandoned(self.store)
        names = self.store.deliveries.due_providers(self.at, now_instant(), self.gone, self.context)
        lanes: list[_Lane] = []
        for name in names:
            try:
                provider = self.factory(name, self.config)
                rate = provider.table.rate
                limiter = RateLimiter(parse_rate(rate)) if rate else None
                lanes.append(_Lane(name, provider, limiter))
            except (RegardError, ValueError) as exc:
                # left pending: they go out once the config names the provider again
                result.skipped_providers[name] = str(exc)
                log.error("provider %s: deliveries left pending: %s", name, exc)
        if not lanes:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="regard-store") as db:
            self.db = db
            try:
                asyncio.run(self._run(lanes))
            finally:
                self.db = None

    async def _in_store(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run one store call on the dispatch's store thread and wait for it, without
        blocking the event loop."""
        return await self._on_thread(functools.partial(fn, *args, **kwargs))

    async def _claim_in_store(
        self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """A claim: like :meth:`_in_store`, but while no request is in flight and the store
        thread is idle, every worker waits for this claim and the loop has nothing else
        to serve, so it runs at once on the loop's thread, saving the hand-over (most
        claims of a simulation, and the first of every dispatch)."""
        call = functools.partial(fn, *args, **kwargs)
        if self.sending == 0 and self.on_thread == 0:
            return call()
        return await self._on_thread(call)

    async def _on_thread(self, call: Callable[[], _T]) -> _T:
        assert self.db is not None
        self.on_thread += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.db, call)
        finally:
            self.on_thread -= 1

    async def _run(self, lanes: list[_Lane]) -> None:
        concurrency = self.settings.concurrency
        limits = httpx.Limits(
            max_connections=concurrency * len(lanes), max_keepalive_connections=concurrency
        )
        timeout = httpx.Timeout(self.settings.timeout.total_seconds())
        async with httpx.AsyncClient(
            timeout=timeout, limits=limits, verify=tls_context()
        ) as client:
            try:
                await asyncio.gather(*(self._lane(lane, client) for lane in lanes))
            finally:
                # what was sent is recorded, whatever stopped the lanes
                await self.outcomes.drain()
                for lane in lanes:
                    await lane.provider.aclose()

    async def _lane(self, lane: _Lane, client: httpx.AsyncClient) -> None:
        result = self.result
        concurrency = self.settings.concurrency
        lease = int(self.settings.lease.total_seconds())
        # a rate-limited lane claims one delivery when its slot has come, and sends it at
        # once: no claim waits for its slot (where an unsubscribe or a forget would find it
        # already claimed), and no slot is waited for when nothing is left to claim
        # On PostgreSQL a claim is a transaction of several round trips to a server: a lane
        # claims twice its concurrency at a time, half the claims per delivery
        per_claim = 2 * concurrency if self.store.dialect == "postgresql" else concurrency
        batch = 1 if lane.limiter is not None else self.batch or per_claim
        ready: deque[Claim] = deque()
        exhausted = False
        paused: str | None = None  # the account cannot send: no more claims this run
        sent_here = 0  # accepted by the service in this lane
        # one look-and-claim at a time: no other worker of the lane runs between the look
        # at the local batch and the claim that refills it
        claiming = asyncio.Lock()

        def claim_now() -> list[Claim]:
            return self.store.deliveries.claim(
                provider=lane.name,
                owner=self.owner,
                at=self.at,
                now=now_instant(),
                lease_seconds=lease,
                limit=batch,
                gone=self.gone,
                context=self.context,
            )

        # the next batch, claimed while the last one is being sent (lanes without a rate):
        # the store's round trips overlap the requests instead of stalling every worker
        ahead: asyncio.Task[None] | None = None

        async def refill(in_advance: bool = False) -> None:
            nonlocal exhausted
            # ahead of time, always on the store thread: the loop goes on serving requests
            call = self._in_store if in_advance else self._claim_in_store
            got = await call(claim_now)
            result.claimed += len(got)
            result.reclaimed += sum(c.reclaimed for c in got)
            exhausted = not got
            ready.extend(got)

        async def next_claim() -> Claim | None:
            nonlocal exhausted, ahead
            async with claiming:
                self.outcomes.check()
                if self.stop.is_set() or paused is not None:
                    return None
                if not ready and ahead is not None:
                    task, ahead = ahead, None
                    await task  # the batch claimed ahead (its error is raised here)
                if not ready and not exhausted:
                    if lane.limiter is not None:
                        due = await self._claim_in_store(
                            self.store.deliveries.any_claimable,
                            provider=lane.name, at=self.at, now=now_instant(), gone=self.gone,
                            context=self.context,
                        )  # fmt: skip
                        if not due:
                            exhausted = True
                            return None
                        if not await self._pause(lane.limiter.reserve()):
                            return None
                    await refill()
                if not ready:
                    return None
                claimed = ready.popleft()
                if not ready and not exhausted and lane.limiter is None and ahead is None:
                    ahead = asyncio.get_running_loop().create_task(refill(in_advance=True))
                return claimed

        async def worker() -> None:
            nonlocal paused, sent_here
            while not self.stop.is_set():
                claimed = await next_claim()
                if claimed is None:
                    return
                outcome = await self._attempt(lane.provider, claimed, client)
                self.outcomes.record(
                    claims.Attempt(
                        claimed,
                        outcome,
                        claims.attempt_cost(claimed, lane.provider.table.cost),
                        lane.provider.retry_schedule(),
                    )
                )
                sent_here += isinstance(outcome, Sent)
                pause = outcome.reason if isinstance(outcome, Paused) else None
                if isinstance(outcome, Dead) and outcome.pause:
                    pause = outcome.pause
                if pause is not None and paused is None:
                    paused = pause
                    result.paused[lane.name] = pause
                    log.error("provider %s paused for this run: %s", lane.name, pause)

        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            await self.outcomes.drain()
            # failing since the first failure of a streak; one that sends again is not
            if paused is not None:
                await self._in_store(self.store.pauses.record, lane.name, paused, now=now_instant())
            elif sent_here:
                await self._in_store(self.store.pauses.clear, [lane.name])
        finally:
            if ahead is not None:  # a batch claimed ahead and never taken: given back below
                with contextlib.suppress(Exception):
                    await ahead
            if ready:
                result.released += await self._in_store(
                    self.store.deliveries.release,
                    [c.id for c in ready],
                    owner=self.owner,
                    at=self.at,
                )

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``, waking at once when the run is stopped; False if it was."""
        end = time.monotonic() + seconds
        while not self.stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return True
            await asyncio.sleep(min(left, _STOP_POLL))
        return False

    async def _attempt(
        self, provider: Provider, claimed: Claim, client: httpx.AsyncClient
    ) -> Outcome:
        """One attempt; whatever goes wrong in it becomes a Retry, never an exception."""
        deadline = self.attempt_deadline
        try:
            # a TypedDict is a dict at runtime; the adapters' send still types it as one
            record = claimed.record()
            self.sending += 1
            try:
                async with asyncio.timeout(deadline):
                    return await provider.attempt(
                        record, client, uncertain=claimed.uncertain,
                        since=claimed.first_attempt_at,
                    )  # fmt: skip
            finally:
                self.sending -= 1
        except TimeoutError:
            # the adapter's own deadline (delivery.timeout) did not end it: its claim must
            # not outlive the lease, so the attempt ends here
            log.warning("delivery %s: attempt ended after %gs", claimed.id, deadline)
            # the request may have reached the service: what it offers decides what is next
            return Unknown(f"timeout: the attempt took longer than {deadline:g}s")
        except Exception as exc:
            # the class only: an exception's text may carry an address or a secret
            log.warning("delivery %s: unexpected %s", claimed.id, type(exc).__name__)
            return Retry(f"unexpected error: {type(exc).__name__}")


class _Outcomes:
    """Outcomes go to the store as soon as its thread is free; those that come in while it
    records others wait and then go together, in one transaction (a group commit). The
    worker that sent one goes on with its next delivery meanwhile."""

    def __init__(self, run: _Dispatch) -> None:
        self.run = run
        self.waiting: list[claims.Attempt] = []
        self.flushing: asyncio.Task[None] | None = None
        self.error: Exception | None = None  # the store failed to record some

    def record(self, attempt: claims.Attempt) -> None:
        """Record ``attempt``'s outcome as soon as the store thread is free."""
        self.waiting.append(attempt)
        if self.flushing is None:
            self.flushing = asyncio.get_running_loop().create_task(self._flush())

    def check(self) -> None:
        """Raise the store's error, if recording failed: no new claims then."""
        if self.error is not None:
            raise self.error

    async def drain(self) -> None:
        """Wait until every outcome given so far is recorded; raise the store's error."""
        while self.flushing is not None:
            await asyncio.shield(self.flushing)
        self.check()

    async def _flush(self) -> None:
        run = self.run
        try:
            while self.waiting and self.error is None:
                batch, self.waiting = self.waiting, []
                try:
                    states = await run._in_store(
                        claims.record_outcomes, run.store, batch,
                        owner=run.owner, at=run.at, now=now_instant(), settings=run.settings,
                    )  # fmt: skip
                except Exception as exc:  # left sending: a later run takes them up
                    self.error = exc
                    return
                for attempt, state in zip(batch, states, strict=True):
                    self._count(attempt, state)
                await asyncio.sleep(0)  # let the workers just woken add theirs
        finally:
            self.flushing = None

    def _count(self, attempt: claims.Attempt, state: str | None) -> None:
        result, outcome = self.run.result, attempt.outcome
        if state == "unconfirmed":
            result.unconfirmed += 1
        elif state == "paused":
            result.released += 1
        elif isinstance(outcome, Sent):
            result.sent += state is not None
        elif isinstance(outcome, Dead):
            result.failed += state is not None
        else:
            result.retried += state == "pending"
            result.failed += state == "dead"
        if state is None:
            result.lost += 1
            log.warning(
                "delivery %s: claim taken over by another run; outcome not recorded",
                attempt.claim.id,
            )
