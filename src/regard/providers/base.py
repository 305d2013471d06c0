"""The contract every provider adapter keeps, and the registry that finds them by ``type``.

An adapter turns one delivery record into one attempt and says how it went: ``Sent``,
``Retry`` (try again later, the request surely did not get through), ``Dead`` (permanent),
``Unknown`` (the request may have reached the service, no answer came), ``Unconfirmed``
(unknown, and the service can neither de-duplicate nor be asked: never sent again by
itself) or ``Paused`` (the service says the *account* cannot send). It never raises for a
failed delivery and never lets an httpx error escape: the dispatcher only ever sees an
``Outcome``.

What a service offers when an outcome is unknown is declared on the adapter class as
``on_unknown`` (:class:`OnUnknown`), and :meth:`Provider.attempt` acts on it before it
sends again: a service that de-duplicates by ``Idempotency-Key`` gets the request again;
one that can be asked is asked (:meth:`Provider.lookup`) and the delivery is ``sent``
without a new request when the service has it; for one that can do neither the delivery
becomes ``unconfirmed``.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import SecretStr

from regard.errors import ProviderError
from regard.providers.outcomes import (
    OnUnknown,
    Outcome,
    Paused,
    Retry,
    Sent,
    Unconfirmed,
    Unknown,
)
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

if TYPE_CHECKING:
    from regard.config import Config, ProviderTable


_REGISTRY: dict[str, type[Provider]] = {}


class Provider(ABC):
    """One configured ``[providers.NAME]`` table, ready to send.

    Subclasses set ``type`` (what users write in config), ``channels`` (what they can
    deliver) and ``Options`` (a StrictModel of their own keys), and implement ``send``.
    """

    type: ClassVar[str]
    channels: ClassVar[frozenset[str]]
    Options: ClassVar[builtins.type[StrictModel]] = StrictModel
    card_max_chars: ClassVar[int | None] = None  # longest card text the service accepts
    # what the service offers when an outcome is unknown; the safe default is neither
    on_unknown: ClassVar[OnUnknown] = OnUnknown.NEITHER
    # an SMS service that texts phones: a fixed-line number is no address for it (file and
    # webhook pass any number on, to whatever texts or calls it)
    sms_mobile_only: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("type")
        if kind is None:
            return  # an abstract intermediate class
        if kind in _REGISTRY and _REGISTRY[kind] is not cls:
            raise ProviderError(
                f"two provider adapters claim type {kind!r}: "
                f"{_REGISTRY[kind].__qualname__} and {cls.__qualname__}"
            )
        _REGISTRY[kind] = cls

    def __init__(self, name: str, table: ProviderTable, config: Config) -> None:
        self.name = name
        self.table = table
        self.config = config
        self.options: Any = self.Options.model_validate(table.options)

    @abstractmethod
    async def send(self, record: DeliveryRecord, client: httpx.AsyncClient) -> Outcome:
        """Make one attempt to deliver ``record`` (the delivery record of the contract).

        ``record["delivery_id"]`` is the idempotency key. Must not raise for delivery
        failures: classify them as Retry or Dead.
        """

    async def attempt(
        self,
        record: DeliveryRecord,
        client: httpx.AsyncClient,
        *,
        uncertain: bool = False,
        since: int | None = None,
    ) -> Outcome:
        """One attempt as the contract wants it when services do not all de-duplicate.

        ``uncertain``: an earlier attempt may have reached the service (it timed out after
        sending, or its run was killed mid-send); ``since``: the real time of the first
        attempt. A service that de-duplicates gets the request again; one that can be asked
        is asked first (found: ``Sent`` without a new request; lookup failed: ``Unknown``
        again, nothing sent); for one that can do neither the outcome is ``Unconfirmed``
        without a request. An ``Unknown`` answer of this attempt becomes ``Retry`` (the
        service de-duplicates), stays ``Unknown`` (it can be asked next time) or becomes
        ``Unconfirmed``.
        """
        if uncertain and self.on_unknown is OnUnknown.NEITHER:
            return Unconfirmed(
                "outcome unknown: an earlier attempt may have reached the service, which "
                "can neither de-duplicate nor be asked; check with the service, then "
                "`regard deliveries confirm` or `regard deliveries retry`"
            )
        if uncertain and self.on_unknown is OnUnknown.LOOKUP:
            found = await self.lookup(record, client, since)
            if isinstance(found, Sent):
                return found
            if found is not None:
                return self.scrub(found)
        outcome = await self.send(record, client)
        if not isinstance(outcome, Unknown):
            return outcome
        if self.on_unknown is OnUnknown.DEDUPLICATES:
            return Retry(outcome.reason, outcome.retry_after)
        if self.on_unknown is OnUnknown.NEITHER:
            return Unconfirmed(
                f"outcome unknown ({outcome.reason}); the service can neither de-duplicate "
                "nor be asked: check with it, then `regard deliveries confirm` or "
                "`regard deliveries retry`"
            )
        return outcome

    async def lookup(
        self, record: DeliveryRecord, client: httpx.AsyncClient, since: int | None
    ) -> Sent | Unknown | Paused | None:
        """Ask the service whether it has ``record``'s message (``OnUnknown.LOOKUP``
        adapters implement it): ``Sent`` with its id when it has, None when it has not
        (send it again), ``Unknown`` when the question got no answer (nothing is sent)."""
        return None

    def retry_schedule(self) -> tuple[int, ...] | None:
        """The wait in seconds after each failed attempt, when the service has a schedule of
        its own (the webhook provider's); None: ``[delivery]`` backoff and attempts."""
        return None

    async def aclose(self) -> None:  # noqa: B027  (optional hook)
        """Release what the adapter holds (files, sockets). Called once after dispatch."""

    def secrets(self) -> list[str]:
        """Values that must never appear in a reason, a log or the store, in every form in
        which a service may echo them: every SecretStr option of the adapter (tokens, keys,
        webhook secrets, also as values of a table), every value the provider's table took
        from the environment, each word of those (the token in ``"Bearer <token>"``), and
        what the adapter derives from them (:meth:`derived_secrets`)."""
        found: list[str] = []
        for field in type(self.options).model_fields:
            value = getattr(self.options, field)
            values = value.values() if isinstance(value, dict) else [value]
            found += [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
        # (a value this short is no secret, and scrubbing it would garble reasons)
        found += [v for v in self.config.environment_values(self.name) if len(v) >= 4]
        words = [w for s in found for w in s.split() if len(w) >= _SECRET_WORD and w != s]
        return [*found, *words, *self.derived_secrets()]

    def derived_secrets(self) -> list[str]:
        """Forms of the secrets the adapter builds itself (a base64 Basic credential)."""
        return []

    def scrub(self, outcome: Outcome) -> Outcome:
        """The outcome with every secret replaced by ``***`` (providers may echo tokens)."""
        if isinstance(outcome, Sent):
            return outcome
        reason = scrub_text(outcome.reason, self.secrets())
        if reason == outcome.reason:
            return outcome
        return replace(outcome, reason=reason)


# a word of a secret value shorter than this is not scrubbed on its own ("Bearer", "Basic")
_SECRET_WORD = 8


def scrub_text(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (longest first, empty ones ignored) replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def adapter_class(kind: str) -> type[Provider]:
    """The adapter class registered for ``type = kind`` (the built-in adapters register
    when :mod:`regard.providers` is imported, which is where callers get this from)."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ProviderError(f"unknown provider type {kind!r} (known: {known})") from None


def registered_types() -> dict[str, type[Provider]]:
    """Every registered adapter class by its ``type``."""
    return dict(_REGISTRY)
