"""A handwritten card by post: to the contact's full postal address; the card's text.

A full postal address is a name or a company, street, postal_code, city and country; the
``to`` object also carries ``address2`` (a second line) when the contact has one and, when
the contact has a ``state`` attribute, ``state`` (US and Canadian addresses need one). The
delivery's ``text`` is the handwritten text (the template's ``card`` block); its ``card``
holds the design, the font and the sender, the card's return address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.channels.base import Channel, Parts, text


class Card(Channel):
    name = "card"
    position = 3
    noun = "cards"
    default_consent = "opt-out"
    required_blocks = ("card",)

    def recipient(self, contact: Mapping[str, Any]) -> dict[str, str]:
        name = " ".join(
            p for p in (text(contact.get("first_name")), text(contact.get("last_name"))) if p
        )
        postal = {
            "name": name,
            "company": text(contact.get("company")),
            "street": text(contact.get("street")),
            "postal_code": text(contact.get("postal_code")),
            "city": text(contact.get("city")),
            "country": text(contact.get("country")),
        }
        if not (postal["name"] or postal["company"]) or not all(
            postal[k] for k in ("street", "postal_code", "city", "country")
        ):
            raise LookupError(self.name)
        if text(contact.get("address2")):
            postal["address2"] = text(contact.get("address2"))
        state = text(contact.get("state"))  # an attribute: where the country needs one (US, CA)
        if state:
            postal["state"] = state
        return postal

    def parts(
        self,
        rendered: Mapping[str, str | None],
        *,
        card: Mapping[str, Any] | None,
        sender: Mapping[str, Any],
    ) -> Parts:
        details = {
            "design": card.get("design") if card else None,
            "font": card.get("font") if card else None,
            "sender": dict(sender),
        }
        return Parts(rendered.get("subject"), rendered.get("card"), rendered.get("html"), details)
