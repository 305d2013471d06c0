"""``regard run``: one tick, then dispatch of what is due."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regard.cli import App, at_option, echo_json, json_option, pass_app, resolve_at
from regard.errors import CampaignError, DeliveriesFailed
from regard.times import iso

if TYPE_CHECKING:
    from regard.runner import RunResult


@click.command()
@at_option
@click.option("--dry-run", is_flag=True, help="Show what would happen; write and send nothing.")
@json_option
@pass_app
def run(app: App, at: str | None, dry_run: bool, as_json: bool) -> None:
    """Evaluate every campaign now (or at T), then send what is due.

    A broken campaign file is reported and skipped; the others run, and the exit status
    is 1. Exit status 3 when the run finished but some deliveries failed for good (dead),
    or a provider's account cannot send (its deliveries stay pending).

    \b
    Examples:
      regard run
      regard run --dry-run
      regard run --at 2026-12-01T09:00 --json
    """
    from regard.runner import run_once  # lazy: only this command loads the engine

    when = resolve_at(app, at)
    result = run_once(app.store, app.config, when, dry_run=dry_run)
    if as_json:
        echo_json(result.as_dict())
    else:
        for line in summary_lines(result):
            click.echo(line)
    for error in result.render_errors:
        click.echo(f"warning: skipped, the template does not render: {error}", err=True)
    if result.campaign_errors:
        raise CampaignError(
            "\n".join(result.campaign_errors) + "\n(these campaigns were skipped; the others ran)"
        )
    problems = []
    if result.failed:
        problems.append(f"{result.failed} deliveries failed (see `regard deliveries --state dead`)")
    for name, why in result.dispatch.paused.items():
        problems.append(
            f"provider {name} paused, its deliveries stay pending until it can send: {why}"
        )
    if problems:
        # the summary (or JSON document) is already out; only the exit status remains
        raise DeliveriesFailed("\n".join(problems))


def summary_lines(result: RunResult) -> list[str]:
    """The human summary of a run, a few lines."""
    enqueued = (
        ", ".join(f"{n} {state}" for state, n in sorted(result.enqueued.items()) if n)
        or "nothing new"
    )
    lines = [f"tick at {iso(result.at)}: {result.evaluated} occasions evaluated; {enqueued}"]
    if result.dry_run:
        lines.append(
            f"would dispatch {len(result.due)} deliveries (dry run: nothing written or sent)"
        )
        for due in result.due:
            lines.append(
                f"  {due['delivery_id']}  {due['campaign']}  {due['contact_id']}  "
                f"via {due['provider']}"
            )
        return lines
    d = result.dispatch
    lines.append(
        f"dispatched: {d.sent} sent, {d.retried} to retry, {d.failed} failed"
        + (f", {d.released} released" if d.released else "")
        + (f", {d.reclaimed} taken up after a crash" if d.reclaimed else "")
        + (f", {d.unsubscribed} skipped (unsubscribed since)" if d.unsubscribed else "")
        + (f", {d.unconfirmed} unconfirmed" if d.unconfirmed else "")
        + f" in {result.duration:.1f}s"
        + (f"; {result.waiting} pending for later" if result.waiting else "")
    )
    for name, why in d.skipped_providers.items():
        lines.append(f"provider {name} skipped, its deliveries wait: {why}")
    if d.unconfirmed:
        lines.append(
            f"{d.unconfirmed} deliveries unconfirmed: the service cannot say whether they "
            "arrived; check, then `regard deliveries confirm` or `retry` "
            "(see `regard deliveries --state unconfirmed`)"
        )
    return lines
