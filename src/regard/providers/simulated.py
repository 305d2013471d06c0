"""The provider of ``regard simulate``: every delivery is accepted, nothing leaves the process.

A backtest dispatches through the real claims and outcomes, with this adapter standing in
for every configured provider (:func:`simulated_provider` is the factory dispatch takes).
A simulated send costs what the configured provider's ``cost`` says, and is never paced
by its ``rate``: no one is there to be spared.

The class sets no ``type`` of its own, so it is not registered: no ``[providers.x]``
table can name it, and ``registered_types()`` does not list it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import httpx

from regard.channels import CHANNELS
from regard.config import ProviderTable
from regard.providers.base import Provider
from regard.providers.outcomes import OnUnknown, Outcome, Sent
from regard.store.records import DeliveryRecord

if TYPE_CHECKING:
    from regard.config import Config

SIMULATED_TYPE = "simulated"  # the ``type`` of a table made up for a provider not configured


class SimulatedProvider(Provider):
    """Answers Sent to every delivery without any I/O."""

    channels: ClassVar[frozenset[str]] = frozenset(CHANNELS)
    on_unknown: ClassVar[OnUnknown] = OnUnknown.DEDUPLICATES  # nothing ever leaves

    def __init__(self, name: str, table: ProviderTable, config: Config) -> None:
        # only the cost is kept: the configured adapter's own keys are not validated
        # (nothing is sent with them), and a rate does not apply
        super().__init__(name, ProviderTable(type=table.type, cost=table.cost), config)

    async def send(self, record: DeliveryRecord, client: httpx.AsyncClient) -> Outcome:
        return Sent(None)


def simulated_provider(name: str, config: Config) -> Provider:
    """The simulated stand-in for ``[providers.NAME]``, also when the config no longer has
    that table (its deliveries are then simulated without a cost)."""
    table = config.providers.get(name) or ProviderTable(type=SIMULATED_TYPE)
    return SimulatedProvider(name, table, config)
