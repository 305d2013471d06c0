"""A test send: one campaign's message, rendered for one contact, sent once to an address
of one's own (``regard preview … --send-to``).

It goes through the campaign's provider exactly as a delivery would, with the subject
prefixed ``[Test] ``, but it is no delivery: nothing is written to the store, the contact
gets nothing, and each test has an idempotency key of its own, so a second test is sent too.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from regard.campaigns.model import Campaign
from regard.channels import channel
from regard.config import Config
from regard.delivery.dispatch import tls_context
from regard.errors import DeliveriesFailed, InputError
from regard.providers import Dead, Retry, build_provider
from regard.render import render_message
from regard.store import Store
from regard.store.records import DeliveryRecord
from regard.times import Instant, from_epoch, iso

TEST_PREFIX = "[Test] "
# the channels whose address a person can give on the command line
_ADDRESSED = {"email": "an e-mail address", "sms": "a phone number"}


@dataclass(frozen=True)
class TestSent:
    """A test the provider accepted: where it went, through which provider, its id there."""

    to: str
    provider: str
    test_id: str
    message_id: str | None


def send_test(
    config: Config,
    campaign: Campaign,
    message: Mapping[str, Any],
    address: str,
    *,
    contact_id: str,
    occasion: str,
    at: Instant,
) -> TestSent:
    """Send ``message`` (the preview's ``{to, subject, text, html, card}``) once to
    ``address`` through ``campaign``'s provider.

    Raises InputError for a channel without a typed address (cards, webhooks) or an address
    that is not one, DeliveriesFailed when the provider refuses or cannot be reached.
    """
    address = address.strip()
    kind = _ADDRESSED.get(campaign.channel)
    if kind is None:
        raise InputError(
            f"--send-to: campaign {campaign.id} is a {campaign.channel} campaign; a test send "
            "goes to an e-mail address or a phone number (use --json to see a card's text)"
        )
    if campaign.channel == "email" and (
        "@" not in address or " " in address or address.startswith("@")
    ):
        raise InputError(f"--send-to: {address!r} is not an e-mail address")
    if campaign.channel == "sms" and not address.lstrip("+").isdigit():
        raise InputError(f"--send-to: {address!r} is not a phone number like +4915112345678")
    test_id = "test_" + secrets.token_hex(14)
    subject = message.get("subject")
    record = DeliveryRecord(
        delivery_id=test_id,
        campaign=campaign.id,
        contact_id=contact_id,
        occasion=occasion,
        channel=campaign.channel,
        to=address,
        subject=TEST_PREFIX + subject if subject else None,
        text=(TEST_PREFIX + message["text"])
        if campaign.channel == "sms" and message.get("text")
        else message.get("text"),
        html=message.get("html"),
        card=message.get("card"),
        headers={},  # a test is no delivery: no List-Unsubscribe that would name one
        created_at=iso(at) or "",
    )
    provider = build_provider(campaign.provider, config)
    outcome = asyncio.run(_send(provider, record, config))
    if isinstance(outcome, Retry | Dead):
        raise DeliveriesFailed(
            f"the test to {address} via {campaign.provider} failed: {outcome.reason}"
        )
    return TestSent(address, campaign.provider, test_id, outcome.message_id)


def message_anyway(
    store: Store,
    config: Config,
    campaign: Campaign,
    contact_id: str,
    at: Instant,
    event_id: str | None,
) -> dict[str, Any]:
    """The campaign's message for the contact as its template renders it at ``at``, also
    when a tick would not send it (not due yet, decided earlier, capped …): for looking at
    the design (``--html``) and test sends. The event is ``event_id``'s, else the contact's
    latest event of the trigger's type (as of ``at``). Raises TemplateError when it does not
    render, InputError for an unknown contact."""
    contact = store.contacts.get(contact_id)
    if contact is None:
        raise InputError(f"no contact with id {contact_id!r}")
    kind = campaign.trigger.sample_event_type()
    event = None
    if event_id is not None:
        event = store.events.get(event_id)
    elif kind is not None:
        event = store.events.latest(contact_id, kind, at)
    occasion = str(event["id"]) if event else "preview"
    message = render_message(config, campaign, contact, event, occasion, from_epoch(at))
    try:
        to = channel(campaign.channel).recipient(contact)
    except LookupError:
        to = None
    return {
        "to": to,
        "subject": message.subject,
        "text": message.text if message.card is None else message.card,
        "html": message.html,
        "card": None,
    }


async def _send(provider: Any, record: DeliveryRecord, config: Config) -> Any:
    timeout = httpx.Timeout(config.delivery.timeout.total_seconds())
    async with httpx.AsyncClient(timeout=timeout, verify=tls_context()) as client:
        try:
            return await provider.send(record, client)
        finally:
            await provider.aclose()
