"""The unsubscribe pages in a real headless Chromium, driven over the DevTools protocol:
on a 375 px phone screen the page fits without horizontal scrolling, and its button really
unsubscribes (and the undo button really resubscribes)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serve import free_port
from test_way_back import NOTHING, T1, link_of, order, run, shown
from test_way_back import shop as shop  # the fixture

BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
websocket = pytest.importorskip("websocket")


# What Chromium answers when an expression meets a page that is being replaced (a form's
# submit navigates): the page is not there yet, so a wait asks again.
NAVIGATING = ("Inspected target navigated or closed", "Cannot find context with specified id")


class DevToolsError(AssertionError):
    """Chromium answered a call with an error."""


class Browser:
    """One headless Chromium page, spoken to over the DevTools protocol."""

    def __init__(self, binary: str, profile: str) -> None:
        port = free_port()
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             f"--remote-debugging-port={port}", "--window-size=375,812", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            except (httpx.TransportError, ValueError):
                pass
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.1)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30)
        self.ids = itertools.count(1)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=375, height=812, deviceScaleFactor=2, mobile=True,
        )  # fmt: skip

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise DevToolsError(message)
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return answer["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def wait_for(self, condition: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self._holds(condition):
            assert time.monotonic() < deadline, f"timed out waiting for {condition}"
            time.sleep(0.1)

    def _holds(self, condition: str) -> bool:
        try:
            return bool(self.evaluate(f"Boolean({condition})"))
        except DevToolsError as error:
            if any(text in str(error) for text in NAVIGATING):
                return False
            raise

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        self.process.wait(20)


@pytest.fixture
def browser(tmp_path: Any) -> Iterator[Browser]:
    binary = next((b for b in BROWSERS if shutil.which(b)), None)
    if binary is None:
        pytest.skip("no Chromium on this machine (.ci/run installs chromium-headless-shell)")
    opened = Browser(binary, str(tmp_path / "profile"))
    try:
        yield opened
    finally:
        opened.close()


FITS = "document.documentElement.scrollWidth <= window.innerWidth"


def loaded(text: str) -> str:
    """The page the last click led to has loaded and shows `text`."""
    return f"document.readyState === 'complete' && document.body.innerText.includes('{text}')"


def test_the_button_works_and_the_page_fits_a_phone(
    shop: Any, served: Any, browser: Browser
) -> None:
    served(shop.config)
    order(shop, "o1", "2026-03-01T10:00:00Z")
    run(shop, T1)
    url = link_of(shop, "offer")

    browser.open(url)
    assert browser.evaluate("window.innerWidth") == 375
    assert browser.evaluate(FITS), browser.evaluate("document.documentElement.scrollWidth")
    assert "Blumen Rosa GmbH" in browser.evaluate("document.body.innerText")
    button = browser.evaluate(
        "(() => { const r = document.querySelector('button').getBoundingClientRect();"
        " return [r.left, r.right, r.height]; })()"
    )
    assert button[0] >= 0 and button[1] <= 375 and button[2] >= 40  # on screen, big enough
    assert shown(shop) == NOTHING  # the browser opened the page: nothing changed

    browser.evaluate("document.querySelector('button').click()")
    browser.wait_for(loaded("abgemeldet"))
    assert list(shown(shop)["unsubscribed"]) == ["email"]
    assert browser.evaluate(FITS)

    browser.evaluate("document.querySelector('button').click()")  # the undo
    browser.wait_for(loaded("wieder angemeldet"))
    assert shown(shop) == NOTHING
    assert browser.evaluate(FITS)
