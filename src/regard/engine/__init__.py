"""The trigger engine: at an instant T, what is due, for whom, and what to do about it.

``tick`` records every decision; ``plan`` runs the same tick and rolls it back;
``explain`` says what a tick would do for one contact; ``release_due`` holds pending
deliveries to their windows and daily limits.
"""

from regard.engine.decisions import Decision, delivery_id, holdout_share, in_holdout
from regard.engine.explain import Explanation, explain
from regard.engine.journeys import plan
from regard.engine.tick import TickResult, tick
from regard.engine.windows import next_opening, release_due

__all__ = [
    "Decision",
    "Explanation",
    "TickResult",
    "delivery_id",
    "explain",
    "holdout_share",
    "in_holdout",
    "next_opening",
    "plan",
    "release_due",
    "tick",
]
