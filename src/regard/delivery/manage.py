"""What people do with deliveries by hand: list them, retry dead or unconfirmed ones,
confirm unconfirmed ones, cancel pending ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from regard.errors import InputError
from regard.store import Store
from regard.store.lifecycle import REASON_STATES, STATES, DeliveryState
from regard.store.records import DeliveryRow
from regard.times import Instant, iso

__all__ = [
    "REASON_STATES",
    "STATES",
    "ListedDelivery",
    "cancel_deliveries",
    "confirm_deliveries",
    "list_deliveries",
    "retry_deliveries",
]


class ListedDelivery(TypedDict):
    """One delivery as ``regard deliveries --json`` shows it: times as UTC ISO text, the
    reason only where the state gives it a meaning, never the message."""

    delivery_id: str
    campaign: str
    contact_id: str
    occasion: str
    state: str
    reason: str | None
    channel: str
    provider: str
    due_at: str | None
    created_at: str | None
    sent_at: str | None
    next_attempt_at: str | None  # pending: when it is tried next
    attempts: int
    last_error: str | None
    provider_message_id: str | None


def list_deliveries(
    store: Store,
    *,
    state: str | None = None,
    campaign: str | None = None,
    contact: str | None = None,
) -> list[ListedDelivery]:
    """Deliveries matching every given filter, oldest first, times as UTC ISO text.

    Message bodies are never included: they are personal and live only in the store.
    """
    if state is not None and state not in STATES:
        raise InputError(f"--state: unknown state {state!r} (one of {', '.join(STATES)})")
    rows = store.deliveries.listing(state=state, campaign=campaign, contact=contact)
    return [_public(row) for row in rows]


def _public(row: DeliveryRow) -> ListedDelivery:
    pending = row["state"] == DeliveryState.PENDING
    return ListedDelivery(
        delivery_id=row["id"],
        campaign=row["campaign"],
        contact_id=row["contact_id"],
        occasion=row["occasion"],
        state=row["state"],
        reason=row["reason"] if row["state"] in REASON_STATES else None,
        channel=row["channel"],
        provider=row["provider"],
        due_at=iso(row["due_at"]),
        created_at=iso(row["created_at"]),
        sent_at=iso(row["sent_at"]),
        next_attempt_at=iso(row["not_before"] or row["due_at"]) if pending else None,
        attempts=row["attempts"],
        last_error=row["last_error"],
        provider_message_id=row["provider_message_id"],
    )


def retry_deliveries(store: Store, ids: Sequence[str], *, at: Instant) -> list[str]:
    """Dead or unconfirmed deliveries back to ``pending``, due again at once, attempts
    counted from zero. An unconfirmed one is sent again without asking the service: the
    person retrying it has checked that it did not arrive.

    "At once" is the occasion's own due time, so the next run sends it also when that run
    acts at an earlier instant (``regard run --at``) than the clock of the retry.

    All or nothing: an unknown id, or one that is neither dead nor unconfirmed, changes
    nothing and raises.
    """
    wanted = list(dict.fromkeys(ids))
    with store.write():
        _check(store, wanted, (DeliveryState.DEAD, DeliveryState.UNCONFIRMED), "retried")
        store.deliveries.retry_by_hand(wanted, at=at)
    return wanted


def confirm_deliveries(store: Store, ids: Sequence[str], *, at: Instant) -> list[str]:
    """Unconfirmed deliveries to ``sent`` at ``at``: someone checked with the service that
    they arrived. All or nothing."""
    wanted = list(dict.fromkeys(ids))
    with store.write():
        _check(store, wanted, (DeliveryState.UNCONFIRMED,), "confirmed")
        store.deliveries.confirm_by_hand(wanted, at=at)
    return wanted


def cancel_deliveries(store: Store, ids: Sequence[str], *, at: Instant) -> list[str]:
    """Pending deliveries to ``cancelled``: they will never be sent. All or nothing."""
    wanted = list(dict.fromkeys(ids))
    with store.write():
        _check(store, wanted, (DeliveryState.PENDING,), "cancelled")
        store.deliveries.cancel_by_hand(wanted, at=at)
    return wanted


def _check(store: Store, wanted: list[str], allowed: tuple[DeliveryState, ...], verb: str) -> None:
    """Raise InputError unless every one of ``wanted`` exists and is in an ``allowed`` state."""
    found = store.deliveries.states(wanted)
    unknown = [i for i in wanted if i not in found]
    if unknown:
        raise InputError(f"no such delivery: {', '.join(unknown)} (nothing was {verb})")
    wrong = [f"{i} is {found[i]}" for i in wanted if found[i] not in allowed]
    if wrong:
        states = " or ".join(str(s) for s in allowed)
        raise InputError(
            f"only {states} deliveries can be {verb}: {'; '.join(wrong)} (nothing was {verb})"
        )
