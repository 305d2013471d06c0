"""The due occasions of a replay found once per stretch of its period rather than once per
tick (:class:`PeriodOccasions`), where that gives exactly what each tick's own query would:
``simulate`` (:mod:`regard.report.simulate`) hands them to each replayed tick."""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable
from datetime import timedelta

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.engine.decisions import Decision
from regard.store import Store
from regard.store.occasions import Activity
from regard.times import Instant, iso
from regard.triggers import (
    AnniversaryTrigger,
    EventTrigger,
    InactivityTrigger,
    MilestoneTrigger,
    Occasion,
    PostPurchaseTrigger,
    Span,
    Trigger,
    due_occasions,
    seconds,
)

STRETCH = 92 * 86400  # the ticks whose occasions one query finds at once (a quarter)
VOIDED_BATCH = 500  # contacts with a voided event asked apart per tick, per query
VOIDED_MAX = 5000  # more than that: the trigger asks its own query per tick


class PeriodOccasions:
    """The due occasions of a replay, found once per stretch of the period rather than
    once per tick, where that gives exactly what each tick's own query would:

    - events (``event`` and ``post_purchase`` without ``nth``) are read once for the ticks
      of a stretch of :data:`STRETCH` with when they were voided, and each tick takes those
      due in its span that had occurred and were not voided by its instant;
    - anniversaries of a date that does not change with T (``birthday``, attributes) are
      computed once for the stretch;
    - what depends on T only through voided events (``nth`` events, milestones,
      ``signup_at``/``first_order_at`` anniversaries) is computed once for the stretch for
      the contacts none of whose events of the types it counts was ever voided; the few
      contacts with a voided one are asked each tick, by the trigger's own query;
    - lapses (``inactivity`` with ``min_events`` ≥ 1) are read once per stretch as each
      contact's instants of activity with the next one after it: a tick takes those in its
      span that nothing followed by its instant (contacts with a voided event: as above).

    Follow-ups (of the replay's own sends) and ``min_events = 0`` ask their own query per
    tick.

    An occasion the replay has recorded is never decided again (the tick's candidates
    leave it out): each tick's recorded decisions are told to :meth:`decided`, and the
    occasions found are handed on without them, so a campaign with a long
    ``max_lateness`` does not join the same recorded occasions with their contacts tick
    after tick. Memory: one stretch of each campaign, and the occasions recorded within
    each campaign's ``max_lateness`` (older ones cannot be due again)."""

    def __init__(
        self, store: Store, config: Config, start: Instant, end: Instant | None = None
    ) -> None:
        # ``end``: the last tick's instant, if known (a stretch reaches no further)
        self.store, self.config, self.start, self.end = store, config, start, end
        self._stretch: dict[str, tuple[int, list[tuple[Occasion, Instant | None]]]] = {}
        self._lapses: dict[str, tuple[int, list[Activity]]] = {}
        self._voided: dict[tuple[str, ...], frozenset[str] | None] = {}
        # per campaign: the (contact, occasion) recorded, the same as (contact, due) (a
        # lapse's occasion is its due instant's), and a heap of (due, contact, occasion)
        # to forget them once no later span reaches their due instant
        self._done: dict[str, set[tuple[str, str]]] = {}
        self._dues: dict[str, set[tuple[str, Instant]]] = {}
        self._done_by_due: dict[str, list[tuple[Instant, str, str]]] = {}
        self.queries = 0

    def decided(
        self, campaigns: Iterable[Campaign], decisions: Iterable[Decision], at: Instant
    ) -> None:
        """Note the decisions a tick at ``at`` recorded; forget those no tick after ``at``
        can find due (their due instant before its span)."""
        for d in decisions:
            self._done.setdefault(d.campaign, set()).add((d.contact_id, d.occasion))
            self._dues.setdefault(d.campaign, set()).add((d.contact_id, d.due_at))
            heapq.heappush(
                self._done_by_due.setdefault(d.campaign, []), (d.due_at, d.contact_id, d.occasion)
            )
        for c in campaigns:
            heap = self._done_by_due.get(c.id)
            if not heap:
                continue
            done, dues = self._done[c.id], self._dues[c.id]
            lo = at - seconds(c.max_lateness)
            while heap and heap[0][0] < lo:
                due_at, contact_id, occasion = heapq.heappop(heap)
                done.discard((contact_id, occasion))
                dues.discard((contact_id, due_at))

    def __call__(self, campaign: Campaign, span: Span) -> list[Occasion]:
        due = self._due(campaign, span)
        done = self._done.get(campaign.id)
        if not done:
            return due
        return [o for o in due if (o.contact_id, o.occasion) not in done]

    def _due(self, campaign: Campaign, span: Span) -> list[Occasion]:
        trigger = campaign.trigger
        kind = _once_kind(trigger)
        voided: frozenset[str] | None = frozenset()
        if kind in ("stable", "lapse"):
            voided = self.voided(_counted_types(trigger))
        if kind is None or voided is None or span.contact_ids is not None:
            self.queries += 1
            return due_occasions(self.store, self.config, trigger, span)
        index = max(0, (span.at - self.start) // STRETCH)
        due = (
            self._lapsed(campaign, index, span, voided)
            if kind == "lapse"
            else self._in_stretch(campaign, kind, index, span, voided)
        )
        ids = sorted(voided)
        for first in range(0, len(ids), VOIDED_BATCH):
            self.queries += 1
            asked = Span(span.lo, span.hi, span.at, ids[first : first + VOIDED_BATCH])
            due += trigger.due(self.store, self.config, asked)
        return due

    def voided(self, types: tuple[str, ...]) -> frozenset[str] | None:
        """The contacts with a voided event of ``types`` (None: too many to ask apart)."""
        if types not in self._voided:
            self.queries += 1
            found = self.store.occasions.voided_contacts(types)
            self._voided[types] = frozenset(found) if len(found) <= VOIDED_MAX else None
        return self._voided[types]

    def _in_stretch(
        self, campaign: Campaign, kind: str, index: int, span: Span, voided: frozenset[str]
    ) -> list[Occasion]:
        held = self._stretch.get(campaign.id)
        if held is None or held[0] != index:
            held = (index, self._found(campaign, index, voided))
            self._stretch[campaign.id] = held
        found = held[1]
        first = bisect.bisect_left(found, span.lo, key=lambda o: o[0].due_at)
        due: list[Occasion] = []
        for occasion, voided_at in found[first:]:
            if occasion.due_at > span.hi:
                break
            if kind == "event":
                occurred = occasion.started_at
                if occurred is None or occurred > span.at:
                    continue
                if voided_at is not None and voided_at <= span.at:
                    continue
            due.append(occasion)
        return due

    def _bounds(self, campaign: Campaign, index: int) -> tuple[Instant, Instant, Instant]:
        """The first and last instant a tick of stretch ``index`` may ask for, and the
        stretch's last instant."""
        first_at = self.start + index * STRETCH
        last_at = first_at + STRETCH - 1
        if self.end is not None:
            last_at = min(last_at, self.end)
        return (
            Instant(first_at - seconds(campaign.max_lateness)),
            Instant(last_at),
            Instant(last_at),
        )

    def _found(
        self, campaign: Campaign, index: int, voided: frozenset[str]
    ) -> list[tuple[Occasion, Instant | None]]:
        """Every occasion the ticks of stretch ``index`` can find, by due instant."""
        self.queries += 1
        lo, hi, last_at = self._bounds(campaign, index)
        trigger = campaign.trigger
        found: list[tuple[Occasion, Instant | None]]
        if isinstance(trigger, EventTrigger | PostPurchaseTrigger) and trigger.nth is None:
            wait = seconds(trigger.delay)
            first_at = self.start + index * STRETCH
            seen = self.store.occasions.events_over(
                trigger.event, Instant(lo - wait), Instant(hi - wait), Instant(first_at),
                where=trigger.where, tz=self.config.timezone,
            )  # fmt: skip
            found = [
                (Occasion(Instant(e.occurred_at + wait), e.contact_id, e.event_id,
                          e.event_id, started_at=e.occurred_at), e.voided_at)
                for e in seen
            ]  # fmt: skip
        else:
            span = Span(lo, hi, last_at)
            found = [
                (o, None)
                for o in trigger.due(self.store, self.config, span)
                if o.contact_id not in voided
            ]
        found.sort(key=lambda pair: pair[0])
        return found

    def _lapsed(
        self, campaign: Campaign, index: int, span: Span, voided: frozenset[str]
    ) -> list[Occasion]:
        """The lapses due in ``span`` of the contacts without a voided event."""
        trigger = campaign.trigger
        assert isinstance(trigger, InactivityTrigger)
        after = seconds(trigger.after)
        held = self._lapses.get(campaign.id)
        if held is None or held[0] != index:
            self.queries += 1
            lo, hi, _ = self._bounds(campaign, index)
            seen = self.store.occasions.activities_over(
                trigger.events, Instant(lo - after), Instant(hi - after),
                counted=trigger.min_events > 1,
            )  # fmt: skip
            held = (index, [a for a in seen if a.contact_id not in voided])
            self._lapses[campaign.id] = held
        rows = held[1]
        since, until = span.lo - after, min(span.hi - after, span.at)
        first = bisect.bisect_left(rows, since, key=lambda a: a.at)
        recorded = self._dues.get(campaign.id, set())  # by due instant: no occasion to make
        due: list[Occasion] = []
        for a in rows[first:]:
            if a.at > until:
                break
            if (a.contact_id, a.at + after) in recorded:
                continue
            if a.next_at is not None and a.next_at <= span.at:
                continue  # active again by T: not the last activity
            if trigger.min_events > 1 and a.events < trigger.min_events:
                continue
            due.append(Occasion(Instant(a.at + after), a.contact_id, f"since:{iso(a.at)}",
                                a.event_id))  # fmt: skip
        return due


def _once_kind(trigger: Trigger) -> str | None:
    """How :class:`PeriodOccasions` finds the trigger's occasions: "event", "dated",
    "stable", "lapse", or None (its own query per tick)."""
    if isinstance(trigger, EventTrigger | PostPurchaseTrigger):
        return "event" if trigger.nth is None else "stable"
    if isinstance(trigger, AnniversaryTrigger):
        if trigger.field not in ("signup_at", "first_order_at"):
            return "dated"
        # an n ≥ 1 anniversary falls at least 364 days after the date: with an offset
        # above -364 days it is never due before the date itself, so a date that had not
        # come by T (an order not placed yet) cannot make an occasion due by T
        return "stable" if trigger.offset > -timedelta(days=364) else None
    if isinstance(trigger, MilestoneTrigger):
        return "stable"
    if isinstance(trigger, InactivityTrigger) and trigger.min_events >= 1:
        return "lapse"
    return None


def _counted_types(trigger: Trigger) -> tuple[str, ...]:
    """The event types whose voiding changes what the trigger finds at T."""
    if isinstance(trigger, EventTrigger | PostPurchaseTrigger):
        return (trigger.event,)
    if isinstance(trigger, InactivityTrigger):
        return tuple(trigger.events)
    if isinstance(trigger, AnniversaryTrigger):
        return ("order",) if trigger.field == "first_order_at" else ()
    return ("order",)  # milestones
