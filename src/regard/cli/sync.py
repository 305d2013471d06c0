"""``regard sync SOURCE [--full]``."""

from __future__ import annotations

import click

from regard.cli import App, echo_json, json_option, pass_app


@click.command("sync")
@click.argument("source")
@click.option("--full", is_flag=True, help="Everything, not only what changed since the last sync.")
@json_option
@pass_app
def sync(app: App, source: str, full: bool, as_json: bool) -> None:
    """Pull the shop's customers and orders of [sources.SOURCE] through its API.

    From where the last sync stopped; --full reads everything again (what is stored
    already is not written twice). WooCommerce: its REST API v3 (url, consumer_key,
    consumer_secret); Shopify: its Admin GraphQL API (shop, token).

    \b
      regard sync shop
      regard sync shop --full --json
    """
    from regard.sources import SYNC_RUNNERS
    from regard.sources.sync import sync_source

    result = sync_source(app.store, app.config, source, SYNC_RUNNERS, full=full)
    if as_json:
        echo_json(result.as_dict())
        return
    for problem in result.problems:
        click.echo(problem, err=True)
    parts = [
        f"{resource}: {counts['pages']} {'page' if counts['pages'] == 1 else 'pages'}"
        for resource, counts in result.resources.items()
    ]
    click.echo(
        f"{source}: {result.contacts} contacts, {result.events} events"
        + (f" ({', '.join(parts)})" if parts else "")
        + (f"; {result.retries} requests retried" if result.retries else "")
    )
