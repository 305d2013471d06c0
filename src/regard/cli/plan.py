"""``regard plan``: what a tick at T would decide, writing nothing.

(Library modules are imported inside the commands that use them: ``regard --help`` imports
every command module to list it, and stays fast.)
"""

from __future__ import annotations

import click

from regard.cli import App, at_option, echo_json, json_option, pass_app, resolve_at
from regard.errors import InputError


@click.command()
@at_option
@click.option("--campaign", "campaign_id", default=None, metavar="ID", help="Only this campaign.")
@json_option
@pass_app
def plan(app: App, at: str | None, campaign_id: str | None, as_json: bool) -> None:
    """Show what a tick now (or at T) would decide for every due occasion: pending,
    held_out, or skipped with the reason. Nothing is written or sent: the real tick runs
    in a transaction that is rolled back.

    \b
    Examples:
      regard plan
      regard plan --at 2026-12-01T09:00 --campaign birthday
      regard plan --json
    """
    from regard.campaigns.loader import load_campaigns
    from regard.engine import plan as plan_tick
    from regard.times import iso

    when = resolve_at(app, at)
    loaded = load_campaigns(app.config)
    for problem in loaded.errors:
        click.echo(f"warning: skipped broken campaign: {problem}", err=True)
    if campaign_id is not None and loaded.get(campaign_id) is None:
        known = ", ".join(c.id for c in loaded.campaigns) or "none"
        raise InputError(
            f"no campaign {campaign_id!r} in {app.config.campaigns_dir} (known: {known})"
        )
    decisions = plan_tick(app.store, app.config, loaded, when, campaign=campaign_id)
    if as_json:
        echo_json([d.as_json() for d in decisions])
        return
    if not decisions:
        click.echo(f"Nothing due at {iso(when)}.")
        return
    rows = [
        (
            iso(d.due_at) or "",
            d.campaign,
            d.contact_id,
            d.occasion,
            d.decision + (" (simulated)" if d.simulated else ""),
            d.reason or "",
        )
        for d in decisions
    ]
    header = ("DUE", "CAMPAIGN", "CONTACT", "OCCASION", "DECISION", "REASON")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    counts: dict[str, int] = {}
    for d in decisions:
        counts[d.decision] = counts.get(d.decision, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    click.echo(f"\nA tick at {iso(when)} would decide {len(decisions)} occasions: {summary}.")
    if any(d.simulated for d in decisions):
        click.echo(
            "(simulated): a follow-up of an earlier step's send that a backtest up to "
            f"{iso(when)} would have made; that send is not in the store yet."
        )
