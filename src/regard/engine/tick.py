"""A tick: every enabled campaign evaluated at T, in priority order, each decision recorded.

``tick`` runs alone on its store (one tick at a time) and in bounded batches: each batch
is decided in a read snapshot, rendered outside any transaction and recorded in a short
write transaction; ``plan`` (:mod:`regard.engine.journeys`) runs the very same code inside
a transaction that is rolled back. A recorded (campaign, contact, occasion) is never
revisited: due occasions that already have a row are left out, and a row recorded first
by anyone is left as it is (:meth:`regard.store.decisions.Decisions.record`).

``tick`` and ``plan`` take T as a datetime and convert it once; below them it travels as
an :class:`~regard.times.Instant`.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from regard.campaigns.loader import CampaignSet
from regard.campaigns.model import Campaign
from regard.collecting import fewer_collections
from regard.config import Config
from regard.engine.decisions import Caps, Decision, Pacing, delivery_id, exit_of, in_holdout
from regard.engine.messages import Renderer, Wanted
from regard.engine.recipients import channel_address, consent_given, mobile_only, recipient
from regard.engine.windows import next_opening, release_due
from regard.render.isolation import start
from regard.render.unsubscribe import Links, link_secret
from regard.store import Store
from regard.store.decisions import Counted
from regard.store.lifecycle import NewDelivery, message_text
from regard.store.occasions import Candidate, Started, occasion_order
from regard.times import Instant, to_epoch
from regard.triggers import Occasion, Span, due_occasions, seconds
from regard.triggers.anniversary import contact_zone


@dataclass
class TickResult:
    """What one tick at ``at`` decided, and how many due deliveries it held back."""

    at: Instant
    decisions: list[Decision] = field(default_factory=list)
    deferred: int = 0
    evaluated: int = 0  # due occasions the triggers found (recorded ones included)
    kind: str = "run"

    @property
    def counts(self) -> dict[str, int]:
        """Decisions by state: pending, held_out, skipped."""
        counts = {"pending": 0, "held_out": 0, "skipped": 0}
        for d in self.decisions:
            counts[d.decision] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary, for logs and tick records."""
        reasons: dict[str, int] = {}
        for d in self.decisions:
            if d.reason:
                reasons[d.reason] = reasons.get(d.reason, 0) + 1
        return {
            "evaluated": self.evaluated,
            **self.counts,
            "skipped_by_reason": reasons,
            "deferred": self.deferred,
        }


# what callers pass as "the campaigns": a list, a mapping by id, or a loaded CampaignSet
Campaigns = Iterable[Campaign] | Mapping[str, Campaign] | CampaignSet


def campaign_list(campaigns: Campaigns) -> list[Campaign]:
    """Campaigns from a list, a mapping by id, or a loaded set."""
    if isinstance(campaigns, CampaignSet):
        return list(campaigns.campaigns)
    if isinstance(campaigns, Mapping):
        return list(campaigns.values())
    return list(campaigns)


def in_priority_order(campaigns: Iterable[Campaign]) -> list[Campaign]:
    """Enabled campaigns, higher priority first, ties by id."""
    return sorted((c for c in campaigns if c.enabled), key=lambda c: (-c.priority, c.id))


# due occasions decided, rendered and recorded together: what a tick holds in memory, and
# how long one of its write transactions lasts (milliseconds)
BATCH = 1000
# batches rendering at most while the next one is decided (:class:`_Pipeline`): a tick's
# batches are big, and each holds its candidates and messages until it is recorded
DEPTH = 1


