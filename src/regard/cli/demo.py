"""``regard demo``: a demo shop, half a year of campaigns, and what came of them.

(Library modules are imported inside the commands that use them: ``regard --help`` imports
every command module to list it, and stays fast.)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from regard.cli import echo_json, json_option


@click.command()
@click.argument("folder", metavar="[DIR]", default="regard-demo", type=click.Path(file_okay=False))
@click.option(
    "--fresh", is_flag=True, help="Replace a previous demo in DIR (only a demo is ever replaced)."
)
@click.option(
    "--customers", default=2000, show_default=True, type=click.IntRange(10, 100_000),
    help="How many customers the generated shop has.",
)  # fmt: skip
@click.option(
    "--days", default=182, show_default=True, type=click.IntRange(1, 3650),
    help="How many days of ticks (two a day) to run, up to today.",
)  # fmt: skip
@json_option
def demo(folder: str, fresh: bool, customers: int, days: int, as_json: bool) -> None:
    """A self-contained demo: a generated shop and half a year of campaigns.

    Creates DIR (default ./regard-demo) as `regard init` would, with the example campaigns
    on the file provider; generates 2,000 German and English customers with three years of
    orders; imports them; then runs a real tick twice a day for the last six months, so every
    message lands in DIR/outbox/messages.jsonl. Prints the messages per campaign, three of
    them as customers read them, and the report with each campaign's uplift against its
    control group. No account and no network.

    The generated customers answer a message with an extra order within two weeks with
    probability 12%; that planted effect is what the report's uplift recovers.

    A DIR that already holds a demo is left alone unless --fresh is given; a DIR holding
    anything else is never touched.

    \b
    Examples:
      regard demo
      regard demo /tmp/shop --fresh
      regard --config regard-demo/regard.toml report --html report.html
    """
    # imported when the command runs, not when `regard demo --help` loads this module
    from regard.demo import RESPONSE_RATE, format_message, run_demo
    from regard.report.text import report_lines

    def progress(line: str) -> None:
        if not as_json:
            click.echo(line, err=True)

    result = run_demo(Path(folder), customers=customers, days=days, fresh=fresh, progress=progress)
    if as_json:
        echo_json(result.as_dict())
        return
    config = result.config_path
    echo = click.echo
    echo(
        f"\nregard demo: {result.customers} customers, {result.ticks} ticks (two a day) from "
        f"{result.start.date()} to {result.end.date()}, in {result.seconds:.1f}s\n"
    )
    echo("Messages per campaign")
    for cid, m in result.messages.items():
        echo(
            f"  {cid:<24} {m.get('sent', 0):>6} sent  {m.get('held_out', 0):>5} held out  "
            f"{m.get('skipped', 0):>5} skipped  ({m['channel']})"
        )
    if not result.messages:
        echo("  (none: no campaign had an occasion)")
    for i, record in enumerate(result.samples, 1):
        echo(f"\nSample {i} of {len(result.samples)}:")
        for line in format_message(record):
            echo(f"  {line}")
    echo("")
    for line in report_lines(result.report, result.locale):
        echo(line)
    echo(
        f"\nThe customers were set to answer a message with an extra order with probability "
        f"{RESPONSE_RATE:.0%} ({result.responses} such order{'' if result.responses == 1 else 's'}):"
        " the uplift above is that "
        "effect, measured against the held-out control group."
    )
    sample = result.samples[0] if result.samples else None
    regard = f"{invoked_as()} --config {config}"
    hints = [
        ("every message", str(result.outbox)),
        ("the config", f"{config}  (campaigns/ and templates/ beside it)"),
        (
            "a message",
            f"{regard} preview CAMPAIGN CONTACT_ID [--at T]  (or why it would not go out)",
        ),
        ("the report page", f"{regard} report --html report.html"),
        ("a backtest", f"{regard} simulate --from {result.start.date()} --to {result.end.date()}"),
    ]
    if sample:
        cid = sample["contact_id"]
        hints.insert(2, (f"what {cid} got", f"{regard} deliveries --contact {cid}"))
    echo("\nWhere to look next")
    width = max(len(label) for label, _ in hints) + 1
    for label, text in hints:
        echo(f"  {(label + ':').ljust(width)}  {text}")


def invoked_as() -> str:
    """How to call regard again: ``regard`` when that is the one on PATH, else the path it
    was run by (the README's first command runs ``.venv/bin/regard`` without activating)."""
    program = sys.argv[0]
    if Path(program).name != "regard":
        return "regard"  # python -m regard
    found = shutil.which("regard")
    if found and Path(found).resolve() == Path(program).resolve():
        return "regard"
    return program
