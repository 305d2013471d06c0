"""What is due: one module per trigger type, each its model and a set-based, indexed query.

Every trigger answers the same question: which occasions of this campaign fall due in
``[lo, hi]``, as the store looked at instant ``at`` (events that occurred after ``at`` do
not exist yet). A tick asks for ``[T - max_lateness, T]`` at ``T``; ``explain`` asks for a
wider span to say when an occasion was or will be due. The cost of a query follows the
number of occasions in the span, not the size of the store.

A new trigger type is one module here (its :class:`Trigger` subclass, registered by being
defined) and its query in :mod:`regard.store.occasions`, plus its import below. The order
of the imports is the order the types are listed in (errors name them in it).
"""

from regard.triggers.base import (
    Occasion,
    Problem,
    Span,
    Trigger,
    due_occasions,
    seconds,
    trigger_class,
    trigger_types,
)

# isort: split
from regard.triggers.event import EventTrigger, PostPurchaseTrigger

# isort: split
from regard.triggers.inactivity import InactivityTrigger

# isort: split
from regard.triggers.anniversary import AnniversaryTrigger

# isort: split
from regard.triggers.milestone import MilestoneTrigger

# isort: split
from regard.triggers.followup import FollowupTrigger

__all__ = [
    "AnniversaryTrigger",
    "EventTrigger",
    "FollowupTrigger",
    "InactivityTrigger",
    "MilestoneTrigger",
    "Occasion",
    "PostPurchaseTrigger",
    "Problem",
    "Span",
    "Trigger",
    "due_occasions",
    "seconds",
    "trigger_class",
    "trigger_types",
]
