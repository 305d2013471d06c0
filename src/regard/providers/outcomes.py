"""What one attempt to deliver came to: the outcomes an adapter answers with
(:class:`regard.providers.base.Provider`), what a service offers when an outcome is unknown,
and the error a record that cannot become a request raises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Sent:
    """The provider accepted the message; ``message_id`` is its own id for it, if any."""

    message_id: str | None = None


@dataclass(frozen=True)
class Retry:
    """A transient failure: try again, not before ``retry_after`` seconds after the run's
    instant, or not before the instant ``retry_at`` (UTC epoch seconds, a Retry-After HTTP
    date), if the provider said. Dispatch caps either by ``delivery.max_backoff``."""

    reason: str
    retry_after: float | None = None
    retry_at: float | None = None


@dataclass(frozen=True)
class Dead:
    """A permanent failure. ``unsubscribe``: the provider says this address must not be used
    again (bounced, inactive, replied STOP); regard records a suppression for it. ``pause``:
    the answer also says the endpoint itself is unusable (a webhook's 410 Gone, 401, 403):
    the delivery is dead as the contract wants, and the provider is paused for the rest of
    the run, with this as what to fix."""

    reason: str
    unsubscribe: str | None = None
    pause: str | None = None


@dataclass(frozen=True)
class Unknown:
    """The request may have reached the service, but no answer came (a timeout after it
    was sent, the connection lost mid-answer). The next attempt asks the service first
    where it can be asked (``OnUnknown.LOOKUP``)."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Unconfirmed:
    """The outcome is unknown and the service can neither de-duplicate nor be asked: the
    delivery becomes ``unconfirmed`` and is never sent again by itself."""

    reason: str


@dataclass(frozen=True)
class Paused:
    """The service says the *account* cannot send (bad credentials, no credit, sender not
    confirmed, the endpoint gone): not this delivery's fault. The provider is paused for
    the run; its deliveries stay ``pending``, the attempt not counted. ``reason`` says what
    the service said and what to fix."""

    reason: str


Outcome = Sent | Retry | Dead | Unknown | Unconfirmed | Paused


class OnUnknown(StrEnum):
    """What a service offers when an attempt's outcome is unknown (docs/delivery.md)."""

    DEDUPLICATES = "deduplicates"  # by Idempotency-Key (webhook receivers, the file outbox)
    LOOKUP = "lookup"  # can be asked whether it has the message (postmark, twilio)
    NEITHER = "neither"  # neither (handwrytten): the delivery becomes unconfirmed


class Undeliverable(Exception):
    """Raised by ``build_request`` when a record cannot be turned into a request for this
    service (no card design it knows, no sender number); ``send`` records it as Dead."""
