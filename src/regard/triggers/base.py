"""The contract every trigger type keeps, and the registry that finds them by ``type``.

A trigger type is a model of its ``[trigger]`` table (a :class:`Trigger` subclass whose
``type`` is a ``Literal`` of its one name) with its behaviour as methods: which occasions
fall due in a span (``due``), how it is described, why it finds nothing, and which event a
sample message is rendered with. Defining the class registers it; the campaign model's
``trigger`` accepts every registered type.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, get_args, get_origin

from regard.config import Config
from regard.store import Store
from regard.store.occasions import Occasion, occasion_order
from regard.times import Instant
from regard.validation import StrictModel

__all__ = [
    "Occasion",
    "Problem",
    "Span",
    "Trigger",
    "due_occasions",
    "seconds",
    "trigger_class",
    "trigger_types",
]

# a problem of a raw ``[trigger]`` table: (key path inside the table, reason)
Problem = tuple[tuple[str, ...], str]


@dataclass(frozen=True)
class Span:
    """The question put to a trigger: occasions due in ``[lo, hi]`` as the store was at ``at``,
    optionally only for ``contact_ids``."""

    lo: Instant
    hi: Instant
    at: Instant
    contact_ids: Sequence[str] | None = None


def seconds(delta: timedelta) -> int:
    """A duration as whole seconds."""
    return int(delta.total_seconds())


_REGISTRY: dict[str, type[Trigger]] = {}


class Trigger(StrictModel):
    """One ``[trigger]`` table. Subclasses narrow ``type`` to ``Literal["<name>"]`` (what
    users write) and implement the methods below."""

    type: str

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        annotation = cls.model_fields["type"].annotation
        if get_origin(annotation) is not Literal:
            return  # an abstract intermediate class
        (kind,) = get_args(annotation)
        if kind in _REGISTRY and _REGISTRY[kind] is not cls:
            raise TypeError(
                f"two trigger types claim type {kind!r}: "
                f"{_REGISTRY[kind].__qualname__} and {cls.__qualname__}"
            )
        _REGISTRY[kind] = cls

    @abstractmethod
    def due(self, store: Store, config: Config, span: Span) -> list[Occasion]:
        """The occasions due in ``[span.lo, span.hi]`` as the store was at ``span.at`` (in
        any order): a set-based, indexed query of ``store.occasions`` whose cost follows
        the occasions in the span, not the size of the store."""

    @abstractmethod
    def describe(self) -> str:
        """A short human description: ``post_purchase +2d (#1)``."""

    @abstractmethod
    def no_occasion(self) -> str:
        """Why the trigger finds no occasion at all for a contact, in its own words (what
        ``preview --explain`` says)."""

    def sample_event_type(self) -> str | None:
        """The type of the event a message of this trigger is rendered with (None: the
        trigger has no event), for ``check``'s sample renders."""
        return None

    @classmethod
    def problems(cls, raw: Mapping[str, Any]) -> list[Problem]:
        """What the model cannot know about a raw ``[trigger]`` table of this type, listed
        even when the model rejects it too (none by default)."""
        return []


def trigger_types() -> tuple[type[Trigger], ...]:
    """Every registered trigger type, in registration order."""
    return tuple(_REGISTRY.values())


def trigger_class(kind: str) -> type[Trigger]:
    """The trigger type registered as ``kind``; raises KeyError for an unknown one."""
    return _REGISTRY[kind]


def due_occasions(store: Store, config: Config, trigger: Trigger, span: Span) -> list[Occasion]:
    """The occasions of ``trigger`` due in the span, sorted by due instant, contact, key."""
    return sorted(trigger.due(store, config, span), key=occasion_order)
