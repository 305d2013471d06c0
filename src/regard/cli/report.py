"""``regard report`` and ``regard simulate``: what the campaigns did, whether it worked,
and what they would have done.

(Library modules are imported inside the commands that use them: ``regard --help`` imports
every command module to list it, and stays fast.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from regard.cli import App, echo_json, json_option, pass_app
from regard.errors import InputError
from regard.times import parse_date, parse_duration, parse_instant

if TYPE_CHECKING:
    from regard.campaigns.model import Campaign


def parse_day(
    app: App, text: str | None, option: str, *, end_of_day: bool = False
) -> datetime | None:
    """``--since`` / ``--until``: ISO 8601; a bare date is its midnight, or for an end the
    last second of that day; naive times are in the config's time zone."""
    if text is None:
        return None
    try:
        value = parse_instant(text, app.config.tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    try:
        parse_date(text)
    except ValueError:
        return value
    return value + timedelta(days=1, seconds=-1) if end_of_day else value


def load_campaigns_for(app: App) -> list[Campaign]:
    """The campaigns that load; a broken file is named on stderr and left out, since the
    deliveries already recorded can be counted without it."""
    # imported when the command runs, not when `regard report --help` loads this module
    from regard.campaigns.loader import load_campaigns

    loaded = load_campaigns(app.config)
    for problem in loaded.errors:
        click.echo(f"warning: {problem}", err=True)
    return list(loaded.campaigns)


def duration_option(
    name: str, default: str, help: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An option holding a duration (``90m``, ``1d``), parsed into a timedelta."""

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return click.option(name, default=default, show_default=True, callback=parse, help=help)


@click.command()
@click.option("--since", metavar="D", help="Start of the period (default: a year before --until).")
@click.option(
    "--until",
    metavar="D",
    help="End of the period, a bare date meaning its whole day (default: now, or the "
    "latest event or delivery in the store if later).",
)
@click.option("--campaign", "campaign_id", metavar="ID", help="Only this campaign.")
@duration_option(
    "--horizon", "180d", "Churn horizon: a customer without an order this long is lapsed."
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the report as one self-contained HTML page with charts, instead of printing it.",
)
@json_option
@pass_app
def report(
    app: App,
    since: str | None,
    until: str | None,
    campaign_id: str | None,
    horizon: timedelta,
    html_file: str | None,
    as_json: bool,
) -> None:
    """What each campaign did in a period, whether it worked, and the shop's retention.

    Per campaign: deliveries due (decided in the period), sent, held out, skipped by
    reason, pending and dead, and the cost where the provider sets `cost`.

    For campaigns with a [goal]: the share of contacted customers who did the goal event
    within `within` after their message, against the share of held-out customers (the
    control group) within `within` after the tick that held them out. The uplift is the
    difference, with a 95% interval (Newcombe's hybrid score interval); relative uplift,
    incremental conversions (uplift × contacted) and the cost of each. With fewer than
    30 in an arm, or fewer than 5 conversions, it says the sample is too small to tell.

    Retention figures (a customer is active when they ordered within the horizon):

    \b
      repeat purchase rate     customers with ≥ 2 orders / with ≥ 1 order, in the period
      churn rate               customers active at the start who are not at the end
      customer retention rate  (E − N) / S: S active at the start, E active at the end,
                               N those of E whose first order was in the period
      average order value      order total / orders
      purchase frequency       orders / customers who ordered
      customer lifetime value  average order value × purchase frequency / churn rate
      NPS                      % promoters (9–10) − % detractors (0–6), each contact's
                               latest `nps` answer in the period

    \b
    Examples:
      regard report
      regard report --since 2026-01-01 --until 2026-03-31 --campaign winback
      regard report --json > report.json
      regard report --html report.html
    """
    # imported when the command runs, not when `regard report --help` loads this module
    from regard.render.filters import regional_locale
    from regard.report import build_report
    from regard.report.text import report_lines

    start = parse_day(app, since, "--since")
    end = parse_day(app, until, "--until", end_of_day=True)
    campaigns = load_campaigns_for(app)
    try:
        data = build_report(
            app.store,
            app.config,
            campaigns,
            since=start,
            until=end,
            campaign=campaign_id,
            horizon=horizon,
        )
    except KeyError:
        raise click.BadParameter(
            f"no campaign {campaign_id!r} in {app.config.campaigns_dir} or the store",
            param_hint="--campaign",
        ) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    # money as the shop writes it: a Swiss shop's `de` reads CHF 145.00
    locale = regional_locale(app.config.locale, app.config.sender.country)
    if html_file:
        from regard.report.html import render_html  # only needed with --html

        page = render_html(data, locale, app.config.tz)
        try:
            Path(html_file).write_text(page, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--html {html_file}: cannot write: {exc.strerror or exc}") from None
    if as_json:
        echo_json(data)
        return
    if html_file:
        click.echo(f"Wrote {html_file}")
        return
    for line in report_lines(data, locale, app.config.tz):
        click.echo(line)


@click.command()
@click.option("--from", "start", required=True, metavar="D", help="First tick (ISO 8601).")
@click.option("--to", "end", required=True, metavar="D", help="Last tick at or before this.")
@duration_option("--every", "1d", "Time between two ticks.")
@click.option("--campaign", "campaign_id", metavar="ID", help="Only this campaign.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Processes replaying side by side, each a share of the contacts "
    "[default: one per core where contacts × days reach 25 million].",
)
@json_option
@pass_app
def simulate(
    app: App,
    start: str,
    end: str,
    every: timedelta,
    campaign_id: str | None,
    jobs: int | None,
    as_json: bool,
) -> None:
    """A backtest: what the campaigns would have done over a past period.

    Ticks at --from, --from + --every, … up to --to are replayed with the real engine on
    a scratch copy of the store; nothing is written to the store and no provider is
    called. Deliveries of the replayed campaigns decided from --from on are set aside
    first, so the period is decided afresh; earlier ones still count for caps and
    cooldowns. Shown per campaign and week: messages that would have gone out (with a
    sample of recipients), held out, skipped by reason, and their cost where the
    provider sets `cost`.

    \b
    Examples:
      regard simulate --from 2026-01-01 --to 2026-03-31
      regard simulate --from 2026-01-01 --to 2026-01-31 --every 1h --campaign winback --json
    """
    # imported when the command runs, not when `regard simulate --help` loads this module
    from regard.report.simulate import simulate as run_simulation
    from regard.report.simulate import simulation_lines

    first = parse_day(app, start, "--from")
    last = parse_day(app, end, "--to", end_of_day=True)
    assert first is not None and last is not None
    if last < first:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    if every <= timedelta(0):
        raise click.BadParameter("must be longer than 0s", param_hint="--every")
    campaigns = load_campaigns_for(app)
    if campaign_id is not None and campaign_id not in {c.id for c in campaigns}:
        raise click.BadParameter(
            f"no campaign {campaign_id!r} in {app.config.campaigns_dir}", param_hint="--campaign"
        )
    target = app.config.store_target
    app.close()  # the backup reads the file itself; nothing of ours holds it open
    result = run_simulation(
        target, app.config, campaigns, start=first, end=last, every=every,
        campaign=campaign_id, parts=jobs,
    )  # fmt: skip
    if as_json:
        echo_json(result)
        return
    for line in simulation_lines(result, app.config.locale):
        click.echo(line)
