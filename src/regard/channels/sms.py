"""SMS: to the contact's ``phone`` (E.164); a text.

How long an SMS is (3GPP TS 23.038 / 23.040, as Twilio counts it,
https://www.twilio.com/docs/glossary/what-sms-character-limit): a text made only of the
GSM-7 alphabet (its basic table; the extension table's ``€ [ ] { } | ~ ^ \\`` and form feed
take two septets each) fits 160 septets in one segment and 153 per segment when it needs
more; one character outside it (``„``, ``…``, an emoji) makes the whole text UCS-2: 70 UTF-16
units in one segment, 67 per segment beyond (an emoji takes two). So one ``„`` turns a
124-character text into two segments. Twilio refuses a ``Body`` over 1,600 characters
(error 21617), so regard refuses such a text at ``check`` and preview time.

A number the phone-number metadata (``phonenumbers``) calls a fixed line cannot receive an
SMS from an SMS service: for a campaign whose provider texts phones (``sms_mobile_only``,
Twilio) the contact has no address for the channel (``no_address``;
:func:`regard.engine.recipients.recipient`). The ``file`` and ``webhook`` providers pass any
number on, to whatever texts or calls it. Numbers that may be either
(``FIXED_LINE_OR_MOBILE``, as in the US) and numbers it cannot place are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers

from regard.channels.base import Channel, text

MAX_CHARS = 1600  # Twilio's limit on Body (error 21617)
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = set("\f^{}\\[~]|€")


@dataclass(frozen=True)
class Segments:
    """How an SMS text goes out: its encoding, its length in the encoding's units
    (septets or UTF-16 code units) and how many segments it takes."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int
    segments: int
    first_non_gsm: str | None = None  # the character that made it UCS-2


def segments(message: str) -> Segments:
    """The segments ``message`` takes as one SMS."""
    septets = 0
    for char in message:
        if char in _GSM_BASIC:
            septets += 1
        elif char in _GSM_EXTENSION:
            septets += 2
        else:
            units = len(message.encode("utf-16-le")) // 2
            count = 1 if units <= 70 else -(-units // 67)
            return Segments("UCS-2", units, count, char)
    count = 1 if septets <= 160 else -(-septets // 153)
    return Segments("GSM-7", septets, count)


def describe(message: str) -> str:
    """``2 segments (UCS-2 because of '„'), 124 characters``: for check and preview."""
    found = segments(message)
    plural = "s" if found.segments != 1 else ""
    why = f" because of {found.first_non_gsm!r}" if found.first_non_gsm else ""
    return f"{found.segments} segment{plural} ({found.encoding}{why}), {len(message)} characters"


class Sms(Channel):
    name = "sms"
    position = 2
    article = "an"
    default_consent = "opt-in"

    def address(self, contact: Mapping[str, Any]) -> str | None:
        return text(contact.get("phone")) or None


def is_fixed_line(phone: str) -> bool:
    """True when ``phone`` (E.164) is a number the metadata says is a fixed line."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE
