"""The shipped e-mail layout (templates/_layout.j2): an e-mail lint on its HTML, its CSS
inlined once per template, and a real headless Chromium at 375 px and 800 px."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from conftest import Workspace
from regard.campaigns import load_campaign
from regard.render import render_message
from regard.workspace import load_config

SKELETON = Path(__file__).resolve().parent.parent / "src" / "regard" / "skeleton"
BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
UNSUBSCRIBE = "https://regard.blumen-rosa.de/u/AbC123-signed-token"
LOGO = "https://blumen-rosa.de/logo.png"
SENDER = f"""\
[sender]
name = "Blumen Rosa GmbH"
email = "hallo@blumen-rosa.de"
phone = "+49 30 1234567"
street = "Lindenstraße 5"
postal_code = "10969"
city = "Berlin"
country = "DE"
website = "https://blumen-rosa.de"
logo_url = "{LOGO}"
brand_color = "#c2185b"
vat_id = "DE123456789"
register = "Amtsgericht Berlin-Charlottenburg, HRB 123456"
managing_director = "Rosa Blum"
imprint = "https://blumen-rosa.de/impressum"
"""
CONTACT = {
    "id": "k1",
    "email": "anna@example.org",
    "first_name": "Anna-Lena",
    "last_name": "Jäger-Oberndorfer",
    "salutation": "Frau",
    "locale": "de",
    "timezone": "Europe/Berlin",
    "last_order_at": datetime(2026, 8, 1, tzinfo=UTC),
}
ORDER = {
    "id": "o-1",
    "type": "order",
    "occurred_at": datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    "amount": 49.9,
    "currency": "EUR",
    "properties": {},
}
# a message as a shop writes one: the shipped layout, a long unbroken word (an order
# number, a link) that must not push the page wider than a phone
MESSAGE = (
    '{% extends "_layout.j2" %}\n'
    '{% import "_macros.j2" as ui %}\n'
    '{% set unsubscribe_url = "' + UNSUBSCRIBE + '" %}\n'
    "{% block subject %}Danke{% endblock %}\n"
    "{% block preheader %}Ihre Bestellung ist unterwegs{% endblock %}\n"
    "{% block text %}{{ contact | greeting(formal=true) }},{% endblock %}\n"
    "{% block content %}<p>{{ contact | greeting(formal=true) }},</p>\n"
    "<p>Ihre Sendungsnummer: 00340434161094042557123456789012345678901234567890</p>\n"
    '{{ ui.button(sender.website, "Zum Shop", sender.brand_color) }}\n'
    "{% endblock %}\n"
)


def workspace_with_layout(ws: Workspace) -> Any:
    text = ws.config.read_text(encoding="utf-8")
    head, _, rest = text.partition("[sender]")
    rest = rest.split("\n[", 1)[1]
    ws.config.write_text(f"{head}{SENDER}\n[{rest}", encoding="utf-8")
    for name in ("_layout.j2", "_macros.j2"):
        ws.write(f"templates/{name}", (SKELETON / "templates" / name).read_text(encoding="utf-8"))
    ws.write("templates/m.j2", MESSAGE)
    ws.write(
        "campaigns/m.toml",
        'channel = "email"\nprovider = "outbox"\ntemplate = "m"\n[trigger]\ntype = "post_purchase"\n',
    )
    config = load_config(ws.config)
    return config, load_campaign(config, "m")


def rendered(ws: Workspace) -> str:
    config, campaign = workspace_with_layout(ws)
    html = render_message(config, campaign, CONTACT, ORDER, "o-1", NOW).html
    assert html is not None
    return html


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of <style> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


def lint(html: str) -> list[str]:
    """What e-mail clients punish: external or unlinlined CSS, scripts, images without alt
    text or width, tables without widths, a document without charset or language."""
    found = Elements()
    found.feed(html)
    problems = []
    if not html.startswith("<!DOCTYPE html>"):
        problems.append("no <!DOCTYPE html>")
    if not found.all("meta") or not any(m.get("charset") for m in found.all("meta")):
        problems.append("no <meta charset>")
    if not any(h.get("lang") for h in found.all("html")):
        problems.append("no lang on <html>")
    if found.all("link") or "@import" in html or re.search(r"url\(", html):
        problems.append("external CSS (link, @import or url())")
    if found.all("script"):
        problems.append("a script")
    for img in found.all("img"):
        if not img.get("alt", "").strip():
            problems.append(f"an image without alt text: {img.get('src')}")
        if not img.get("width", "").isdigit():
            problems.append(f"an image without a width attribute: {img.get('src')}")
    for table in found.all("table"):
        if not re.fullmatch(r"\d+%?", table.get("width", "")):
            problems.append(f"a table without a width attribute: {table}")
    for style in found.styles:
        # only what cannot be inlined may stay in <style>: the @media rules
        rest = style
        while "@media" in rest:
            start = rest.index("@media")
            depth, i = 0, rest.index("{", start)
            for i in range(rest.index("{", start), len(rest)):
                depth += {"{": 1, "}": -1}.get(rest[i], 0)
                if depth == 0:
                    break
            rest = rest[:start] + rest[i + 1 :]
        if rest.strip():
            problems.append(f"CSS left in <style> that is not inlined: {rest.strip()[:80]}")
    return problems


def test_the_layout_passes_the_e_mail_lint(workspace: Workspace) -> None:
    html = rendered(workspace)
    assert lint(html) == []
    found = Elements()
    found.feed(html)
    container = next(t for t in found.all("table") if "container" in t.get("class", ""))
    assert container["width"] == "600" and "max-width: 100%" in container["style"]
    [logo] = found.all("img")
    assert (logo["src"], logo["alt"]) == (LOGO, "Blumen Rosa GmbH")
    # the styles sit in the elements; the brand colour too, dark mode in a media query
    band = next(t for t in found.all("td") if t.get("class") == "band")
    assert "background-color: #c2185b" in band["style"]
    assert "prefers-color-scheme: dark" in html
    assert '<meta name="color-scheme" content="light dark">' in html
    preheader = next(t for t in found.all("div") if t.get("class") == "preheader")
    assert "display: none" in preheader["style"]
    assert ">Ihre Bestellung ist unterwegs" in html  # then spacers, so inboxes show no more
    for expected in (
        "Lindenstraße 5, 10969 Berlin, DE",
        "Geschäftsführung: Rosa Blum",
        "Register: Amtsgericht Berlin-Charlottenburg, HRB 123456",
        "USt-IdNr.: DE123456789",
        'href="https://blumen-rosa.de/impressum"',
        f'href="{UNSUBSCRIBE}"',
    ):
        assert expected in html


def test_the_lint_finds_what_clients_punish() -> None:
    bad = (
        '<html><head><link rel="stylesheet" href="https://x/s.css"><style>p { color: red }'
        '</style></head><body><table><tr><td><img src="a.png"></td></tr></table></body></html>'
    )
    problems = lint(bad)
    # doctype, charset, lang, the link, alt, the image's width, the table's, the <style> rule
    assert len(problems) == 8, problems


def test_without_an_unsubscribe_url_the_layout_shows_no_link(workspace: Workspace) -> None:
    config, campaign = workspace_with_layout(workspace)
    workspace.write(
        "templates/m.j2", MESSAGE.replace('{% set unsubscribe_url = "' + UNSUBSCRIBE + '" %}\n', "")
    )
    html = render_message(config, campaign, CONTACT, ORDER, "o-1", NOW).html
    assert html is not None and "/u/" not in html and "abmelden" not in html


def test_the_css_is_inlined_once_per_template(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regard.render import environment
    from regard.render.message import render_message  # in this process, where it counts

    calls: list[int] = []
    real = environment.inline_css

    def counting(source: str) -> str:
        calls.append(1)
        return real(source)

    monkeypatch.setattr(environment, "inline_css", counting)
    config, campaign = workspace_with_layout(workspace)
    for _ in range(5):
        render_message(config, campaign, CONTACT, ORDER, "o-1", NOW)
    assert len(calls) == 1
    # a changed layout is read and inlined again
    layout = workspace.root / "templates" / "_layout.j2"
    layout.write_text(
        layout.read_text(encoding="utf-8").replace("#f4f4f5", "#fafafa"), encoding="utf-8"
    )
    os.utime(layout, (layout.stat().st_atime, layout.stat().st_mtime + 5))
    html = render_message(config, campaign, CONTACT, ORDER, "o-1", NOW).html
    assert len(calls) == 2 and html is not None and "#fafafa" in html


PROBE = """<script>
addEventListener("load", () => {
  const seen = (el) => {
    if (!el) return false;
    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && box.left >= 0 && box.right <= innerWidth
      && style.visibility !== "hidden" && style.display !== "none" && parseFloat(style.fontSize) >= 12;
  };
  const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent).join(" ");
  document.body.setAttribute("data-probe", JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: innerWidth,
    container: document.querySelector(".container").getBoundingClientRect().width,
    unsubscribe: seen(document.querySelector("a.unsubscribe")),
    imprint: seen(document.querySelector(".imprint")) && seen(document.querySelector('a[href$="/impressum"]')),
    imprintText: text(".imprint"),
    logo: seen(document.querySelector("img")),
    preheaderShown: seen(document.querySelector(".preheader")),
  }));
});
</script>"""


def png(width: int, height: int) -> bytes:
    """A plain PNG of one colour, standing in for the shop's logo (no network in tests)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xc2\x18\x5b" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("width", [375, 800])
