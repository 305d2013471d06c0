"""``regard deliveries``: list deliveries; retry dead ones; cancel pending ones."""

from __future__ import annotations

import sys
from typing import Any

import click

from regard.cli import App, echo_json, json_option, pass_app
from regard.times import now_instant


@click.group(invoke_without_command=True)
@click.option(
    "--state", default=None, help="Only deliveries in this state (pending, sent, dead, …)."
)
@click.option("--campaign", default=None, metavar="ID", help="Only this campaign's deliveries.")
@click.option("--contact", default=None, metavar="ID", help="Only this contact's deliveries.")
@json_option
@click.pass_context
def deliveries(
    ctx: click.Context,
    state: str | None,
    campaign: str | None,
    contact: str | None,
    as_json: bool,
) -> None:
    """List deliveries, oldest first; retry dead ones or cancel pending ones.

    \b
    Examples:
      regard deliveries --state dead
      regard deliveries --campaign thank-you --json
      regard deliveries retry d_3f2a…
      regard deliveries cancel d_3f2a… d_9b1c…
    """
    if ctx.invoked_subcommand is not None:
        return
    from regard.delivery import list_deliveries  # lazy: only this command loads the delivery code

    app = ctx.find_object(App)
    assert app is not None  # the root group makes it before any command runs
    rows = list_deliveries(app.store, state=state, campaign=campaign, contact=contact)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no deliveries")
        return
    from regard.cli.tables import columns

    header = ["DELIVERY", "STATE", "CAMPAIGN", "CONTACT", "OCCASION", "CHANNEL", "PROVIDER",
              "DUE", "SENT", "NEXT ATTEMPT", "ATTEMPTS", "REASON"]  # fmt: skip
    fields = ["delivery_id", "state", "campaign", "contact_id", "occasion", "channel",
              "provider", "due_at", "sent_at", "next_attempt_at", "attempts"]  # fmt: skip
    plain: list[dict[str, Any]] = [dict(r) for r in rows]
    table = [[*(r[f] for f in fields), _why(r)] for r in plain]
    for line in columns(header, table):
        click.echo(line)
    click.echo(f"{len(rows)} deliveries")


@deliveries.command()
@click.argument("ids", nargs=-1, metavar="[ID…]")
@click.option(
    "--state", "select_state", default=None, metavar="S",
    help="Instead of ids: every delivery in this state (dead), with --campaign / --since.",
)  # fmt: skip
@click.option("--campaign", default=None, metavar="ID", help="With --state: only this campaign.")
@click.option(
    "--since", default=None, metavar="D",
    help="With --state: only deliveries decided at or after D (ISO date or time).",
)  # fmt: skip
@click.option("--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@json_option
@pass_app
def retry(
    app: App,
    ids: tuple[str, ...],
    select_state: str | None,
    campaign: str | None,
    since: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Send dead deliveries again: back to pending, due now, attempts from zero.

    Name them by id, or select them: `--state dead` with `--campaign` and `--since`. A
    selection says how many it found and, on a terminal, asks before it retries them.

    \b
    Examples:
      regard deliveries retry d_3f2a9c…
      regard deliveries retry --state dead --campaign birthday --since 2026-11-28
    """
    from regard.delivery import retry_deliveries  # lazy: only this command loads the delivery code

    chosen = list(ids) or _select(app, select_state, campaign, since, "retry", as_json, yes)
    done = retry_deliveries(app.store, chosen, at=now_instant()) if chosen else []
    _report(done, "retried", as_json)


def _select(
    app: App,
    state: str | None,
    campaign: str | None,
    since: str | None,
    verb: str,
    as_json: bool,
    yes: bool,
) -> list[str]:
    """The ids a selection (``--state`` with ``--campaign``, ``--since``) names; on a
    terminal, confirmed first. Raises a usage error when there is neither id nor state."""
    if state is None:
        raise click.UsageError(f"name the deliveries to {verb}: their ids, or --state S")
    from regard.delivery import list_deliveries
    from regard.times import iso, parse_instant, to_epoch

    rows = list_deliveries(app.store, state=state, campaign=campaign)
    if since is not None:
        try:
            start = iso(to_epoch(parse_instant(since, app.config.tz))) or ""
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None
        rows = [r for r in rows if (r["created_at"] or "") >= start]
    chosen = [r["delivery_id"] for r in rows]
    if not as_json:
        click.echo(f"{len(chosen)} {state} deliveries selected")
    if chosen and not yes and not as_json and sys.stdin.isatty():
        click.confirm(f"{verb} {len(chosen)} deliveries?", abort=True)
    return chosen


@deliveries.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID…")
@json_option
@pass_app
def cancel(app: App, ids: tuple[str, ...], as_json: bool) -> None:
    """Cancel pending deliveries: they will never be sent.

    \b
    Example:
      regard deliveries cancel d_3f2a9c… d_9b1c44…
    """
    from regard.delivery import cancel_deliveries  # lazy: only this command loads the delivery code

    done = cancel_deliveries(app.store, ids, at=now_instant())
    _report(done, "cancelled", as_json)


def _why(row: dict[str, Any]) -> str | None:
    """The reason column: why it was skipped or died, or why a pending one still waits."""
    if row["state"] == "pending" and row.get("last_error"):
        return f"to retry, last: {row['last_error']}"
    return None if row["reason"] is None else str(row["reason"])


def _report(done: list[str], verb: str, as_json: bool) -> None:
    if as_json:
        echo_json({verb: done})
    else:
        click.echo(f"{verb} {len(done)} deliveries")
