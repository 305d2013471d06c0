"""Who may be written to on a channel, and where: consent and addresses. (Unsubscribes are
the store's: :meth:`regard.store.decisions.Decisions.unsubscribed`, given the address
:func:`channel_address` names.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.channels import channel
from regard.config import Config

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def consent_given(config: Config, channel: str, contact: Mapping[str, Any]) -> bool:
    """The config's ``[consent]`` rule for the channel against ``consent_<channel>``.

    opt-in needs it true; opt-out needs it not false; existing-customer (e-mail, UWG §7(3))
    needs it true, or not false for a contact with at least one order (``order_count`` as
    of the tick's T, which is what the contact mapping holds). Webhooks have no consent
    field of their own; an attribute ``consent_webhook`` is honoured when a shop keeps one.
    Asked for marketing only: service messages need no consent.
    """
    given = _flag(contact.get(f"consent_{channel}"))
    rule = config.consent.rule(channel)
    if rule == "opt-in":
        return given is True
    if rule == "existing-customer":
        return given is True or (given is not False and _orders(contact) >= 1)
    return given is not False


def _orders(contact: Mapping[str, Any]) -> int:
    try:
        return int(contact.get("order_count") or 0)
    except (TypeError, ValueError):
        return 0


def _flag(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool | int):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def channel_address(channel_name: str, contact: Mapping[str, Any]) -> str | None:
    """The e-mail or phone a suppression by address would name (None for cards, webhooks)."""
    return channel(channel_name).address(contact)


def recipient(channel_name: str, contact: Mapping[str, Any]) -> Any:
    """The delivery's ``to``: e-mail, E.164 phone, postal address object, or None for a
    webhook. Raises LookupError when the channel's address is missing or incomplete."""
    return channel(channel_name).recipient(contact)
