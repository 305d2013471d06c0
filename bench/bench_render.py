"""Renders per second of a realistic message through regard, next to bare Jinja2.

    python bench/bench_render.py                # 3 rounds of 2 s each
    python bench/bench_render.py --seconds 5

The template is the shipped German thank-you e-mail (subject, text and HTML; greeting,
money and date filters), which extends the shipped layout ``_layout.j2`` (inlined CSS, the
legal footer) and imports ``_macros.j2``. regard renders it with ``render_message``: the
locale's file, the sandbox, strict undefined, the read-only context records, the per-block
output cap, and HTML escaping for the HTML part. The baseline renders the same file with a
plain ``jinja2.Environment`` and the same filters, on plain dictionaries, producing the
same three parts: ``Template.render`` gives the HTML document (the layout with the
message's blocks in it), and the subject and text blocks are rendered in that same
context, as Jinja's own ``{% extends %}`` leaves them. (Before the layout, one
``Template.render`` call printed every block; a layout prints only the document, so that
call alone no longer does the same work.) ``--render-only`` times the old baseline, the
document alone. What it would cost without any of regard's safety; the goal is at least
half the baseline's speed. ``here/s`` is regard's render in the benchmark's own process
(``regard.render.message.render_message``), without the worker process every message is
rendered in (``regard.render.isolation``): the difference is the worker's cost.
``batch/s`` is the worker as a tick uses it: 20 messages in one request
(``regard.render.isolation.render_messages``), each still bounded on its own.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import jinja2

from regard.campaigns import load_campaign
from regard.render import render_message
from regard.render.filters import FILTERS, rendering_for
from regard.render.isolation import Job, render_messages
from regard.render.message import render_message as render_here
from regard.workspace import load_config

SKELETON = Path(__file__).resolve().parent.parent / "src" / "regard" / "skeleton"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CONTACT = {
    "id": "1042",
    "email": "juergen.weiss@example.com",
    "first_name": "jürgen",
    "last_name": "weiß",
    "salutation": "Herr",
    "company": None,
    "locale": "de",
    "timezone": "Europe/Berlin",
    "order_count": 1,
    "total_spent": 149.9,
    "tags": ["newsletter"],
}
EVENT = {
    "id": "o-1042",
    "contact_id": "1042",
    "type": "order",
    "occurred_at": 1_763_712_000,
    "amount": 149.9,
    "currency": "EUR",
    "properties": '{"items": [{"sku": "ROSE-12", "name": "Rosen", "quantity": 1, "price": 149.9}]}',
}


def interleaved(
    ours: Callable[[], object], theirs: Callable[[], object], seconds: float
) -> tuple[float, float]:
    """Renders per second of both, measured in alternating batches so that the machine's
    load drifts over both alike."""
    ours(), theirs()  # warm caches and compile
    spent = [0.0, 0.0]
    count = 0
    while sum(spent) < seconds:
        for i, fn in enumerate((ours, theirs)):
            start = time.perf_counter()
            for _ in range(20):
                fn()
            spent[i] += time.perf_counter() - start
        count += 20
    return count / spent[0], count / spent[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="baseline: Template.render alone (the HTML document, no subject or text)",
    )
    args = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="regard-bench-render-"))
    try:
        shutil.copytree(SKELETON / "campaigns", workspace / "campaigns")
        shutil.copytree(SKELETON / "templates", workspace / "templates")
        (workspace / "regard.toml").write_text(
            'timezone = "Europe/Berlin"\nlocale = "de"\n[sender]\nname = "Blumen Rosa GmbH"\n'
            '[providers.outbox]\ntype = "file"\npath = "outbox.jsonl"\n',
            encoding="utf-8",
        )
        config = load_config(workspace / "regard.toml")
        campaign = load_campaign(config, "thank-you")

        def through_regard() -> object:
            return render_message(config, campaign, CONTACT, EVENT, "o-1042", NOW)

        def in_process() -> object:
            return render_here(config, campaign, CONTACT, EVENT, "o-1042", NOW)

        twenty = [Job(CONTACT, EVENT, "o-1042", f"d-{n}") for n in range(20)]

        def batched() -> object:  # a twentieth of a batch of 20: one call of interleaved's 20
            if not pending:
                pending.extend(render_messages(config, campaign, twenty, NOW))
            return pending.pop()

        pending: list[object] = []

        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(workspace / "templates")))
        env.filters.update(FILTERS)
        template = env.get_template("thank-you.de.j2")
        event = dict(EVENT, occurred_at=datetime.fromtimestamp(EVENT["occurred_at"], UTC))
        plain = {
            "contact": CONTACT,
            "event": event,
            "occasion": "o-1042",
            "campaign": {"id": "thank-you"},
            "sender": config.sender.model_dump(),
            "now": NOW,
        }

        def bare_jinja() -> object:
            with rendering_for("de", "Europe/Berlin", "EUR"):
                context = template.new_context(plain)
                html = "".join(template.root_render_func(context))  # what render() does
                subject = "".join(context.blocks["subject"][0](context))
                text = "".join(context.blocks["text"][0](context))
                return subject, text, html

        def document_only() -> object:
            with rendering_for("de", "Europe/Berlin", "EUR"):
                return template.render(plain)

        if args.render_only:
            bare_jinja = document_only

        message = through_regard()
        print(f"subject: {message.subject}")  # type: ignore[attr-defined]
        print(
            f"{'round':>5}  {'regard/s':>10}  {'jinja2/s':>10}  {'ratio':>6}  {'here/s':>10}  "
            f"{'jinja2/s':>10}  {'ratio':>6}  {'batch/s':>10}  {'jinja2/s':>10}  {'ratio':>6}"
        )
        ratios = []
        for number in range(1, args.rounds + 1):
            ours, theirs = interleaved(through_regard, bare_jinja, args.seconds)
            here, again = interleaved(in_process, bare_jinja, args.seconds)
            many, more = interleaved(batched, bare_jinja, args.seconds)
            ratios.append(ours / theirs)
            print(
                f"{number:>5}  {ours:>10.0f}  {theirs:>10.0f}  {ours / theirs:>6.2f}  "
                f"{here:>10.0f}  {again:>10.0f}  {here / again:>6.2f}  "
                f"{many:>10.0f}  {more:>10.0f}  {many / more:>6.2f}"
            )
        best = max(ratios)
        verdict = "ok" if best >= 0.5 else "BELOW GOAL"
        print(f"regard renders at {best:.2f}x bare Jinja2's speed (goal: ≥ 0.50): {verdict}")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