def tick(
    store: Store,
    config: Config,
    campaigns: Campaigns,
    at: Instant,
    *,
    kind: str = "run",
    due: DueSource | None = None,
    renderer: type[Renderer] = Renderer,
    batch: int | None = None,
    depth: int | None = None,
) -> TickResult:
    """Evaluate every enabled campaign at ``at`` and record each decision; then hold back
    what is outside its window or over its daily limit.

    One tick at a time per store (:meth:`regard.store.ticks.Ticks.exclusive`); inside,
    each batch of due occasions is decided in a read snapshot, rendered outside any
    transaction and recorded in a short write transaction of its own, so other writers
    (imports, webhooks, unsubscribes, dispatch) wait milliseconds, not the whole tick.
    ``kind`` (run, daemon, simulate) names the caller; the caller records the tick itself.
    ``due``: where the due occasions come from, ``renderer`` what renders and keeps the
    messages, ``batch`` how many are decided together and ``depth`` how many are rendering
    at most while the next is decided (:func:`run_tick`).
    """
    start()  # forked now: inside, the tick's log copier is a second thread (a worker
    # forked beside a thread must be spawned instead, a new interpreter)
    with store.ticks.exclusive():
        result = run_tick(
            store, config, campaign_list(campaigns), at, due=due, keep_messages=False,
            renderer=renderer, batch=batch, depth=depth,
        )  # fmt: skip
    result.kind = kind
    return result


@fewer_collections()
def run_tick(
    store: Store,
    config: Config,
    campaigns: list[Campaign],
    at: Instant,
    *,
    contact_ids: Sequence[str] | None = None,
    batch: int | None = None,
    due: DueSource | None = None,
    keep_messages: bool = True,
    renderer: type[Renderer] = Renderer,
    depth: int | None = None,
) -> TickResult:
    """The tick's body (shared by tick, plan and explain; inside an open transaction, as
    plan's rolled-back one, every snapshot and write joins it).

    Campaigns go in priority order; a campaign's due occasions in (due, contact, occasion)
    order, ``batch`` at a time (default :data:`BATCH`). For each batch: its candidates
    and everything their checks ask of the store (audience, consent facts, suppressions,
    exits, caps) in one read snapshot; the checks and the rendering in memory; its
    records in one write transaction. The caps of a batch count every decision of the
    tick recorded before it (rows by then) and the batch's own (:class:`Caps`).

    ``due``: where the due occasions come from (default: each trigger's query at ``at``);
    ``simulate`` passes the ones it found once for its whole period, and a ``renderer``
    that renders every message but keeps of it only what its dispatch reads, and a
    ``depth`` above 1: so many batches may be rendering while the next is decided (a
    replay's batches are small, and the render worker then never waits for the next
    request nor the tick for a batch's answers; default :data:`DEPTH`). Without
    ``keep_messages`` the decisions returned no longer carry their rendered messages
    (they are in the store): memory follows the batch, not what is due.
    """
    size = batch or BATCH
    result = TickResult(at)
    with store.ticks.snapshot():
        links = Links.of(config, link_secret(config, store))
    render = renderer(config, links)
    # the render worker renders a campaign's last batch while the next campaign's first is
    # looked up and decided (a replay's ticks have one batch per campaign): only where it
    # is asked without a thread of this process waiting for it
    across = not keep_messages and render.in_worker
    pipeline = _Pipeline(store, config, at, render, keep_messages, depth or DEPTH)
    for campaign in in_priority_order(campaigns):
        span = campaign_span(config, campaign, at, contact_ids)
        if span is None:
            continue
        waiting: list[Occasion] = []  # found, in order, not in a batch yet
        pushed = False
        for piece in [span] if due is not None else pieces(span):
            if due is not None:
                found = due(campaign, piece)
            else:
                with store.ticks.snapshot():
                    found = due_occasions(store, config, campaign.trigger, piece)
            result.evaluated += len(found)
            waiting += sorted(found, key=occasion_order)  # a later piece's are due later
            found = []
            while len(waiting) >= size:
                part, waiting = waiting[:size], waiting[size:]
                result.decisions += pipeline.push(campaign, part, wait=False)
                pushed = True
        if waiting:  # the campaign's last batch; rendered at once when it is its only one
            result.decisions += pipeline.push(campaign, waiting, wait=not across and not pushed)
        waiting = []  # decided: not held through the next campaign and release_due
        if not across:
            result.decisions += pipeline.finish()
    result.decisions += pipeline.finish()
    result.deferred = release_due(store, config, campaigns, at)
    return result


# what run_tick asks for a campaign's due occasions in its span
DueSource = Callable[[Campaign, Span], list[Occasion]]

