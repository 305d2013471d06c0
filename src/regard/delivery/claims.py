"""What a claim's outcome does to its delivery, and which claims belong to runs that are gone.

The claims themselves (atomic, one writer at a time, leases) are the store's:
:meth:`regard.store.deliveries.Deliveries.claim`. Here: a passing failure comes back after
its backoff or, with its attempts used up, is dead; a permanent one is dead at once; and
what each says in the delivery's log. Outcomes are recorded only by the claim's owner,
and only while it still holds the row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from regard.channels import sms
from regard.config import DeliverySettings
from regard.delivery import owners
from regard.delivery.backoff import retry_delay
from regard.providers import Dead, Outcome, Paused, Sent, Unconfirmed, Unknown
from regard.store import Store
from regard.store.records import Claim
from regard.times import Instant

log = logging.getLogger(__name__)

__all__ = [
    "Attempt",
    "Claim",
    "abandoned",
    "record_dead",
    "record_outcomes",
    "record_retry",
    "record_sent",
]

REASON_LIMIT = 500


def abandoned(store: Store) -> list[str]:
    """Owners of claims whose run has certainly ended (see :mod:`regard.delivery.owners`)."""
    return owners.gone(store.deliveries.claim_holders())


@dataclass(frozen=True)
class Attempt:
    """One claim's attempt, as the provider answered it."""

    claim: Claim
    outcome: Outcome
    cost: Decimal | None  # what a sent one costs: the provider's ``cost``
    # the provider's own retry schedule (seconds after each failed attempt), if it has one
    schedule: tuple[int, ...] | None = None


def attempt_cost(claimed: Claim, cost: Decimal | None) -> Decimal | None:
    """What a sent delivery costs: the provider's ``cost``; for an SMS that is the price of
    one segment, so the message costs it times its segments."""
    if cost is None or claimed.channel != "sms":
        return cost
    try:
        text = claimed.record().get("text")
    except ValueError:
        return cost
    return sent_cost(cost, claimed.channel, text)


def sent_cost(cost: Decimal | None, channel: str, text: str | None) -> Decimal | None:
    """What a sent message on ``channel`` costs: the provider's ``cost``, for an SMS of
    ``text`` times its segments."""
    if cost is None or channel != "sms":
        return cost
    return cost * sms.segments(text or "").segments


OUTCOME_TRIES = 3  # a batch of outcomes PostgreSQL aborted (a deadlock) is run again


def record_outcomes(
    store: Store,
    attempts: Sequence[Attempt],
    *,
    owner: str,
    at: Instant,
    now: Instant,
    settings: DeliverySettings,
) -> list[str | None]:
    """Record what each attempt did to its delivery, in one transaction; returns each one's
    new state (sent, pending, dead, unconfirmed), or None where the claim was lost.

    An unknown outcome is retried with the delivery marked, so the next attempt asks the
    service first; when its attempts are used up it becomes ``unconfirmed``, not dead (it
    may have arrived). A paused provider's claim is ``pending`` again at once, the attempt
    not counted.

    On PostgreSQL the batch locks its rows only (below), so a writer changing the same
    deliveries in another order (a forget mid-send) can deadlock with it; the server then
    aborts one of the two. When it is this batch, the batch is run again, whole (up to
    :data:`OUTCOME_TRIES` times): nothing of it was kept, and its guards make a second
    run record each outcome once."""
    outermost = not store.conn.in_transaction
    for tried in range(1, OUTCOME_TRIES + 1):
        try:
            return _record_outcomes(store, attempts, owner=owner, at=at, now=now, settings=settings)
        except Exception as exc:
            if not (outermost and tried < OUTCOME_TRIES and store.aborted(exc)):
                raise
            log.info("outcomes of %d deliveries: aborted (%s), recorded again", len(attempts),
                     type(exc).__name__)  # fmt: skip
    raise AssertionError("unreachable")  # pragma: no cover


