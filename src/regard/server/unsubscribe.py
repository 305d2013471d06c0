"""``GET /u/<token>``, ``POST /u/<token>``, ``POST /u/<token>/resubscribe``: the way out of
marketing, one click from every marketing e-mail (:mod:`regard.render.unsubscribe` makes
the links).

- ``GET`` shows a page in the contact's language (de, en) naming the shop and the channel,
  with a button that POSTs to the same URL. It changes nothing: mail scanners open links.
- ``POST`` (any body, RFC 8058's ``List-Unsubscribe=One-Click`` included) unsubscribes the
  contact from marketing on the delivery's channel, source ``link``, and answers a page
  that offers to undo it. Repeating it changes nothing.
- ``POST …/resubscribe`` undoes it.
- A token whose signature does not verify, or whose contact is gone (forgotten), gets a
  neutral 404 page and changes nothing.

The pages are self-contained HTML (no scripts, no external resources), one column that
fits a 375 px phone screen.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from regard.render.unsubscribe import read_token, shop_name
from regard.server.state import ServerState, state_of
from regard.store import Store
from regard.store.suppressions import LinkTarget
from regard.times import now_instant


@dataclass(frozen=True)
class Words:
    lang: str
    title: str
    ask: str  # {shop}, {channel}
    keep: str
    button: str
    done: str
    undo_note: str
    undo: str
    back: str
    gone: str
    channels: dict[str, str]


WORDS = {
    "de": Words(
        lang="de",
        title="Abmelden",
        ask="Möchten Sie keine Werbung mehr von {shop} per {channel} erhalten?",
        keep="Nachrichten zu Ihren Bestellungen und Ihrem Konto bekommen Sie weiterhin.",
        button="Abmelden",
        done="Sie sind abgemeldet: {shop} schickt Ihnen keine Werbung mehr per {channel}.",
        undo_note="Aus Versehen geklickt?",
        undo="Wieder anmelden",
        back="Sie sind wieder angemeldet: {shop} darf Ihnen wieder per {channel} schreiben.",
        gone="Dieser Link ist nicht (mehr) gültig.",
        channels={"email": "E-Mail", "sms": "SMS", "card": "Post", "webhook": "Nachricht"},
    ),
    "en": Words(
        lang="en",
        title="Unsubscribe",
        ask="Stop receiving offers from {shop} by {channel}?",
        keep="You will still get messages about your orders and your account.",
        button="Unsubscribe",
        done="You are unsubscribed: {shop} will send you no more offers by {channel}.",
        undo_note="Clicked by mistake?",
        undo="Subscribe again",
        back="You are subscribed again: {shop} may write to you by {channel} again.",
        gone="This link is not valid (any more).",
        channels={"email": "e-mail", "sms": "text message", "card": "post", "webhook": "message"},
    ),
}

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#1d1d1f;background:#f5f5f7}
main{max-width:32rem;margin:0 auto;padding:2rem 1.25rem}
h1{font-size:1.4rem;margin:0 0 1rem}
.shop{color:#6e6e73;font-size:.95rem;margin:0 0 .25rem}
p{margin:0 0 1rem;overflow-wrap:anywhere}
form{margin:1.5rem 0 0}
button{display:block;width:100%;padding:.9rem 1rem;font:inherit;font-weight:600;
border:0;border-radius:.6rem;background:#1d1d1f;color:#fff;cursor:pointer}
button.quiet{background:#e8e8ed;color:#1d1d1f}
.note{color:#6e6e73;font-size:.95rem}
"""


def words_for(locale: str | None, fallback: str) -> Words:
    """The page's words for ``locale`` (the contact's), else ``fallback`` (the config's)."""
    for candidate in (locale, fallback):
        language = (candidate or "").replace("-", "_").split("_")[0].lower()
        if language in WORDS:
            return WORDS[language]
    return WORDS["en"]


def page(words: Words, shop: str, body: str, status: int = 200) -> HTMLResponse:
    head = f"<p class=shop>{html.escape(shop)}</p>" if shop else ""
    text = (
        "<!doctype html>"
        f'<html lang="{words.lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(words.title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{head}<h1>{html.escape(words.title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(
        text,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def button(action: str, label: str, *, quiet: bool = False) -> str:
    css = ' class="quiet"' if quiet else ""
    return (
        f'<form method="post" action="{html.escape(action)}">'
        f"<button type=submit{css}>{html.escape(label)}</button></form>"
    )


def _fill(template: str, shop: str, channel: str) -> str:
    return html.escape(template.format(shop=shop, channel=channel))


async def _target(request: Request) -> tuple[ServerState, LinkTarget | None]:
    state = state_of(request)
    delivery_id = read_token(state.secret, str(request.path_params["token"]))
    if delivery_id is None:
        return state, None
    target = await state.call(lambda store: store.suppressions.link_target(delivery_id))
    return state, target


def _gone(state: ServerState) -> HTMLResponse:
    words = words_for(None, state.config.locale)
    return page(words, "", f"<p>{html.escape(words.gone)}</p>", status=404)


def _names(state: ServerState, target: LinkTarget) -> tuple[Words, str, str]:
    words = words_for(target["locale"], state.config.locale)
    shop = shop_name(state.config) or ("uns" if words.lang == "de" else "us")
    channel = words.channels.get(target["channel"], target["channel"])
    return words, shop, channel


async def confirm(request: Request) -> Response:
    """GET: the question and the button; nothing changes."""
    state, target = await _target(request)
    if target is None:
        return _gone(state)
    words, shop, channel = _names(state, target)
    here = request.url.path
    if target["unsubscribed"]:
        body = (
            f"<p>{_fill(words.done, shop, channel)}</p>"
            f"<p class=note>{html.escape(words.undo_note)}</p>"
            + button(here + "/resubscribe", words.undo, quiet=True)
        )
    else:
        body = (
            f"<p>{_fill(words.ask, shop, channel)}</p>"
            f"<p class=note>{html.escape(words.keep)}</p>" + button(here, words.button)
        )
    return page(words, shop_name(state.config), body)


async def unsubscribe(request: Request) -> Response:
    """POST: unsubscribe from marketing on the delivery's channel (committed before the
    answer), and offer the undo."""
    state, target = await _target(request)
    if target is None:
        return _gone(state)

    def act(store: Store) -> bool:
        return store.suppressions.add(
            target["contact_id"], target["channel"], source="link", at=now_instant()
        )

    await state.call(act)
    words, shop, channel = _names(state, target)
    body = (
        f"<p>{_fill(words.done, shop, channel)}</p>"
        f"<p class=note>{html.escape(words.undo_note)}</p>"
        + button(request.url.path + "/resubscribe", words.undo, quiet=True)
    )
    return page(words, shop_name(state.config), body)


async def resubscribe(request: Request) -> Response:
    """POST …/resubscribe: the undo."""
    state, target = await _target(request)
    if target is None:
        return _gone(state)
    await state.call(
        lambda store: store.suppressions.remove(target["contact_id"], target["channel"])
    )
    words, shop, channel = _names(state, target)
    link = request.url.path.removesuffix("/resubscribe")
    body = f"<p>{_fill(words.back, shop, channel)}</p>" + button(link, words.button, quiet=True)
    return page(words, shop_name(state.config), body)


def routes() -> list[BaseRoute]:
    return [
        Route("/u/{token}", confirm, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
        Route("/u/{token}/resubscribe", resubscribe, methods=["POST"]),
    ]