# the longest piece of a campaign's span its trigger is asked for at once (its own query):
# a win-back switched on over a year of history finds its lapses a month at a time, and
# the first batches render while the later months are found (a trigger answers for the
# occasions due in a span: the pieces' answers, in order, are the whole span's)
PIECE = 31 * 86400


def pieces(span: Span, length: int | None = None) -> Iterator[Span]:
    """``span`` in consecutive pieces of at most ``length`` seconds (default
    :data:`PIECE`), earliest first, each asked as of the same instant."""
    step = length or PIECE
    lo = int(span.lo)
    while lo <= span.hi:
        hi = min(int(span.hi), lo + step - 1)
        yield Span(Instant(lo), Instant(hi), span.at, span.contact_ids)
        lo = hi + 1


class _Pipeline:
    """A tick's batches of due occasions in order, each looked up in a read snapshot,
    decided in memory, rendered outside any transaction and recorded in short write
    transactions (:func:`record_batch`).

    Pipelined: a batch is looked up, decided and sent to render while the batches before
    it are still rendering (at most ``depth`` of them); then the oldest one's messages are
    collected and it is recorded, while the worker renders the others. No thread of this
    process waits for the worker meanwhile (it keeps its answers until they are read): a
    thread that takes the interpreter lock between the rows of an insert would hold the
    store's write lock for seconds on a busy machine. The result is that of deciding,
    rendering and recording the batches one by one: a batch is decided before the ones
    before it are recorded, so its caps count their pending decisions as well as the rows
    of the store; when, once they are recorded, those pending decisions are not the ones
    it counted (a message of theirs came back with a ``render_error``, which no cap
    counts), or a message of its own did, the batch is decided again, with the renders
    known, before it is recorded. Without ``keep_messages`` each message comes from the
    worker as the JSON text its row stores, and the decisions returned no longer carry
    their messages.

    A batch before may be of another campaign (one before in priority order): its pending
    decisions then count toward the contact cap only, and none of its occasions is this
    campaign's."""

    def __init__(
        self,
        store: Store,
        config: Config,
        at: Instant,
        renderer: Renderer,
        keep_messages: bool,
        depth: int = 1,
    ) -> None:
        self.store, self.config, self.at = store, config, at
        self.renderer, self.keep_messages = renderer, keep_messages
        self.depth = max(depth, 1)
        # decided, their messages rendering, not recorded yet: the oldest first
        self.flight: deque[_Batch] = deque()

    def push(self, campaign: Campaign, occasions: list[Occasion], *, wait: bool) -> list[Decision]:
        """Take the next batch of ``campaign``'s due occasions; returns the decisions
        recorded meanwhile (those of batches before it). ``wait``: render it at once (no
        batch follows it in this pipeline)."""
        flight = self.flight
        batch = _Batch.of(self.store, self.config, campaign, occasions, self.at, flight)
        if batch is not None:
            batch.ahead = list(flight)
            batch.decide(self.renderer, batch.counting())
            batch.render(self.renderer, texts=not self.keep_messages, wait=wait)
            flight.append(batch)
        recorded: list[Decision] = []
        while len(flight) > self.depth:
            recorded += self._record(flight.popleft())
        return recorded

    def finish(self) -> list[Decision]:
        """Every batch still rendering settled and recorded, in order; the pipeline is
        empty again."""
        recorded: list[Decision] = []
        while self.flight:
            recorded += self._record(self.flight.popleft())
        return recorded

    def _record(self, batch: _Batch) -> list[Decision]:
        batch.settle(self.renderer)
        recorded = record_batch(
            self.store, batch.campaign, batch.finished(), self.at, self.keep_messages
        )
        # what a batch still rendering counts of it is its pending decisions: the rest goes
        batch.due, batch.wanted, batch.texts = [], [], {}
        return recorded


# what a batch's caps count of one batch before it (decided, not recorded yet): its pending
# decisions (contact id, not_before), and whether it is of the same campaign
Earlier = tuple[tuple[list[tuple[str, Instant]], bool], ...]


