"""Journeys: a campaign and the follow-ups that follow it (``[trigger] type = "followup"``),
step by step. A chain is one journey: its first step is the campaign that is no follow-up,
and every follow-up belongs to the journey of the campaign it follows.

Holdout: a follow-up starts only from a ``sent`` delivery, so a contact held out of the
first step never gets a follow-up. The first step's control group is the journey's: the
report measures the whole journey's conversion against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from regard.campaigns.model import Campaign
from regard.times import format_duration
from regard.triggers import FollowupTrigger


@dataclass(frozen=True)
class Step:
    """One campaign of a journey: what it follows (None for the first step) and after how
    long, in seconds."""

    campaign: str
    follows: str | None
    delay: int
    depth: int


@dataclass(frozen=True)
class Journey:
    """A first step and its follow-ups, in order (by depth, then id)."""

    steps: tuple[Step, ...]

    @property
    def first(self) -> str:
        return self.steps[0].campaign

    @property
    def ids(self) -> list[str]:
        return [s.campaign for s in self.steps]

    @property
    def length(self) -> int:
        """The longest path's delays, in seconds: from the first step's send to its last
        follow-up's due time."""
        total: dict[str, int] = {self.first: 0}
        for s in self.steps[1:]:
            total[s.campaign] = total[s.follows or self.first] + s.delay
        return max(total.values())

    def describe(self) -> str:
        """``winback → winback-reminder (+7d) → winback-card (+14d)``."""
        parts = [self.first]
        for before, s in zip(self.steps, self.steps[1:], strict=False):
            after = f" after {s.follows}" if before.campaign != s.follows else ""
            parts.append(f"{s.campaign} (+{format_duration(timedelta(seconds=s.delay))}{after})")
        return " → ".join(parts)

    def holdout_note(self) -> str:
        """The holdout story, in one line."""
        return (
            f"a contact held out of {self.first} gets no follow-up (it has no sent "
            f"delivery), so the journey's uplift is measured against {self.first}'s "
            "control group"
        )


def parent_of(campaign: Campaign) -> str | None:
    """The campaign a follow-up follows; None for a campaign that is no follow-up."""
    trigger = campaign.trigger
    return trigger.campaign if isinstance(trigger, FollowupTrigger) else None


def journeys(campaigns: Iterable[Campaign]) -> list[Journey]:
    """Every chain of at least two steps among ``campaigns`` (a follow-up whose campaign
    is not among them, or in a cycle, is left out), by first step."""
    by_id = {c.id: c for c in campaigns}
    children: dict[str, list[Campaign]] = {}
    for c in by_id.values():
        parent = parent_of(c)
        if parent is not None and parent in by_id:
            children.setdefault(parent, []).append(c)
    found = []
    for root in sorted(by_id):
        if parent_of(by_id[root]) is not None or root not in children:
            continue
        steps = [Step(root, None, 0, 0)]
        level, depth = [root], 0
        while level:
            depth += 1
            following = sorted((c for p in level for c in children.get(p, [])), key=lambda c: c.id)
            for c in following:
                trigger = c.trigger
                delay = (
                    int(trigger.delay.total_seconds())
                    if isinstance(trigger, FollowupTrigger)
                    else 0
                )
                steps.append(Step(c.id, parent_of(c), delay, depth))
            level = [c.id for c in following]
        found.append(Journey(tuple(steps)))
    return found
