"""The sandbox's bounds: the ways a template used to build a gigabyte in one operation are
refused with the template's line, and whatever the checks do not foresee is stopped by the
worker process a message is rendered in (its time and its memory), not by the machine."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import time
from pathlib import Path

import pytest

from conftest import Workspace
from regard.campaigns import load_campaign
from regard.config import Config
from regard.errors import TemplateError
from regard.render import isolation, render_message
from regard.workspace import load_config
from test_render import NOW, ORDER, contact, email, setup


def render_text(ws: Workspace, text: str) -> tuple[str, float]:
    """The error of rendering ``text`` as a message's text block, and the seconds it took."""
    config = setup(ws, {"m.de.j2": email("Hallo", text)})
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        render_message(config, load_campaign(config, "c"), contact(), ORDER, "o-1", NOW)
    return str(info.value), time.monotonic() - started


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


# each built 1 GB (16-25 s and 1 GB resident per message); the nested loop ran for hours
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ('{{ "%*s" % (10**9, "") }}', "the number 1000000000 is too large for a template"),
        ('{{ "%.*f" % (10**9, 1.5) }}', "the number 1000000000 is too large for a template"),
        ('{{ "{:>{}}".format("", "1000000000") }}', "the width 1000000000 is too large"),
        ('{{ "{:{}}".format("", 99999) }}', "the width 99999 is too large for a template"),
        ('{{ ("\\t" * 10000).expandtabs(10000) }}', "expandtabs would build a text longer"),
        ('{{ ("x" * 50000).replace("", "y" * 20000) }}', "replace would build a text longer"),
        ('{{ ("x" * 50000) | replace("", "y" * 20000) }}', "replace would build a text longer"),
        ('{{ ("x" * 50000) | join("y" * 10000) }}', "join would build a text longer"),
        ('{{ ("y" * 10000).join("x" * 50000) }}', "join would build a text longer"),
        ('{{ ("a\\n" * 50000) | indent(5000) }}', "indent would build a text longer"),
        ('{{ ("a" * 50000).translate({97: "b" * 1000}) }}', "translate would build a text"),
        ('{{ ("%9999s" * 11) % ((1,) * 11) }}', "this format would build a text longer"),
        (
            '{% set ns = namespace(s="x") %}{% for i in range(40) %}'
            "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
            "this addition would build a text longer than 100000 characters",
        ),
    ],
)
def test_the_paths_to_a_gigabyte_are_closed(
    workspace: Workspace, payload: str, reason: str
) -> None:
    error, took = render_text(workspace, payload)
    assert reason in error
    assert error.startswith(f"{workspace.root / 'templates' / 'm.de.j2'}:5: refused: ")
    assert took < 5


def test_formats_of_ordinary_messages_still_work(workspace: Workspace) -> None:
    text = (
        '{{ "%05d|%s|%.2f|%*d" % (42, "x", 3.14159, 4, 7) }} '
        '{{ "{:>8}|{:.3f}|{}|{n}".format("ab", 2.5, 123456, n=99999) }} '
        '{{ "Bestellung 12345: %s" | format(654321) }} {{ ["a", "b"] | join(", ") }} '
        '{{ "a b" | replace(" ", "-") }} {{ "x\\ny" | indent("> ") }} {{ "a\\tb".expandtabs(2) }}'
    )
    config = setup(workspace, {"m.de.j2": email("Hallo", text)})
    message = render_message(config, load_campaign(config, "c"), contact(), ORDER, "o-1", NOW)
    assert message.text == (
        "Liebe Frau Schmidt,\n\n"
        "00042|x|3.14|   7       ab|2.500|123456|99999 Bestellung 12345: 654321 a, b a-b x\n"
        "> y a b"
    )


# two lists of lists that share their parts: comparing them compares 10^8 texts in one
# operation, with no Python code in between where a check could run
NESTED = "".join(
    f"{{% set {n}1 = [{n}0] * 10 %}}"
    + "".join(f"{{% set {n}{i + 1} = [{n}{i}] * 10 %}}" for i in range(1, 8))
    for n in "ab"
)
SLOW = '{% set a0 = "x" * 100 %}{% set b0 = "x" * 100 %}' + NESTED + "{{ a8 == b8 }}"
# ~ (not +) doubles a text 31 times: 2 GB
GREEDY = (
    '{% set ns = namespace(s="x") %}{% for i in range(31) %}{% set ns.s = ns.s ~ ns.s %}'
    "{% endfor %}{{ ns.s | length }}"
)