@dataclass
class _Batch:
    """One batch of a campaign's candidates on its way through a :class:`_Pipeline`:
    looked up, decided (counting the pending decisions of the batches before it that are
    not recorded yet, ``ahead``), its messages rendering, then settled (decided again when
    a render failed, here or ahead)."""

    config: Config
    campaign: Campaign
    at: Instant
    due: list[Candidate]
    looked_up: Lookups
    ahead: list[_Batch] = field(default_factory=list)  # decided before it, not recorded then
    earlier: Earlier = ()  # what its decisions counted of ``ahead``
    decisions: list[Decision] = field(default_factory=list)
    wanted: list[Wanted] = field(default_factory=list)
    rendering: _Rendering | None = None
    texts: dict[str, str] = field(default_factory=dict)  # the stored text, by delivery id

    @classmethod
    def of(
        cls,
        store: Store,
        config: Config,
        campaign: Campaign,
        occasions: list[Occasion],
        at: Instant,
        ahead: Iterable[_Batch],
    ) -> _Batch | None:
        """The batch's candidates and what their checks ask of the store, in one read
        snapshot (None when none is left); an occasion of a batch ``ahead`` (decided, not
        yet recorded) is left out as it would be once recorded."""
        with store.ticks.snapshot():
            due = candidates(store, config, campaign, occasions, at)
            same = [b for b in ahead if b.campaign is campaign]
            if same:
                taken = {(d.contact_id, d.occasion) for b in same for d in b.decisions}
                due = [c for c in due if (c.occasion.contact_id, c.occasion.occasion) not in taken]
            if not due:
                return None
            looked_up = Lookups.of(store, campaign, due, at=at, tz=config.timezone, config=config)
        return cls(config, campaign, at, due, looked_up)

    def pending(self) -> list[tuple[str, Instant]]:
        """The batch's pending decisions as caps count them: (contact id, not_before)."""
        return [
            (d.contact_id, d.not_before)
            for d in self.decisions
            if d.decision == "pending" and d.not_before is not None
        ]

    def counting(self) -> Earlier:
        """What this batch's caps count of the batches ``ahead`` of it (decided, not
        recorded when it was looked up): their pending decisions as they stand now."""
        return tuple((b.pending(), b.campaign is self.campaign) for b in self.ahead)

    def decide(self, renderer: Renderer, earlier: Earlier) -> None:
        """Decide the batch in order as if every render succeeds, its caps counting
        ``earlier`` (:meth:`counting`)."""
        self.earlier = earlier
        wanted = _Collecting(renderer)
        caps = self._caps()
        self.decisions = [
            decide(self.config, self.campaign, c, self.at, wanted, self.looked_up, caps)
            for c in self.due
        ]
        self.wanted = wanted.wanted

    def _caps(self) -> Caps:
        caps = Caps(self.config, self.campaign, self.at, self.looked_up.counted)
        for pending, same in self.earlier:
            for contact_id, instant in pending:
                if same:
                    caps.count(contact_id, instant)
                else:
                    caps.count_elsewhere(contact_id, instant)
        return caps

    def render(self, renderer: Renderer, *, texts: bool, wait: bool) -> None:
        """Send the batch's messages to render; ``wait``: here, for them (no batch is
        decided meanwhile), else in a thread of their own."""
        self.rendering = _Rendering(renderer, self.campaign, self.wanted, self.at, texts, wait)

    def settle(self, renderer: Renderer) -> None:
        """Wait for the batch's messages (the batches ahead of it are settled by now); when
        one did not render (``render_error``, which the caps of the contact's later
        occasions must not count), or the pending decisions ahead are not those it
        counted, decide the batch again in order with the renders known, as deciding and
        rendering one by one would."""
        assert self.rendering is not None
        answers = self.rendering.result()
        self.rendering = None
        earlier = self.counting()
        self.ahead = []  # settled: nothing ahead is needed any more
        rendered: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
        for w, (message, error) in zip(self.wanted, answers, strict=True):
            if isinstance(message, str):  # its stored text: kept apart, a placeholder here
                self.texts[w.delivery_id] = message
                message = {}
            rendered[w.delivery_id] = (message, error)
        if earlier != self.earlier or any(message is None for message, _ in rendered.values()):
            known = _Known(renderer, rendered)
            self.earlier = earlier
            caps = self._caps()
            self.decisions = [
                decide(self.config, self.campaign, c, self.at, known, self.looked_up, caps)
                for c in self.due
            ]
            return
        for d in self.decisions:
            if d.decision == "pending":
                d.message = rendered[d.delivery_id][0]

    def finished(self) -> list[tuple[Decision, str | None]]:
        """The settled decisions, each with its message as its row stores it."""
        return [(d, self._text(d)) for d in self.decisions]

    def _text(self, decision: Decision) -> str | None:
        if decision.decision != "pending":
            return None
        text = self.texts.get(decision.delivery_id)
        return text if text is not None else message_text(decision.message)


