"""``regard deliveries``: list deliveries; retry dead or unconfirmed ones; confirm
unconfirmed ones; cancel pending ones."""

from __future__ import annotations

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
    """List deliveries, oldest first; retry dead or unconfirmed ones, confirm unconfirmed
    ones, cancel pending ones.

    \b
    Examples:
      regard deliveries --state dead
      regard deliveries --state unconfirmed
      regard deliveries --campaign thank-you --json
      regard deliveries retry d_3f2a…
      regard deliveries confirm d_3f2a…
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
    for r in rows:
        when = r["sent_at"] or r["next_attempt_at"] or r["due_at"]
        extra = f"  {r['reason']}" if r["reason"] else ""
        if r["state"] == "pending" and r.get("last_error"):
            extra = f"  to retry, last: {r['last_error']}"  # why it is still waiting
        click.echo(
            f"{r['delivery_id']}  {r['state']:<9}  {r['campaign']}  {r['contact_id']}  "
            f"{r['occasion']}  {r['channel']} via {r['provider']}  {when}  "
            f"attempts {r['attempts']}{extra}"
        )
    click.echo(f"{len(rows)} deliveries")


@deliveries.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID…")
@json_option
@pass_app
def retry(app: App, ids: tuple[str, ...], as_json: bool) -> None:
    """Send dead or unconfirmed deliveries again: back to pending, due now, attempts from
    zero. Retry an unconfirmed one only once the service says it did not arrive.

    \b
    Example:
      regard deliveries retry d_3f2a9c…
    """
    from regard.delivery import retry_deliveries  # lazy: only this command loads the delivery code

    done = retry_deliveries(app.store, ids, at=now_instant())
    _report(done, "retried", as_json)


@deliveries.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID…")
@json_option
@pass_app
def confirm(app: App, ids: tuple[str, ...], as_json: bool) -> None:
    """Mark unconfirmed deliveries sent: the service says they arrived (its dashboard, the
    card order's status). They are never sent again.

    \b
    Example:
      regard deliveries confirm d_3f2a9c…
    """
    from regard.delivery import confirm_deliveries  # lazy: only this command loads it

    done = confirm_deliveries(app.store, ids, at=now_instant())
    _report(done, "confirmed", as_json)


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


def _report(done: list[str], verb: str, as_json: bool) -> None:
    if as_json:
        echo_json({verb: done})
    else:
        click.echo(f"{verb} {len(done)} deliveries")
