"""``type = "webhook"``: POST the delivery record as JSON, signed per Standard Webhooks.

Wire format (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
the body is the record as compact UTF-8 JSON; ``webhook-id`` is the delivery id (the same on
every attempt, so receivers can de-duplicate), ``webhook-timestamp`` the attempt's unix
seconds, and ``webhook-signature`` ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``,
computed by the maintained ``standardwebhooks`` library.

The signing key: a secret written ``whsec_<base64>`` (the form Standard Webhooks tools
generate) is base64-decoded, exactly as every Standard Webhooks library does; any other
secret is used as its UTF-8 bytes, as written. Receivers verify with
``Webhook("whsec_…")`` or ``Webhook(secret.encode())`` respectively (docs/providers.md).

Retries: by default the contract's ``[delivery]`` backoff and attempts, like every provider.
``retry_schedule = "standard"`` uses the schedule Standard Webhooks recommends ("Retry
schedule": after the first attempt 5 seconds, 5 minutes, 30 minutes, 2 hours, 5 hours, 10
hours and 10 hours again, about 28 hours in all), and a list of durations (``["1m", "1h",
"1d", "2d"]``) any schedule; with a schedule the delivery is dead once it is used up, and a
``Retry-After`` longer than the next step is honoured up to ``delivery.max_backoff``. Answers
follow the contract: 2xx sent; 408, 425, 429 and 5xx retried; any other status dead at once.
A ``410 Gone`` also means the endpoint is gone (Standard Webhooks: disable it), and 401 or
403 that the receiver refuses regard's credentials: that delivery is dead, and the provider
is paused for the rest of the run (the other deliveries stay pending, ``regard status`` shows
it failing) until the URL or the credentials are fixed. Receivers de-duplicate by ``webhook-id`` (the delivery id), so a delivery whose
outcome is unknown is simply sent again.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
from pydantic import Field, SecretStr, field_validator
from standardwebhooks import Webhook

from regard.config import Duration
from regard.providers.http import HTTPProvider, ServiceURL, classify_status
from regard.providers.outcomes import Dead, OnUnknown, Outcome
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

SECRET_PREFIX = "whsec_"
# Standard Webhooks' recommended schedule: the waits after attempt 1, 2, …
STANDARD_SCHEDULE = tuple(
    timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
)
RESERVED_HEADERS = frozenset(
    {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "idempotency-key"}
)


def signing_key(secret: str) -> bytes:
    """The HMAC key for ``secret``: base64-decoded after ``whsec_``, else its UTF-8 bytes."""
    if not secret:
        raise ValueError("the webhook secret is empty")
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "a secret starting with whsec_ must continue in base64 "
            '(generate one with: python -c "import base64, os; '
            "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\")"
        ) from None
    if not key:
        raise ValueError("the webhook secret is empty after whsec_")
    return key


class WebhookOptions(StrictModel):
    url: ServiceURL
    secret: SecretStr
    # extra static headers, e.g. the receiver's Authorization: treated as secrets
    headers: dict[str, SecretStr] = {}
    # the wait after each failed attempt ("standard": Standard Webhooks'); used up, the
    # delivery is dead. None: the [delivery] backoff and attempts
    retry_schedule: Literal["standard"] | Annotated[list[Duration], Field(min_length=1)] | None = (
        None
    )

    @field_validator("secret")
    @classmethod
    def _usable_secret(cls, value: SecretStr) -> SecretStr:
        signing_key(value.get_secret_value())
        return value

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        clash = sorted(name for name in value if name.lower() in RESERVED_HEADERS)
        if clash:
            raise ValueError(f"{', '.join(clash)}: set by regard itself, cannot be overridden")
        return value


class WebhookProvider(HTTPProvider):
    """Posts each delivery record to ``url``; 2xx is success."""

    type = "webhook"
    channels = frozenset({"email", "sms", "card", "webhook"})
    Options = WebhookOptions
    on_unknown = OnUnknown.DEDUPLICATES  # by webhook-id / Idempotency-Key

    def retry_schedule(self) -> tuple[int, ...] | None:
        chosen = self.options.retry_schedule
        if chosen is None:
            return None
        steps = STANDARD_SCHEDULE if chosen == "standard" else chosen
        return tuple(max(1, int(d.total_seconds())) for d in steps)

    def read_response(self, response: httpx.Response) -> Outcome:
        status = response.status_code
        outcome = classify_status(response)
        if status == 410 and isinstance(outcome, Dead):
            return replace(
                outcome,
                pause=f"HTTP 410 Gone from {self.options.url}: the endpoint is gone; fix "
                f"providers.{self.name}.url (the other deliveries wait for it)",
            )
        if status in (401, 403) and isinstance(outcome, Dead):
            return replace(
                outcome,
                pause=f"HTTP {status} from the webhook receiver: it refuses regard's "
                f"credentials; check providers.{self.name}.secret and headers",
            )
        return outcome

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._webhook = Webhook(signing_key(self.options.secret.get_secret_value()))

    def build_request(self, record: DeliveryRecord, client: httpx.AsyncClient) -> httpx.Request:
        body = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        delivery_id = str(record["delivery_id"])
        timestamp = int(time.time())
        signature = self._webhook.sign(
            msg_id=delivery_id, timestamp=datetime.fromtimestamp(timestamp, UTC), data=body
        )
        headers = {
            **{name: value.get_secret_value() for name, value in self.options.headers.items()},
            "Content-Type": "application/json",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        return client.build_request(
            "POST", self.options.url, content=body.encode("utf-8"), headers=headers
        )