class _Rendering:
    """The messages one batch wants, being rendered: by the render worker while the tick
    goes on (their stored texts, collected when asked for), in a thread of this process
    that waits for the worker's answers (whole messages the caller keeps, as ``plan``'s,
    or a renderer with a ``render_many`` of its own), or at once."""

    def __init__(
        self,
        renderer: Renderer,
        campaign: Campaign,
        wanted: list[Wanted],
        at: Instant,
        texts: bool,
        wait: bool,
    ) -> None:
        render = renderer.render_texts if texts else renderer.render_many
        self._answers: list[tuple[Any, str | None]] = []
        self._raised: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._collect: Callable[[], list[tuple[str | None, str | None]]] | None = None
        if wait or not wanted:
            self._answers = list(render(campaign, wanted, at))
            return
        if texts and renderer.in_worker:
            # asked of the render worker now, its answers read when they are needed: no
            # thread of this process runs beside the tick's writes
            self._collect = renderer.send_texts(campaign, wanted, at)
            return

        def run() -> None:
            try:
                self._answers = list(render(campaign, wanted, at))
            except BaseException as exc:  # raised where the answers are asked for
                self._raised = exc

        start()  # forked now, while only this thread runs
        context = contextvars.copy_context()  # own_templates() holds in the thread too
        self._thread = threading.Thread(target=context.run, args=(run,), daemon=True)
        self._thread.start()

    def result(self) -> list[tuple[Any, str | None]]:
        """The answers, (message or its text, None) or (None, the template error), in order."""
        if self._collect is not None:
            self._answers, self._collect = list(self._collect()), None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._raised is not None:
            raise self._raised
        return self._answers


def record_batch(
    store: Store,
    campaign: Campaign,
    decided: list[tuple[Decision, str | None]],
    at: Instant,
    keep_messages: bool,
) -> list[Decision]:
    """A batch's decisions (each with its message's stored text) recorded in short write
    transactions (at most :data:`WRITE_BYTES` of messages each). Returns the decisions
    recorded (an occasion recorded before, by anyone, is not decided again); without
    ``keep_messages`` they no longer carry their messages."""
    pacing = Pacing.of(campaign)
    rows: list[NewDelivery] = []
    for d, text in decided:
        rows.append(d.as_delivery(campaign, pacing, text))
        if not keep_messages:
            d.message = None
    recorded: set[str] = set()
    for part in _by_size(rows):
        with store.write():
            recorded.update(store.decisions.record(part, at))
    return [d for d, _ in decided if d.delivery_id in recorded]


# the most message text one write transaction of a batch inserts: the write lock is held
# for the insert of about this much (a big day's e-mails are ~4 kB each: a batch of them,
# 4 MB, in one write of 0.1–0.3 s; each commit writes again every index page it touched)
WRITE_BYTES = 8 << 20


def _by_size(rows: list[NewDelivery]) -> Iterator[list[NewDelivery]]:
    """``rows`` in order, in parts of at most :data:`WRITE_BYTES` of message text (one row
    at least)."""
    part: list[NewDelivery] = []
    size = 0
    for row in rows:
        length = len(row.message) if isinstance(row.message, str) else 0
        if part and size + length > WRITE_BYTES:
            yield part
            part, size = [], 0
        part.append(row)
        size += length
    if part:
        yield part