def good(config: Config) -> None:
    message = render_message(config, load_campaign(config, "c"), contact(), ORDER, "o-1", NOW)
    assert message.text == "Liebe Frau Schmidt,\n\nok"


def test_a_render_that_runs_too_long_is_stopped(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the tick rendered for as long as the template wanted (10^8 comparisons took
    about 30 s here, each level of nesting ten times more), holding its transaction."""
    monkeypatch.setattr(isolation, "MAX_RENDER_SECONDS", 1.0)
    error, took = render_text(workspace, SLOW)
    path = workspace.root / "templates" / "m.de.j2"
    assert error == f"{path}: refused: rendering took longer than 1 s"
    assert took < 4  # twice 1 s: it is tried once more in a fresh worker
    # the next contact's message of the same file is refused at once, not after 1 s more
    config = load_config(workspace.config)
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        render_message(config, load_campaign(config, "c"), contact(id="c-2"), ORDER, "o-2", NOW)
    error, took = str(info.value), time.monotonic() - started
    assert error == (
        f"{path}: refused: a message of this template took longer than 1 s; it is not "
        "rendered again until the file changes"
    )
    assert took < 0.5
    good(setup(workspace, {"m.de.j2": email("Hallo", "ok")}))  # a changed file renders


def test_a_worker_that_hangs_once_does_not_refuse_the_template(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that stops answering for a cause of its own (here: stopped by a signal; in
    life, forked while another thread held a lock) costs one timeout, not the template: the
    message is rendered again in a fresh worker."""
    monkeypatch.setattr(isolation, "MAX_RENDER_SECONDS", 1.0)
    config = setup(workspace, {"m.de.j2": email("Hallo", "ok")})
    good(config)  # the worker runs
    stuck = isolation._worker[0].pid
    os.kill(stuck, signal.SIGSTOP)
    try:
        good(config)
        assert isolation._worker[0].pid != stuck
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stuck, signal.SIGKILL)


def test_a_render_that_needs_too_much_memory_is_stopped(workspace: Workspace) -> None:
    """Before: 2 GB resident in the process that renders (the tick's, the daemon's)."""
    before = peak_mb()
    error, took = render_text(workspace, GREEDY)
    path = workspace.root / "templates" / "m.de.j2"
    assert error == (
        f"{path}:5: refused: rendering needed more than {isolation.MAX_RENDER_MEMORY >> 20} MB"
    )
    assert peak_mb() - before < 100
    print(f"\n2 GB template: refused in {took:.2f}s, this process's peak {peak_mb()} MB")
    good(setup(workspace, {"m.de.j2": email("Hallo", "ok")}))


def test_a_template_error_inside_the_worker_names_its_line(workspace: Workspace) -> None:
    error, _ = render_text(workspace, "{{ contact.nickname }}")
    assert error == f"{workspace.root / 'templates' / 'm.de.j2'}:5: contact has no field 'nickname'"
    assert Path(error.split(":")[0]).exists()


@pytest.mark.parametrize(
    "payload", ["{{ now.astimezone }}", "{{ contact.first_name.upper }}", "{{ range }}"]
)
def test_a_method_is_not_printed_with_its_memory_address(
    workspace: Workspace, payload: str
) -> None:
    """Before: ``<built-in method astimezone of datetime.datetime object at 0x7f…>``."""
    error, _ = render_text(workspace, payload)
    assert ": refused: " in error and "is a method or function: call it" in error
    assert "0x" not in error


def test_printing_values_and_calls_still_works(workspace: Workspace) -> None:
    config = setup(
        workspace,
        {"m.de.j2": email("Hallo", "{{ now.astimezone().year }} {{ contact.first_name.upper() }}")},
    )
    message = render_message(config, load_campaign(config, "c"), contact(), ORDER, "o-1", NOW)
    assert message.text == "Liebe Frau Schmidt,\n\n2026 ANNA"
