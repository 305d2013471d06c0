"""``simulate``: a backtest of the campaigns over a past period, on a scratch copy.

The store is copied with SQLite's backup API into a temporary file; the real store is only
read, and no provider is called: each replayed tick is the engine's own
:func:`regard.engine.tick` followed by the steps of :func:`regard.delivery.dispatch`,
with :mod:`regard.providers.simulated` standing in for every provider (each delivery is
accepted at once, at its provider's ``cost``): a provider's due deliveries are claimed and
recorded sent in one go (:meth:`~regard.store.backtest.Backtests.send_claimable`), or,
where that would not be what the claims find, through the real claims in batches.

What a replay can compute once for its whole period it does: the due occasions of most
triggers are found once per stretch of a quarter
(:class:`~regard.report.period.PeriodOccasions`). Every message
is rendered, as in a run, so a template that fails for some contacts' data is their
``render_error`` in the replay too.

Between two ticks, waiting deliveries are dispatched at the instant their window opens
(or their next day under a daily limit begins), as a daemon ticking every few minutes
would send them, so ``--every 1d`` does not starve a 9-to-6 window.

Before the replay, the scratch copy forgets the deliveries of the replayed campaigns
decided at or after ``start``, so the period is decided afresh; earlier deliveries stay
and count for caps, cooldowns and once-per-contact as they really did.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from regard.campaigns.journeys import parent_of
from regard.campaigns.model import Campaign
from regard.collecting import fewer_collections
from regard.config import Config, is_store_url
from regard.delivery import claims
from regard.delivery.dispatch import send_context
from regard.delivery.owners import default_owner
from regard.engine import release_due, tick
from regard.engine.messages import Renderer
from regard.errors import InputError
from regard.providers import Outcome, Retry, Sent
from regard.providers.simulated import simulated_provider
from regard.report.parts import default_parts, replay_in_parts, splittable
from regard.report.period import PeriodOccasions
from regard.report.text import money, table
from regard.store import Store, open_store
from regard.store.backtest import OutcomeCount, SampleRecipient
from regard.store.records import Claim
from regard.store.scratch import scratch_store
from regard.store.sendtime import SendContext
from regard.times import Instant, format_duration, iso, now_instant, to_epoch

SAMPLE_SIZE = 5
COST_DIGITS = 6  # a summed cost's decimals (below any currency's smallest unit)
MAX_OPENINGS_PER_TICK = 500  # distinct instants at which waiting deliveries fall due
# deliveries a simulated provider's claim takes at a time: no rate, no request to wait for
SIMULATED_BATCH = 500
# occasions a replayed tick decides together: a replay's ticks are small (about a thousand
# decisions on the 200k shop), and in batches of 500 the worker renders one while the
# tick records the one before (in batches of 1000, a big day's, it would mostly wait)
REPLAY_BATCH = 500
# batches of a replayed tick rendering at most while the next is decided: a campaign's
# batch is often a few dozen messages, and with one at a time the tick waited for the
# worker at every e-mail campaign (a fifth of a replay) and the worker for the tick
REPLAY_DEPTH = 3


@dataclass(frozen=True)
class Replayed:
    """What a replay (of the whole store, or of one part of its contacts) leaves to
    summarise."""

    ticks: int
    outcomes: list[OutcomeCount]
    sample: list[SampleRecipient]
    # by tick (0, 1, …): the instants dispatched at between it and the next, where any
    openings: dict[int, frozenset[Instant]]


def tick_times(start: datetime, end: datetime, every: timedelta) -> Iterator[datetime]:
    """start, start + every, … up to and including end."""
    at = start
    while at <= end:
        yield at
        at += every


def _require_store(source: Path | str) -> None:
    if is_store_url(source):
        with open_store(str(source)) as store:
            if store.is_blank():
                raise InputError(
                    f"{store.label}: nothing in the store yet, nothing to replay (import "
                    "contacts and events first: regard import contacts FILE)"
                )
    elif not Path(source).is_file():
        raise InputError(
            f"{source}: no store yet, nothing to replay (import contacts and events first: "
            "regard import contacts FILE)"
        )


def _dispatch(store: Store, config: Config, at: Instant, loaded: list[Campaign]) -> None:
    """Dispatch as a run would, every provider simulated: due deliveries are sent at ``at``.

    The very steps of :func:`regard.delivery.dispatch` and its store calls (the send-time
    rules, windows and daily limits, then each provider's claims and their outcomes
    recorded), without its concurrency: a simulated provider accepts every delivery at
    once, so there is no request to wait for and nothing to run beside it, and its due
    deliveries need no batches: they are sent in one go, as the batches would record them
    (within one transaction nothing a send-time rule reads changes between two batches,
    and daily limits were applied before the claims)."""
    context = send_context(config, loaded)
    store.deliveries.stop_due(at, context)
    release_due(store, config, loaded, at)
    gone = claims.abandoned(store)
    owner = default_owner()
    lease = int(config.delivery.lease.total_seconds())
    for name in store.deliveries.due_providers(at, now_instant(), gone, context):
        cost = simulated_provider(name, config).table.cost
        sent = store.backtests.send_claimable(
            name, owner=owner, at=at, now=now_instant(), lease_seconds=lease, context=context,
            cost=functools.partial(claims.sent_cost, cost),
        )  # fmt: skip
        if sent is None:  # something only a claim of its own reproduces: claims in batches
            sent = _claimed(store, config, name, at, owner, lease, gone, context, cost)
        if sent:
            store.pauses.clear([name])


def _claimed(
    store: Store,
    config: Config,
    name: str,
    at: Instant,
    owner: str,
    lease: int,
    gone: list[str],
    context: SendContext,
    cost: Decimal | None,
) -> int:
    """The deliveries of provider ``name`` claimed and sent in batches, through the very
    claims and outcomes of :func:`regard.delivery.dispatch`; how many were sent."""
    sent = 0
    while True:
        got = store.deliveries.claim(
            provider=name, owner=owner, at=at, now=now_instant(), lease_seconds=lease,
            limit=SIMULATED_BATCH, gone=gone, context=context,
        )  # fmt: skip
        if not got:
            break
        attempts = [claims.Attempt(c, _simulated(c), claims.attempt_cost(c, cost)) for c in got]
        states = claims.record_outcomes(
            store, attempts, owner=owner, at=at, now=now_instant(), settings=config.delivery
        )
        sent += sum(state == "sent" for state in states)
    return sent


class ReplayRenderer(Renderer):
    """Renders every message of a replay, exactly as a run does (a template that fails for
    some contacts is their ``render_error``), and keeps of each rendered one only what the
    replay's dispatch reads: its ``to`` (the send-time rules over the address) and, for an
    SMS, its ``text`` (the cost counts its segments). The render worker then sends back,
    and the scratch copy stores and reads, a few bytes per message instead of a whole
    e-mail."""

    def kept(self, campaign: Campaign) -> tuple[str, ...]:
        return ("to", "text") if campaign.channel == "sms" else ("to",)


def _simulated(claimed: Claim) -> Outcome:
    """What the simulated provider answers (:mod:`regard.providers.simulated`): accepted, unless
    the stored message cannot be read, which a dispatch retries."""
    try:
        claimed.record()
    except ValueError as exc:
        return Retry(f"unexpected error: {type(exc).__name__}")
    return Sent(None)


def simulate(
    store_target: str | Path,
    config: Config,
    campaigns: Iterable[Campaign],
    *,
    start: datetime,
    end: datetime,
    every: timedelta = timedelta(days=1),
    campaign: str | None = None,
    parts: int | None = None,
) -> dict[str, Any]:
    """Replay ticks over [start, end] on a scratch copy; what each campaign would have done.

    ``store_target``: the store (``Config.store_target``): a SQLite file (a path), or a
    PostgreSQL URL, replayed on a SQLite copy of it.

    ``campaigns``: every campaign that loaded. Without ``campaign`` the enabled ones are
    replayed; with it, that campaign alone, even when it is disabled (to see what it would
    do before switching it on).

    ``parts``: the processes the replay runs in side by side, each replaying its share of
    the contacts (:mod:`regard.report.parts`); None: as many as :func:`default_parts`
    finds worth it. One replay where the campaigns' daily limits make one contact's
    deliveries wait for another's (:func:`regard.report.parts.splittable`).
    """
    if every <= timedelta(0):
        raise ValueError("every must be longer than 0s")
    # read once: each dispatch would otherwise load the campaign files again, hundreds of
    # times per replayed tick when windows open between ticks
    loaded = list(campaigns)
    chosen: list[Campaign] = []
    for c in loaded:
        if campaign is None and c.enabled:
            chosen.append(c)
        elif c.id == campaign:
            switched_on = c.model_copy(update={"enabled": True})
            switched_on._id = c.id
            chosen.append(switched_on)
    chosen += earlier_steps(chosen, loaded)
    # dispatch sees the campaigns as replayed (one switched on is enabled for it too)
    replayed = {c.id: c for c in chosen}
    loaded = [replayed.get(c.id, c) for c in loaded]
    started = time.monotonic()
    _require_store(store_target)
    replay = functools.partial(
        _replay, config=config, chosen=chosen, loaded=loaded, start=start, end=end, every=every
    )
    days = (end - start) / timedelta(days=1)
    n = parts if parts is not None else default_parts(store_target, days)
    done = replay_in_parts(store_target, n, replay) if n > 1 and splittable(loaded) else None
    if done is not None and _openings_capped(done):
        done = None  # more openings in a tick than one replay dispatches at: as one replay
    if done is None:
        with scratch_store(store_target) as store:
            done = [replay(store)]
    outcomes, sample = merged(done)
    result = _summarise(outcomes, sample, chosen)
    ticks = done[0].ticks
    elapsed = time.monotonic() - started
    result.update(
        {
            "warnings": coarse_tick_warnings(chosen, every),
            "from": iso(start),
            "to": iso(end),
            "every": int(every.total_seconds()),
            "ticks": ticks,
            "currency": config.currency,
            "duration_seconds": round(elapsed, 3),
            "ticks_per_second": round(ticks / elapsed, 1) if elapsed > 0 else None,
            "parts": len(done),
        }
    )
    return result


def _replay(
    store: Store,
    *,
    config: Config,
    chosen: list[Campaign],
    loaded: list[Campaign],
    start: datetime,
    end: datetime,
    every: timedelta,
    between: Callable[[], None] | None = None,
) -> Replayed:
    """The ticks over [start, end] replayed on the scratch copy ``store`` (the whole store's,
    or one part's), and what they decided. ``between``: called before each tick (a part
    asks there whether it is still wanted)."""
    with fewer_collections():
        store.backtests.for_replay()
        store.backtests.forget_replayed([c.id for c in chosen], to_epoch(start))
        ticks = 0
        openings: dict[int, frozenset[Instant]] = {}
        found = PeriodOccasions(store, config, to_epoch(start), to_epoch(end))
        # the ticks' turn on the scratch copy taken once for the whole replay (nobody else
        # ticks on it), not locked and unlocked at every tick; each tick's is then nested
        with store.ticks.exclusive():
            for at in tick_times(start, end, every):
                if between is not None:
                    between()
                moment = to_epoch(at)
                # a tick and its dispatches in one transaction of the scratch copy: every
                # snapshot and write of theirs joins it (no other connection writes the copy)
                with store.write(flat=True):
                    decided = tick(store, config, chosen, moment, kind="simulate", due=found,
                                   renderer=ReplayRenderer, batch=REPLAY_BATCH,
                                   depth=REPLAY_DEPTH)  # fmt: skip
                    found.decided(chosen, decided.decisions, moment)
                    _dispatch(store, config, moment, loaded)
                    opened = _dispatch_openings(
                        store, config, chosen, loaded, moment, to_epoch(min(at + every, end))
                    )
                if opened:
                    openings[ticks] = frozenset(opened)
                ticks += 1
        outcomes, sample = _collected(store, to_epoch(start), to_epoch(end))
    return Replayed(ticks, outcomes, sample, openings)


def _collected(
    store: Store, start: Instant, end: Instant
) -> tuple[list[OutcomeCount], list[SampleRecipient]]:
    """What a replay's summary reads of its scratch copy: the deliveries decided in
    [start, end] counted, and a sample of those sent."""
    return store.backtests.outcomes(start, end), store.backtests.sample(start, end, SAMPLE_SIZE)


def merged(done: list[Replayed]) -> tuple[list[OutcomeCount], list[SampleRecipient]]:
    """The counts and the sample of the parts' replays as one replay of the whole store
    gives them (:meth:`~regard.store.backtest.Backtests.outcomes` and
    :meth:`~regard.store.backtest.Backtests.sample`, in their order): the counts of a
    campaign, week, state and reason added up, and of the parts' samples of a campaign and
    week the first sent (by instant, then id)."""
    if len(done) == 1:
        return done[0].outcomes, done[0].sample
    counts: dict[tuple[str, str, str, str], OutcomeCount] = {}
    for part in done:
        for row in part.outcomes:
            key = (row["week"], row["campaign"], row["state"], row["reason"])
            have = counts.get(key)
            if have is None:
                counts[key] = {**row}
                continue
            have["n"] += row["n"]
            if row["cost"] is not None:
                have["cost"] = (have["cost"] or 0.0) + row["cost"]
    weeks: dict[tuple[str, str], list[SampleRecipient]] = {}
    for part in done:
        for r in part.sample:
            weeks.setdefault((r["campaign"], r["week"]), []).append(r)
    sample = [
        r
        for rows in weeks.values()
        for r in sorted(rows, key=lambda r: (r["sent_at"], r["delivery_id"]))[:SAMPLE_SIZE]
    ]
    sample.sort(key=lambda r: (r["campaign"], r["sent_at"], r["contact_id"], r["delivery_id"]))
    return [counts[key] for key in sorted(counts)], sample


def _openings_capped(done: list[Replayed]) -> bool:
    """Whether the parts together met more instants to dispatch at between two ticks than
    one replay dispatches at (:data:`MAX_OPENINGS_PER_TICK`): one replay would have left
    the later ones to the next tick, so only one replay gives its results."""
    ticks = {n for part in done for n in part.openings}
    return any(
        len(frozenset().union(*(part.openings.get(n, frozenset()) for part in done)))
        >= MAX_OPENINGS_PER_TICK
        for n in ticks
    )


def earlier_steps(chosen: list[Campaign], loaded: list[Campaign]) -> list[Campaign]:
    """The enabled campaigns that the chosen follow-ups follow, up the chain, that are not
    chosen yet: replayed too, so that a follow-up follows the simulated sends of the step
    before it (a follow-up of a simulated send is simulated too)."""
    by_id = {c.id: c for c in loaded if c.enabled}
    have = {c.id for c in chosen}
    added: list[Campaign] = []
    for c in chosen:
        parent = parent_of(c)
        while parent is not None and parent in by_id and parent not in have:
            have.add(parent)
            added.append(by_id[parent])
            parent = parent_of(by_id[parent])
    return added


def coarse_tick_warnings(chosen: list[Campaign], every: timedelta) -> list[str]:
    """Campaigns whose occasions may fall between two ticks and expire there."""
    return [
        f"{c.id}: max_lateness {format_duration(c.max_lateness)} is shorter than --every "
        f"{format_duration(every)}, so occasions falling due between two ticks may expire "
        f"unsent (a daemon ticks every few minutes); use --every "
        f"{format_duration(c.max_lateness)} or less for a closer replay"
        for c in chosen
        if c.max_lateness < every
    ]


def _dispatch_openings(
    store: Store,
    config: Config,
    chosen: list[Campaign],
    loaded: list[Campaign],
    after: Instant,
    before: Instant,
) -> list[Instant]:
    """Between two ticks, dispatch again whenever a waiting delivery's time comes (its
    window opens, its next day under a daily limit begins), as a daemon ticking every few
    minutes would; else with daily ticks at midnight a 9-to-6 window would never open.
    Returns the instants it dispatched at."""
    current = after
    opened: list[Instant] = []
    for _ in range(MAX_OPENINGS_PER_TICK):
        opening = store.backtests.next_waiting(current, before)
        if opening is None:
            break
        current = opening
        opened.append(current)
        release_due(store, config, chosen, current)  # windows and daily limits at that instant
        _dispatch(store, config, current, loaded)
    return opened


def _summarise(
    outcomes: list[OutcomeCount], sample: list[SampleRecipient], chosen: list[Campaign]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in chosen:
        out[c.id] = {
            "name": c.title,
            "channel": c.channel,
            "sent": 0,
            "held_out": 0,
            "pending": 0,
            "skipped": {},
            "cost": None,
            "sample": [],
            "weeks": {},
        }
    for row in outcomes:
        entry = out.get(row["campaign"])
        if entry is None:
            continue
        week = entry["weeks"].setdefault(
            row["week"],
            {"sent": 0, "held_out": 0, "pending": 0, "skipped": {}, "cost": None, "sample": []},
        )
        state, n = row["state"], row["n"]
        if state == "skipped":
            for bucket in (entry, week):
                bucket["skipped"][row["reason"]] = bucket["skipped"].get(row["reason"], 0) + n
            continue
        key = {"sent": "sent", "held_out": "held_out"}.get(state, "pending")
        for bucket in (entry, week):
            bucket[key] += n
            if row["cost"] is not None:
                bucket["cost"] = (bucket["cost"] or 0.0) + row["cost"]
    # a sample of recipients per campaign and per week: the first few sent in each
    for r in sample:
        entry = out.get(r["campaign"])
        if entry is None:
            continue
        recipient = {
            "contact_id": r["contact_id"],
            "name": r["name"],
            "occasion": r["occasion"],
            "sent_at": iso(r["sent_at"]),
        }
        entry["weeks"][r["week"]]["sample"].append(recipient)
        if len(entry["sample"]) < SAMPLE_SIZE:
            entry["sample"].append(recipient)
    # costs are sums of floats: rounded, so that a sum does not depend on the order its
    # parts were added in (in one replay or in parts) and shows no float noise (0.15, not
    # 0.15000000000000002)
    for entry in out.values():
        for bucket in (entry, *entry["weeks"].values()):
            if bucket["cost"] is not None:
                bucket["cost"] = round(bucket["cost"], COST_DIGITS)
    return {"campaigns": out}


def simulation_lines(result: dict[str, Any], locale: str) -> list[str]:
    """The backtest as text: per campaign a line per week, then a sample of recipients."""
    currency = result["currency"]
    lines = [
        f"Simulated {result['ticks']} ticks from {result['from']} to {result['to']} "
        "on a scratch copy: nothing was sent, the store is unchanged.",
    ]
    if result.get("duration_seconds") is not None:
        speed = result.get("ticks_per_second")
        parts = result.get("parts", 1)
        how = [f"{speed:g} ticks a second"] if speed else []
        if parts > 1:
            how.append(f"in {parts} processes side by side")
        lines.append(
            f"Replayed in {result['duration_seconds']:.1f} s"
            + (f" ({', '.join(how)})." if how else ".")
        )
    if not result["campaigns"]:
        lines.append("No enabled campaigns to replay.")
    for warning in result["warnings"]:
        lines.append(f"note: {warning}")
    for cid, c in result["campaigns"].items():
        noun = "cards" if c["channel"] == "card" else "messages"
        cost = f", cost {money(c['cost'], currency, locale)}" if c["cost"] is not None else ""
        skipped = sum(c["skipped"].values())
        lines += [
            "",
            f"{cid} ({c['channel']}): {c['sent']} {noun} would have gone out, "
            f"{c['held_out']} held out, {skipped} skipped{cost}",
        ]
        if c["weeks"]:
            rows = [
                [
                    f"  week of {week}",
                    str(w["sent"]),
                    str(w["held_out"]),
                    ", ".join(f"{r} {n}" for r, n in sorted(w["skipped"].items())) or "–",
                    money(w["cost"], currency, locale) if w["cost"] is not None else "",
                ]
                for week, w in c["weeks"].items()
            ]
            lines += table(["", noun, "held out", "skipped", "cost"], rows)
        if c["pending"]:
            lines.append(f"  {c['pending']} still waiting at the end (window or daily limit)")
        for s in c["sample"]:
            lines.append(f"  e.g. {s['contact_id']} {s['name']}  {s['sent_at']}  {s['occasion']}")
    return lines
