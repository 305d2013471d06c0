"""Who may be written to on a channel, and where: consent and addresses. (Unsubscribes are
the store's: :meth:`regard.store.decisions.Decisions.unsubscribed`, given the address
:func:`channel_address` names.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.channels import channel
from regard.channels.sms import is_fixed_line
from regard.config import Config
from regard.errors import ProviderError
from regard.providers import adapter_class

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def consent_given(config: Config, channel: str, contact: Mapping[str, Any]) -> bool:
    """The config's ``[consent]`` rule for the channel against ``consent_<channel>``.

    opt-in needs it true; opt-out needs it not false. Webhooks have no consent field of
    their own; an attribute ``consent_webhook`` is honoured when a shop keeps one.
    """
    given = _flag(contact.get(f"consent_{channel}"))
    if config.consent.rule(channel) == "opt-in":
        return given is True
    return given is not False


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


def recipient(channel_name: str, contact: Mapping[str, Any], *, mobile_only: bool = False) -> Any:
    """The delivery's ``to``: e-mail, E.164 phone, postal address object, or None for a
    webhook. Raises LookupError when the channel's address is missing or incomplete, or
    (``mobile_only``: the campaign's provider texts phones) when an SMS would go to a
    number the phone-number metadata calls a fixed line."""
    to = channel(channel_name).recipient(contact)
    if mobile_only and channel_name == "sms" and isinstance(to, str) and is_fixed_line(to):
        raise LookupError(channel_name)
    return to


def mobile_only(config: Config, provider: str) -> bool:
    """Whether ``[providers.NAME]`` is an SMS service that texts phones (fixed lines are no
    address for it)."""
    table = config.providers.get(provider)
    if table is None:
        return False
    try:
        return adapter_class(table.type).sms_mobile_only
    except ProviderError:
        return False