def _record_outcomes(
    store: Store,
    attempts: Sequence[Attempt],
    *,
    owner: str,
    at: Instant,
    now: Instant,
    settings: DeliverySettings,
) -> list[str | None]:
    states: list[str | None] = [None] * len(attempts)
    sent: dict[tuple[str | None, Decimal | None], list[int]] = {}
    # Every change here is guarded by the claim's owner and the row's state (``sending``),
    # and the row lock each change takes makes a second change of it wait, then find the
    # guard false: an outcome is recorded once, by the run that holds the claim, whatever
    # else runs beside it. So on PostgreSQL the batch needs no store-wide write lock, and
    # the daemons record side by side. A suppression (a provider's "do not use this
    # address again") is another matter: that batch takes the lock, as every writer of
    # suppressions does. One transaction, no savepoints: it is recorded or rolled back whole.
    suppresses = any(isinstance(a.outcome, Dead) and a.outcome.unsubscribe for a in attempts)
    with store.write(shared=not suppresses, flat=True):
        for i, attempt in enumerate(attempts):
            claimed, outcome = attempt.claim, attempt.outcome
            if isinstance(outcome, Sent):
                # accepted ones that share their message id (none) and cost: one change
                sent.setdefault((outcome.message_id, attempt.cost), []).append(i)
            elif isinstance(outcome, Unconfirmed):
                ok = store.deliveries.record_unconfirmed(
                    claimed, owner=owner, at=at, now=now, reason=_short(outcome.reason),
                    detail=f"attempt {claimed.attempt}: {_short(outcome.reason)}",
                )  # fmt: skip
                states[i] = "unconfirmed" if ok else None
            elif isinstance(outcome, Paused):
                n = store.deliveries.release_paused(
                    [claimed.id], owner=owner, at=at, now=now, reason=_short(outcome.reason)
                )
                states[i] = "paused" if n else None
            elif isinstance(outcome, Unknown):
                states[i] = record_retry(
                    store, claimed, owner=owner, at=at, now=now, reason=outcome.reason,
                    retry_after=outcome.retry_after, settings=settings, unknown=True,
                    schedule=attempt.schedule,
                )  # fmt: skip
            elif isinstance(outcome, Dead):
                ok = record_dead(
                    store, claimed, owner=owner, at=at, now=now,
                    reason=outcome.reason, unsubscribe=outcome.unsubscribe,
                )  # fmt: skip
                states[i] = "dead" if ok else None
            else:
                states[i] = record_retry(
                    store, claimed, owner=owner, at=at, now=now, reason=outcome.reason,
                    retry_after=wait_asked(outcome.retry_after, outcome.retry_at, at),
                    settings=settings,
                    schedule=attempt.schedule,
                )  # fmt: skip
        for (message_id, cost), group in sent.items():
            claims = [attempts[i].claim for i in group]
            done = set(_record_sent(store, claims, owner, at, now, message_id, cost))
            for i in group:
                recorded = attempts[i].claim.id in done
                done.discard(attempts[i].claim.id)  # a delivery is sent once
                states[i] = "sent" if recorded else None
    return states


def wait_asked(retry_after: float | None, retry_at: float | None, at: Instant) -> float | None:
    """The provider's Retry-After as seconds from the run's instant ``at``: a delay as
    given, a date measured from ``at`` (under ``--at`` too, never from the real clock)."""
    if retry_at is not None:
        return retry_at - at
    return retry_after


def record_sent(
    store: Store,
    claimed: Claim,
    *,
    owner: str,
    at: Instant,
    now: Instant,
    message_id: str | None,
    cost: Decimal | None,
) -> bool:
    """The provider accepted it. False when the claim was lost (another run took it over)."""
    return bool(_record_sent(store, [claimed], owner, at, now, message_id, cost))


def _record_sent(
    store: Store,
    claims: Sequence[Claim],
    owner: str,
    at: Instant,
    now: Instant,
    message_id: str | None,
    cost: Decimal | None,
) -> list[str]:
    suffix = f": {message_id}" if message_id else ""
    detail = {c.id: f"attempt {c.attempt}{suffix}" for c in claims}
    return store.deliveries.record_sent(
        claims, owner=owner, at=at, now=now, message_id=message_id, cost=cost, detail=detail
    )


def record_retry(
    store: Store,
    claimed: Claim,
    *,
    owner: str,
    at: Instant,
    now: Instant,
    reason: str,
    retry_after: float | None,
    settings: DeliverySettings,
    unknown: bool = False,
    schedule: tuple[int, ...] | None = None,
) -> str | None:
    """A passing failure: pending again after the backoff, or ``dead`` when attempts are
    used up. ``unknown``: the attempt may have reached the service; used up, the delivery
    is ``unconfirmed`` instead of dead. Returns the new state, or None when the claim was
    lost. ``schedule``: the provider's own waits after each attempt (then the attempts are
    the schedule's length plus one, and a ``retry_after`` is honoured up to
    ``delivery.max_backoff``)."""
    reason = _short(reason)
    attempts = settings.attempts if schedule is None else len(schedule) + 1
    if claimed.attempt >= attempts and unknown:
        final = _short(f"outcome unknown after {claimed.attempt} attempts: {reason}")
        ok = store.deliveries.record_unconfirmed(
            claimed, owner=owner, at=at, now=now, reason=final, detail=final
        )
        return "unconfirmed" if ok else None
    if claimed.attempt >= attempts:
        final = _short(f"gave up after {claimed.attempt} attempts: {reason}")
        ok = store.deliveries.record_dead(
            claimed, owner=owner, at=at, now=now, reason=final, error=reason, detail=final
        )
        return "dead" if ok else None
    if schedule is None:
        delay = retry_delay(claimed.attempt, settings, retry_after)
    else:
        wait = float(schedule[max(1, claimed.attempt) - 1])
        if retry_after is not None:
            wait = max(wait, min(retry_after, settings.max_backoff.total_seconds()))
        delay = timedelta(seconds=max(1, round(wait)))
    ok = store.deliveries.record_retry_later(
        claimed, owner=owner, at=at, now=now,
        not_before=Instant(at + int(delay.total_seconds())), error=reason,
        detail=f"attempt {claimed.attempt}: {reason}", unknown=unknown,
    )  # fmt: skip
    return "pending" if ok else None


def record_dead(
    store: Store,
    claimed: Claim,
    *,
    owner: str,
    at: Instant,
    now: Instant,
    reason: str,
    unsubscribe: str | None,
) -> bool:
    """A permanent failure: ``dead`` at once with the provider's answer kept. When the
    provider says the address must not be used again, a suppression is recorded for it."""
    reason = _short(reason)
    return store.deliveries.record_dead(
        claimed, owner=owner, at=at, now=now, reason=reason, error=reason,
        detail=f"attempt {claimed.attempt}: {reason}", unsubscribe=unsubscribe,
    )  # fmt: skip


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT] + "…"