class _Collecting(Renderer):
    """Notes each message a batch wants and answers "rendered" (the placeholder is
    replaced by the message once the batch's messages are rendered together)."""

    def __init__(self, renderer: Renderer) -> None:
        self.config, self.links = renderer.config, renderer.links
        self.wanted: list[Wanted] = []

    def render(
        self,
        campaign: Campaign,
        contact: Mapping[str, Any],
        occasion: Occasion,
        to: Any,
        at: Instant,
        event: Mapping[str, Any] | None = None,
        delivery_id: str = "",
    ) -> tuple[dict[str, Any] | None, str | None]:
        self.wanted.append(Wanted(contact, occasion, to, event, delivery_id))
        return {}, None


class _Known(Renderer):
    """The messages rendered already for a batch, by delivery id; any other is rendered."""

    def __init__(
        self, renderer: Renderer, known: Mapping[str, tuple[dict[str, Any] | None, str | None]]
    ) -> None:
        self.config, self.links = renderer.config, renderer.links
        self.known = known

    def render(
        self,
        campaign: Campaign,
        contact: Mapping[str, Any],
        occasion: Occasion,
        to: Any,
        at: Instant,
        event: Mapping[str, Any] | None = None,
        delivery_id: str = "",
    ) -> tuple[dict[str, Any] | None, str | None]:
        found = self.known.get(delivery_id)
        if found is not None:
            return found
        return super().render(campaign, contact, occasion, to, at, event, delivery_id)


def campaign_span(
    config: Config, campaign: Campaign, at: Instant, contact_ids: Sequence[str] | None = None
) -> Span | None:
    """``[T - max_lateness, T]`` clipped to starts_at / ends_at (whole days in the config's
    time zone, ends_at inclusive); None when nothing of it is left."""
    lo, hi = at - seconds(campaign.max_lateness), int(at)
    if campaign.starts_at is not None:
        lo = max(lo, _midnight(campaign.starts_at, config))
    if campaign.ends_at is not None:
        hi = min(hi, _midnight(campaign.ends_at + timedelta(days=1), config) - 1)
    return Span(Instant(lo), Instant(hi), at, contact_ids) if lo <= hi else None


def _midnight(day: date, config: Config) -> int:
    return to_epoch(datetime.combine(day, datetime.min.time(), tzinfo=config.tz))


def candidates(
    store: Store,
    config: Config,
    campaign: Campaign,
    occasions: list[Occasion],
    at: Instant,
    *,
    unrecorded: bool = True,
) -> list[Candidate]:
    """The due occasions joined with their contacts as of ``at``: those in the audience
    (filtered in SQL) and, with ``unrecorded``, not yet recorded, in (due, contact,
    occasion) order."""
    return store.occasions.candidates(
        campaign.id,
        occasions,
        at,
        audience=campaign.audience,
        tz=config.timezone,
        unrecorded=unrecorded,
    )


@dataclass(frozen=True)
class Lookups:
    """What the decisions of one campaign's candidates need from the store, fetched for
    all of them at once: whose address bounced, who unsubscribed from the channel (asked
    for marketing campaigns only), the triggering events, and the occasions whose
    ``[exit]`` has come (contact id, occasion)."""

    unsubscribed: frozenset[str]
    events: Mapping[str, Mapping[str, Any]]
    bounced: frozenset[str] = frozenset()
    exited: frozenset[tuple[str, str]] = frozenset()
    counted: Mapping[str, Counted] = field(default_factory=dict)  # what the caps count
    campaign_id: str = ""  # the campaign's id, read once
    # the window's next opening at the batch's instant, by the contact's stored time zone
    openings: dict[Any, Instant] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        store: Store,
        campaign: Campaign,
        due: Sequence[Candidate],
        *,
        at: Instant | None = None,
        tz: tzinfo | str = "UTC",
        config: Config | None = None,
    ) -> Lookups:
        channel = campaign.channel
        asked = [(c.occasion.contact_id, channel_address(channel, c.contact)) for c in due]
        event_ids = {c.occasion.event_id for c in due if c.occasion.event_id}
        marketing = campaign.purpose == "marketing"
        return cls(
            frozenset(store.decisions.unsubscribed(channel, asked) if marketing else ()),
            store.events.many(event_ids),
            frozenset(store.decisions.bounced(channel, asked)),
            frozenset(exited(store, campaign, due, at, tz) if at is not None else ()),
            counted(store, config, campaign, due, at) if config and at is not None else {},
            campaign.id,
        )


