"""Who may be written to on a channel, and where: consent and addresses. (Unsubscribes are
the store's: :meth:`regard.store.decisions.Decisions.unsubscribed`, given the address
:func:`channel_address` names.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.config import Config

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def consent_given(config: Config, channel: str, contact: Mapping[str, Any]) -> bool:
    """The config's ``[consent]`` rule for the channel against ``consent_<channel>``.

    opt-in needs it true; opt-out needs it not false. Webhooks have no consent field of
    their own; an attribute ``consent_webhook`` is honoured when a shop keeps one.
    """
    given = _flag(contact.get(f"consent_{channel}"))
    if getattr(config.consent, channel) == "opt-in":
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


def channel_address(channel: str, contact: Mapping[str, Any]) -> str | None:
    """The e-mail or phone a suppression by address would name (None for cards, webhooks)."""
    if channel == "email":
        return _text(contact.get("email")) or None
    if channel == "sms":
        return _text(contact.get("phone")) or None
    return None


def recipient(channel: str, contact: Mapping[str, Any]) -> Any:
    """The delivery's ``to``: e-mail, E.164 phone, postal address object, or None for a
    webhook. Raises LookupError when the channel's address is missing or incomplete."""
    if channel == "webhook":
        return None
    if channel in ("email", "sms"):
        address = channel_address(channel, contact)
        if address is None:
            raise LookupError(channel)
        return address
    name = " ".join(
        p for p in (_text(contact.get("first_name")), _text(contact.get("last_name"))) if p
    )
    postal = {
        "name": name,
        "company": _text(contact.get("company")),
        "street": _text(contact.get("street")),
        "postal_code": _text(contact.get("postal_code")),
        "city": _text(contact.get("city")),
        "country": _text(contact.get("country")),
    }
    if not (postal["name"] or postal["company"]) or not all(
        postal[k] for k in ("street", "postal_code", "city", "country")
    ):
        raise LookupError(channel)
    return postal


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""
