"""The plain-text part of an e-mail made from its HTML, for templates with only ``html``.

inscriptis renders HTML as a browser would lay it out in text: table cells side by side or
one under the other as the layout's tables say, paragraphs and line breaks kept, lists
bulleted, elements hidden with ``display: none`` (the preheader) and ``<head>`` left out.
Links become ``text (URL)`` so the unsubscribe link still works in the text part. The
reverse (HTML made from a text) is never done: a template's ``text`` stays text.
"""

from __future__ import annotations

import re

_LINK = re.compile(r"\[([^\[\]]*)\]\(([^()\s]+)\)")


def html_to_text(html: str) -> str:
    """The text a reader of ``html`` sees, with each link's address after its text."""
    from inscriptis import get_text  # on first use: lxml costs ~20 ms to import
    from inscriptis.model.config import ParserConfig

    text = get_text(html, ParserConfig(display_links=True))
    return _LINK.sub(_link, text)


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1).strip(), match.group(2)
    if not label or label == url or (url.startswith("mailto:") and label == url[7:]):
        return url
    return f"{label} ({url})"
