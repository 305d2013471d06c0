"""``on_unknown = "resend"``: for a service that can neither de-duplicate nor be asked,
the user may choose to send again when an attempt's outcome is unknown, rather than
leave the delivery ``unconfirmed`` for a person to decide. The recipient may then get the
message twice — acceptable for an e-mail or an SMS, which is why only those adapters
offer it (a card is not)."""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import BaseModel

from regard.providers.base import Provider
from regard.providers.outcomes import Outcome, Retry, Unknown
from regard.store.records import DeliveryRecord

OnUnknownChoice = Literal["unconfirmed", "resend"]


class MayResend(Provider):
    """An adapter whose ``Options`` has ``on_unknown: OnUnknownChoice``."""

    def resends(self) -> bool:
        options: BaseModel = self.options
        return getattr(options, "on_unknown", "unconfirmed") == "resend"

    async def attempt(
        self,
        record: DeliveryRecord,
        client: httpx.AsyncClient,
        *,
        uncertain: bool = False,
        since: int | None = None,
    ) -> Outcome:
        if not self.resends():
            return await super().attempt(record, client, uncertain=uncertain, since=since)
        outcome = await self.send(record, client)
        if isinstance(outcome, Unknown):
            return Retry(
                f'{outcome.reason}; sent again (on_unknown = "resend")', outcome.retry_after
            )
        return outcome
