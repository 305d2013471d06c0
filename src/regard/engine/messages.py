"""Rendering at enqueue: the message is rendered when the delivery is decided and stored
with it (``{to, subject, text, html, card, headers}``), so what ``preview`` shows is what is
sent. A marketing e-mail's link and headers are made here (:mod:`regard.render.unsubscribe`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.errors import TemplateError
from regard.render.isolation import Job, render_messages, send_stored
from regard.render.message import Stored
from regard.render.unsubscribe import Links, wants_link
from regard.store.lifecycle import message_text
from regard.times import Instant, from_epoch
from regard.triggers import Occasion


class Renderer:
    """Renders the messages of one tick."""

    def __init__(self, config: Config, links: Links | None = None) -> None:
        self.config = config
        self.links = links

    @property
    def in_worker(self) -> bool:
        """Whether its stored texts are asked of the render worker and collected later
        (:meth:`send_texts`), no thread of this process waiting for them: a renderer with
        a :meth:`render_many` of its own renders them itself when they are collected."""
        return type(self).render_many is Renderer.render_many

    def render(
        self,
        campaign: Campaign,
        contact: Mapping[str, Any],
        occasion: Occasion,
        to: Any,
        at: Instant,
        event: Mapping[str, Any] | None = None,
        delivery_id: str = "",
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(the stored message, None) or (None, the template error): never half a message.

        ``event`` is the triggering event's stored row (``store.events.get``), if any. A
        card's handwritten text is the record's ``text``; ``card`` holds its design, font
        and the sender (the return address).
        """
        (rendered,) = self.render_many(
            campaign, [Wanted(contact, occasion, to, event, delivery_id)], at
        )
        return rendered

    def render_many(
        self, campaign: Campaign, wanted: Sequence[Wanted], at: Instant
    ) -> list[tuple[dict[str, Any] | None, str | None]]:
        """:meth:`render` for each of ``wanted`` (one campaign at one instant), in order:
        one request to the render worker for all of them, each token signed once."""
        if not wanted:
            return []
        links = self._links(campaign, wanted)
        jobs = [Job(w.contact, w.event, w.occasion.occasion, w.delivery_id) for w in wanted]
        results = render_messages(self.config, campaign, jobs, from_epoch(at), links=links)
        storing, keep = Stored(self.config, campaign, links), self.kept(campaign)
        return [
            (None, str(message))
            if isinstance(message, TemplateError)
            else (storing.message(message, w.to, w.delivery_id, keep), None)
            for w, message in zip(wanted, results, strict=True)
        ]

    def kept(self, campaign: Campaign) -> tuple[str, ...] | None:
        """The keys of each stored message of ``campaign`` that this renderer keeps (None:
        all of them); the others are rendered, and checked, all the same."""
        return None

    def render_texts(
        self, campaign: Campaign, wanted: Sequence[Wanted], at: Instant
    ) -> list[tuple[str | None, str | None]]:
        """:meth:`render_many`'s messages as their rows store them, their JSON text, made
        in the render worker (the tick hands it to the store as it comes: a big day's
        200 MB of e-mails are not unpickled and encoded again here). A renderer whose
        :meth:`render_many` keeps less of each message gets its own messages' text."""
        return self.send_texts(campaign, wanted, at)()

    def send_texts(
        self, campaign: Campaign, wanted: Sequence[Wanted], at: Instant
    ) -> Callable[[], list[tuple[str | None, str | None]]]:
        """:meth:`render_texts`, asked for now and collected later: the render worker
        renders while the tick goes on (:func:`~regard.render.isolation.send_stored`); the
        function returned collects them. A renderer whose :meth:`render_many` keeps less
        of each message renders them when they are collected."""
        if not self.in_worker:
            return lambda: [
                (message_text(message), error)
                for message, error in self.render_many(campaign, wanted, at)
            ]
        if not wanted:
            return list
        links = self._links(campaign, wanted)
        jobs = [Job(w.contact, w.event, w.occasion.occasion, w.delivery_id, w.to) for w in wanted]
        collect = send_stored(
            self.config, campaign, jobs, from_epoch(at), links=links, keep=self.kept(campaign)
        )
        return lambda: [
            (None, str(text)) if isinstance(text, TemplateError) else (text, None)
            for text in collect()
        ]

    def _links(self, campaign: Campaign, wanted: Sequence[Wanted]) -> Links | None:
        """The links of a marketing e-mail's messages, each token signed once."""
        if self.links is None or not wants_link(campaign):
            return self.links
        return self.links.signing(w.delivery_id for w in wanted)


class Wanted(NamedTuple):
    """One message a tick wants: for whom, on which occasion, to which address, with which
    triggering event, under which delivery id."""

    contact: Mapping[str, Any]
    occasion: Occasion
    to: Any
    event: Mapping[str, Any] | None = None
    delivery_id: str = ""
