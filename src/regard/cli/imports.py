"""``regard import contacts|events FILE``.

(Library modules are imported inside the commands that use them: ``regard --help`` imports
every command module to list it, and stays fast.)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from regard.cli import App, echo_json, json_option, pass_app

if TYPE_CHECKING:
    from regard.store.importer import ImportResult


@click.group("import")
def import_group() -> None:
    """Bring contacts and events into the store (CSV or JSONL; upsert by id).

    \b
      regard import contacts customers.csv
      regard import events orders.jsonl --skip-invalid
      shop-export | regard import events -
    """


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.argument("file", metavar="FILE")(fn)
    fn = click.option(
        "--skip-invalid",
        is_flag=True,
        help="Import the good rows and list the bad ones (default: a bad row rejects the file).",
    )(fn)
    return json_option(fn)


@import_group.command("contacts")
@_options
@pass_app
def contacts(app: App, file: str, skip_invalid: bool, as_json: bool) -> None:
    """Import contacts from FILE (.csv, .jsonl, or - for JSONL on stdin).

    A file with a bad row is rejected whole (every bad row listed, exit 1) unless
    --skip-invalid. Importing the same file twice changes nothing.

    \b
      regard import contacts customers.csv
      regard import contacts customers.jsonl --json
    """
    from regard.store.importer import import_contacts

    _run(app, import_contacts, file, skip_invalid, as_json)


@import_group.command("events")
@_options
@pass_app
def events(app: App, file: str, skip_invalid: bool, as_json: bool) -> None:
    """Import events (orders, sign-ups, NPS answers, …) from FILE.

    Every event's contact_id must be a contact in the store. The contacts' derived facts
    (order_count, total_spent, last_order_at, …) are brought up to date in the same
    transaction.

    \b
      regard import events orders.csv
      regard import events - < events.jsonl
    """
    from regard.store.importer import import_events

    _run(app, import_events, file, skip_invalid, as_json)


def _run(
    app: App,
    importer: Callable[..., ImportResult],
    file: str,
    skip_invalid: bool,
    as_json: bool,
) -> None:
    from regard.errors import InputError
    from regard.store.importer import RejectedFile

    config, store = app.config, app.store
    try:
        with _progress(file) as progress:
            result = importer(store, config, file, skip_invalid=skip_invalid, progress=progress)
    except RejectedFile as rejected:
        # one bad field per line, each starting with FILE:LINE, then the verdict
        for problem in rejected.problems:
            click.echo(problem, err=True)
        raise InputError(rejected.summary) from None
    if as_json:
        echo_json(result.as_dict())
        return
    for problem in result.problems:
        click.echo(problem, err=True)
    summary = (
        f"{result.file}: {result.rows} rows: {result.inserted} new, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )
    if result.invalid:
        summary += f", {result.invalid} invalid (not imported)"
    click.echo(summary)
    if result.skipped_forgotten:
        click.echo(f"skipped: {result.skipped_forgotten} rows of forgotten contacts")


@contextlib.contextmanager
def _progress(file: str) -> Iterator[object]:
    """A progress bar on stderr, only when stderr is a terminal and the size is known."""
    from pathlib import Path

    size = Path(file).stat().st_size if file != "-" and Path(file).is_file() else 0
    if not size or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=size, label="importing", file=sys.stderr) as bar:
        yield bar.update
