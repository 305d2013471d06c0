"""CSS inlined into a template's HTML once, when the template is loaded.

E-mail clients (Gmail's apps, Outlook) drop or ignore ``<style>`` rules, so an e-mail's
styles must sit in ``style`` attributes. Doing that per message would parse every rendered
mail again; regard does it once per template file instead: the Jinja source is turned into
HTML by replacing each Jinja construct with a placeholder, css-inline moves the rules of its
``<style>`` elements into the elements they match (``@media`` rules, which cannot be inlined,
stay in a ``<style>`` element for the clients that honour them; CSS widths of tables, cells
and images also become ``width`` attributes, which Outlook needs), and the placeholders are
put back.

A placeholder between elements is an HTML comment, which an HTML parser keeps where it is
(plain text inside a table would be moved out of it); inside a tag, a ``<style>`` or a
``<title>`` it is a bare word, so ``color: {{ sender.brand_color }}`` in the stylesheet
becomes ``color: …`` in every matching element's ``style`` attribute. A Jinja construct
inside CSS must therefore stand where a CSS value may (a colour, a length).
"""

from __future__ import annotations

import re

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_RAW_ELEMENTS = ("style", "title")


def has_stylesheet(source: str) -> bool:
    """Whether ``source`` is a whole HTML document (a layout) with a ``<style>`` element
    whose rules should be inlined; fragments are left as they are."""
    lowered = source.lower()
    return "<style" in lowered and "<html" in lowered


def inline_css(source: str) -> str:
    """``source`` (a Jinja template holding an HTML document) with its ``<style>`` rules
    inlined into ``style`` attributes; ``@media`` rules stay in a ``<style>`` element.

    Only the document, from ``<!DOCTYPE`` (or ``<html``) to the last ``</html>``, is read
    as HTML; what stands around it (other blocks: a subject, a text) is left as it is.
    Raises ValueError when css-inline cannot read the document's CSS.
    """
    lowered = source.lower()
    start = lowered.find("<!doctype")
    if start < 0:
        start = lowered.find("<html")
    end = lowered.rfind("</html>")
    if start < 0 or end < start:
        return source
    end += len("</html>")
    return source[:start] + _inline_document(source[start:end]) + source[end:]


def _inline_document(source: str) -> str:
    import css_inline  # imported on first use: most commands never load an HTML layout

    stamp = "rgj"
    while stamp in source:
        stamp += "q"
    originals: list[str] = []
    out: list[str] = []
    position = 0
    for match in _JINJA.finditer(source):
        out.append(source[position : match.start()])
        position = match.end()
        token = f"{stamp}{len(originals)}x"
        originals.append(match.group(0))
        out.append(token if _inside_markup("".join(out)) else f"<!--{token}-->")
    out.append(source[position:])
    html = "".join(out)
    inliner = css_inline.CSSInliner(
        keep_at_rules=True,
        load_remote_stylesheets=False,
        apply_width_attributes=True,
    )
    try:
        inlined = inliner.inline(html)
    except css_inline.InlineError as exc:
        raise ValueError(f"the CSS cannot be inlined: {exc}") from None
    restore = re.compile(rf"<!--({stamp}\d+x)-->|({stamp}\d+x)")

    def back(match: re.Match[str]) -> str:
        token = match.group(1) or match.group(2)
        return originals[int(token[len(stamp) : -1])]

    return restore.sub(back, inlined)


def _inside_markup(before: str) -> bool:
    """Whether text following ``before`` is inside a tag, or inside a ``<style>`` or
    ``<title>`` element, where an HTML comment would not be a comment."""
    lowered = before.lower()
    if lowered.rfind("<") > lowered.rfind(">"):
        return True
    return any(lowered.rfind(f"<{name}") > lowered.rfind(f"</{name}") for name in _RAW_ELEMENTS)
