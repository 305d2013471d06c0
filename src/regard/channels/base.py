"""What every channel provides, and the registry that finds one by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

# existing-customer (UWG §7(3)) is e-mail's alone: the config refuses it for other channels
ConsentRule = Literal["opt-in", "opt-out", "existing-customer"]

_REGISTRY: dict[str, Channel] = {}


@dataclass(frozen=True)
class Parts:
    """The rendered parts a delivery of this channel carries (``text`` and ``card`` as the
    delivery record names them)."""

    subject: str | None
    text: str | None
    html: str | None
    card: dict[str, Any] | None


class Channel:
    """One channel. Subclasses set the class attributes and may refine the methods;
    defining a subclass with a ``name`` registers one instance of it."""

    name: ClassVar[str]
    position: ClassVar[int]  # where it is listed among the channels
    article: ClassVar[str] = "a"  # "an email", "a card": for messages about a template
    noun: ClassVar[str] = "messages"  # what goes out, in reports ("cards")
    default_consent: ClassVar[ConsentRule] = "opt-out"
    required_blocks: ClassVar[tuple[str, ...]] = ("text",)
    optional_blocks: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return
        if name in _REGISTRY:
            raise ValueError(f"two channels claim the name {name!r}")
        _REGISTRY[name] = cls()

    def address(self, contact: Mapping[str, Any]) -> str | None:
        """The address an unsubscribe by address names (e-mail, phone); None when the
        channel has none of its own."""
        return None

    def recipient(self, contact: Mapping[str, Any]) -> Any:
        """The delivery's ``to``. Raises LookupError when the contact has no complete
        address for this channel."""
        address = self.address(contact)
        if address is None:
            raise LookupError(self.name)
        return address

    def parts(
        self,
        rendered: Mapping[str, str | None],
        *,
        card: Mapping[str, Any] | None,
        sender: Mapping[str, Any],
    ) -> Parts:
        """The delivery's parts from the rendered blocks (``subject``, ``text``, ``html``,
        ``card``); ``card`` is the campaign's ``[card]`` table, ``sender`` the config's."""
        return Parts(rendered.get("subject"), rendered.get("text"), rendered.get("html"), None)


def text(value: Any) -> str:
    """A field's value as trimmed text ("" when missing)."""
    return str(value).strip() if value is not None else ""


def channel(name: str) -> Channel:
    """The registered channel ``name``; raises KeyError naming the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown channel {name!r} (one of {', '.join(_REGISTRY)})") from None


def names() -> tuple[str, ...]:
    """Every registered channel's name, in their listed order."""
    return tuple(sorted(_REGISTRY, key=lambda name: _REGISTRY[name].position))