def test_the_layout_in_headless_chromium(workspace: Workspace, tmp_path: Path, width: int) -> None:
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs chromium-headless-shell)")
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(320, 80))
    html = rendered(workspace).replace(LOGO, logo.as_uri()).replace("</body>", PROBE + "</body>")
    page = tmp_path / "mail.html"
    page.write_text(html, encoding="utf-8")
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={width},1400", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    match = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert match, done.stdout[-2000:]
    probe = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["innerWidth"] == width
    assert probe["scrollWidth"] <= width, probe  # no horizontal scrolling
    assert probe["container"] <= 600
    if width >= 620:
        assert probe["container"] == 600
    assert probe["unsubscribe"], probe
    assert probe["imprint"], probe
    assert "USt-IdNr.: DE123456789" in probe["imprintText"]
    assert probe["logo"], probe
    assert not probe["preheaderShown"]


def test_a_message_file_holding_a_whole_document_keeps_its_other_blocks(
    workspace: Workspace,
) -> None:
    workspace.write(
        "templates/m.j2",
        "{% block subject %}Danke{% endblock %}\n"
        "{% block text %}Guten Tag,\nvielen Dank.{% endblock %}\n"
        "{% block html %}<!DOCTYPE html><html><head><style>p { color: #333333; }"
        "@media (max-width: 600px) { p { font-size: 18px !important; } }</style></head>"
        '<body><table width="100%"><tbody>{% if contact.first_name %}<tr><td><p>Hallo '
        "{{ contact.first_name }}</p></td></tr>{% endif %}</tbody></table></body></html>"
        "{% endblock %}\n",
    )
    workspace.write(
        "campaigns/m.toml",
        'channel = "email"\nprovider = "outbox"\ntemplate = "m"\n[trigger]\ntype = "post_purchase"\n',
    )
    config = load_config(workspace.config)
    message = render_message(config, load_campaign(config, "m"), CONTACT, ORDER, "o-1", NOW)
    assert (message.subject, message.text) == ("Danke", "Guten Tag,\nvielen Dank.")
    assert message.html is not None
    assert '<p style="color: #333333;">Hallo Anna-Lena</p>' in message.html
    assert "@media (max-width: 600px)" in message.html
