"""``regard check`` and ``regard campaigns``: are the campaigns sound, and what are they doing.

(Library modules are imported inside the commands that use them: ``regard --help`` imports
every command module to list it, and stays fast.)
"""

from __future__ import annotations

from typing import Any

import click

from regard.cli import App, echo_json, json_option, pass_app
from regard.cli.tables import columns


@click.command()
@json_option
@pass_app
def check(app: App, as_json: bool) -> None:
    """Check every campaign and template: keys, providers, audiences, and a render of each
    template in each of its locales for sample contacts with and without names.

    Then, from the store: how many contacts each campaign can reach today (its audience,
    with the channel's address, with consent for marketing, not unsubscribed or bounced)
    and how far back the order history reaches.

    Lists every problem (FILE:LINE: key: reason) and exits with status 1 if there is one.
    Warnings (an empty store, a campaign that reaches nobody, a partial order history for
    campaigns that count orders) are listed on stderr and do not change the exit status.

    \b
    Examples:
      regard check
      regard check --json
    """
    # imported when the command runs, not when `regard check --help` loads this module
    from regard.render.check import check_workspace

    result = check_workspace(app.config)
    if as_json:
        echo_json(
            {
                "ok": result.ok,
                "campaigns": result.campaigns,
                "purposes": result.purposes,
                "notes": result.notes,
                "templates": result.templates,
                "renders": result.renders,
                "problems": result.problems,
                "warnings": result.warnings,
                "layouts": result.layouts,
                "sms": result.sms,
                "journeys": result.journeys,
                "contacts": result.contacts,
                "reach": result.reach,
                "history": result.history,
            }
        )
    else:
        for campaign_id, purpose in result.purposes.items():
            click.echo(f"campaign {campaign_id}: {purpose}")
        for campaign_id, counts in result.reach.items():
            click.echo(f"campaign {campaign_id} {_reach_text(counts, result.contacts or 0)}")
        if result.history is not None:
            from regard.campaigns.history import describe_history

            history = describe_history(result.history)
            # a note, not a problem: beside the warnings on stderr
            click.echo(f"store: {result.contacts} contacts, {history}", err=True)
        for note in result.notes:
            click.echo(note)
        for problem in result.problems:
            click.echo(problem)
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        for campaign_id, info in result.sms.items():
            cost = info["cost_per_message"]
            priced = f"; {cost:.4g} {app.config.currency} per message" if cost is not None else ""
            click.echo(f"{campaign_id}: SMS of up to {info['summary']}{priced}")
        for journey in result.journeys:  # notes, not problems: beside them on stderr
            click.echo(f"journey {journey['describe']}: {journey['holdout']}", err=True)
        summary = (
            f"{len(result.campaigns)} campaigns, {len(result.templates)} templates, "
            f"{result.renders} sample renders"
        )
        if result.real_renders:
            summary += f" ({result.real_renders} for the store's own contacts)"
        if result.ok and result.warnings:
            count = len(result.warnings)
            click.echo(f"no problems, {count} warning{'s' if count != 1 else ''}: {summary}")
        elif result.ok:
            click.echo(f"ok: {summary}")
        else:
            count = len(result.problems)
            click.echo(f"{count} problem{'s' if count != 1 else ''} ({summary})", err=True)
    if not result.ok:
        click.get_current_context().exit(1)


def _reach_text(counts: dict[str, int], contacts: int) -> str:
    """``reaches 120 of 400 contacts today (audience 300, with the address 280, …)``."""
    return (
        f"reaches {counts['reachable']} of {contacts} contacts today (in the audience "
        f"{counts['audience']}, with the channel's address {counts['with_address']}, "
        f"with consent {counts['consented']}, not unsubscribed or bounced {counts['reachable']})"
    )


@click.command()
@json_option
@pass_app
def campaigns(app: App, as_json: bool) -> None:
    """List the campaigns: trigger, channel, purpose, provider, enabled, and deliveries by
    state.

    \b
    Examples:
      regard campaigns
      regard campaigns --json
    """
    # imported when the command runs, not when `regard campaigns --help` loads this module
    from regard.campaigns import load_campaigns
    from regard.campaigns.journeys import journeys
    from regard.campaigns.model import describe_trigger

    loaded = load_campaigns(app.config)
    counts = _delivery_counts(app)
    # a chain's steps in order, right after its first step
    chains = journeys(loaded.campaigns)
    step_of = {
        s.campaign: {"first": j.first, "step": n, "steps": len(j.steps), "follows": s.follows}
        for j in chains
        for n, s in enumerate(j.steps, start=1)
    }
    order = {cid: (j.first, n) for j in chains for n, cid in enumerate(j.ids)}
    listed = sorted(loaded.campaigns, key=lambda c: order.get(c.id, (c.id, 0)))
    rows = [
        {
            "id": c.id,
            "name": c.title,
            "trigger": describe_trigger(c),
            "channel": c.channel,
            "purpose": c.purpose,
            "provider": c.provider,
            "enabled": c.enabled,
            "priority": c.priority,
            "holdout": c.holdout,
            "deliveries": counts.get(c.id, {}),
            # only for a step of a chain: {first, step, steps, follows}
            **({"journey": step_of[c.id]} if c.id in step_of else {}),
        }
        for c in listed
    ]
    if as_json:
        echo_json(rows)
    else:
        _print_table(rows)
        for journey in chains:  # each chain's steps in order (they are listed so above)
            click.echo(f"journey {journey.describe()}")
    for problem in loaded.errors:
        click.echo(problem, err=True)
    if loaded.errors:
        click.get_current_context().exit(1)


STATES = ("pending", "sending", "sent", "held_out", "skipped", "dead", "cancelled")


def _delivery_counts(app: App) -> dict[str, dict[str, int]]:
    """Deliveries by campaign and state (empty when there is no store yet; none is created)."""
    if not app.config.store_is_url and not app.config.store_path.is_file():
        return {}
    counts: dict[str, dict[str, int]] = app.store.reports.deliveries_by_campaign()
    return counts


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no campaigns")
        return
    headers = ["id", "trigger", "channel", "purpose", "provider", "enabled", *STATES]
    table = [
        [
            r["id"],
            r["trigger"],
            r["channel"],
            r["purpose"],
            r["provider"],
            "yes" if r["enabled"] else "no",
            *[str(r["deliveries"].get(s, 0)) for s in STATES],
        ]
        for r in rows
    ]
    for line in columns(headers, table):  # no cell can forge a line
        click.echo(line)