def counted(
    store: Store, config: Config, campaign: Campaign, due: Sequence[Candidate], at: Instant
) -> dict[str, Counted]:
    """What the caps count for the contacts of ``due`` (nothing when the campaign has no
    cap), in one query."""
    if not Caps(config, campaign, at, {}).active:
        return {}
    since = Instant(at - int(config.limits.contact_window.total_seconds()))
    return store.decisions.counted_many({c.occasion.contact_id for c in due}, campaign.id, since)


def exited(
    store: Store, campaign: Campaign, due: Sequence[Candidate], at: Instant, tz: tzinfo | str
) -> set[tuple[str, str]]:
    """The due occasions (contact id, occasion) whose contact had the campaign's ``[exit]``
    event after the occasion's start and at or before ``at``, in one query."""
    if campaign.exit is None:
        return set()
    started = [
        Started(c.occasion.contact_id, c.occasion.occasion, c.occasion.started_at)
        for c in due
        if c.occasion.started_at is not None
    ]
    return store.occasions.exited(campaign.exit.event, campaign.exit.where, started, at, tz=tz)


def decide(
    config: Config,
    campaign: Campaign,
    candidate: Candidate,
    at: Instant,
    renderer: Renderer,
    looked_up: Lookups,
    caps: Caps,
) -> Decision:
    """One due occasion through the checks, in the contract's order, in memory (what the
    store knows is in ``looked_up``); a pending decision is counted by ``caps``."""
    occasion, contact = candidate.occasion, candidate.contact
    campaign_id = looked_up.campaign_id or campaign.id
    decision = Decision(
        campaign_id,
        occasion.contact_id,
        occasion.occasion,
        occasion.due_at,
        "skipped",
        event_id=occasion.event_id,
        delivery_id=delivery_id(
            campaign_id, occasion.contact_id, occasion.occasion, occasion.due_at
        ),
        decided_at=at,
    )
    channel = campaign.channel
    if (occasion.contact_id, occasion.occasion) in looked_up.exited:
        decision.reason = "exited"  # right after the audience: the journey has ended
        return decision
    decision.exit = exit_of(campaign, occasion.started_at, config.timezone)
    try:
        to = recipient(channel, contact, mobile_only=mobile_only(config, campaign.provider))
    except LookupError:
        decision.reason = "no_address"
        return decision
    if occasion.contact_id in looked_up.bounced:
        decision.reason = "bounced"
        return decision
    if campaign.purpose == "marketing":
        if not consent_given(config, channel, contact):
            decision.reason = "no_consent"
            return decision
        if occasion.contact_id in looked_up.unsubscribed:
            decision.reason = "unsubscribed"
            return decision
    if caps.capped(occasion.contact_id):
        decision.reason = "capped"
        return decision
    if in_holdout(campaign, occasion.contact_id):
        decision.decision = "held_out"
        return decision
    event = looked_up.events.get(occasion.event_id) if occasion.event_id else None
    message, error = renderer.render(
        campaign, contact, occasion, to, at, event, delivery_id=decision.delivery_id
    )
    if message is None:
        decision.reason, decision.error = "render_error", error
        return decision
    decision.decision, decision.message = "pending", message
    zone = contact.get("timezone")
    opening = looked_up.openings.get(zone)
    if opening is None:
        tz = contact_zone(zone, config.timezone)
        opening = looked_up.openings[zone] = Instant(next_opening(campaign.window, at, tz))
    decision.not_before = opening
    caps.count(occasion.contact_id, decision.not_before)
    return decision
