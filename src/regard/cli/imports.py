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
    """Bring contacts and events into the store (CSV, JSONL or a JSON array; upsert by id).

    \b
      regard import contacts customers.csv
      regard import events orders.jsonl --skip-invalid
      regard import contacts kunden.csv --map "Kundennr=id,E-Mail=email"
      regard import contacts customers_export.csv --format shopify
      regard import events orders.json --format woocommerce
      shop-export | regard import events -
    """


def _options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.argument("file", metavar="FILE")(fn)
    fn = click.option(
        "--skip-invalid",
        is_flag=True,
        help="Drop bad optional fields, skip rows with a bad required field, list both "
        "(default: a bad row rejects the file).",
    )(fn)
    fn = click.option(
        "--format",
        "format_name",
        type=click.Choice(["plain", "shopify", "woocommerce"]),
        default=None,
        help="The file's layout: plain (regard's fields; the default, or [import] format), "
        "shopify (its customer or orders CSV export), woocommerce (its REST JSON arrays).",
    )(fn)
    fn = click.option(
        "--map",
        "mapping",
        metavar="COLUMN=FIELD,…",
        default=None,
        help='Rename columns of the plain format, e.g. "Kundennr=id,E-Mail=email" '
        "(adds to [import] map).",
    )(fn)
    return json_option(fn)


@import_group.command("contacts")
@_options
@pass_app
def contacts(
    app: App,
    file: str,
    skip_invalid: bool,
    format_name: str | None,
    mapping: str | None,
    as_json: bool,
) -> None:
    """Import contacts from FILE (.csv, .jsonl, .json, or - for JSONL on stdin).

    A file with a bad row is rejected whole (every bad row listed, exit 1) unless
    --skip-invalid. Importing the same file twice changes nothing.

    \b
      regard import contacts customers.csv
      regard import contacts customers.jsonl --json
    """
    from regard.store.importer import import_contacts

    _run(app, "contacts", import_contacts, file, skip_invalid, format_name, mapping, as_json)


@import_group.command("events")
@_options
@pass_app
def events(
    app: App,
    file: str,
    skip_invalid: bool,
    format_name: str | None,
    mapping: str | None,
    as_json: bool,
) -> None:
    """Import events (orders, sign-ups, NPS answers, …) from FILE.

    Every event's contact_id must be a contact in the store. The contacts' derived facts
    (order_count, total_spent, last_order_at, …) are brought up to date in the same
    transaction.

    \b
      regard import events orders.csv
      regard import events - < events.jsonl
      regard import events orders_export.csv --format shopify

    An import that adds events too late for an enabled campaign (due + max_lateness
    already past) says how many, per campaign: those events get no message.
    """
    from regard.store.importer import import_events

    _run(app, "events", import_events, file, skip_invalid, format_name, mapping, as_json)


def parse_map(text: str) -> dict[str, str]:
    """``"Kundennr=id,E-Mail=email"`` → ``{"Kundennr": "id", "E-Mail": "email"}``."""
    mapping: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        column, sep, field = part.partition("=")
        if not sep or not column.strip() or not field.strip():
            raise click.BadParameter(
                f"{part.strip()!r}: write COLUMN=FIELD, e.g. Kundennr=id", param_hint="--map"
            )
        mapping[column.strip()] = field.strip()
    return mapping


def _run(
    app: App,
    kind: str,
    importer: Callable[..., ImportResult],
    file: str,
    skip_invalid: bool,
    format_name: str | None,
    mapping: str | None,
    as_json: bool,
) -> None:
    from regard.campaigns.lateness import late_events
    from regard.errors import InputError
    from regard.sources.formats import row_format
    from regard.store.importer import RejectedFile

    config = app.config
    name = format_name or config.imports.format
    rename = dict(config.imports.map) if name == "plain" else {}
    if mapping is not None:
        if name != "plain":
            raise click.UsageError(f"--map renames columns of the plain format, not of {name}")
        rename.update(parse_map(mapping))
    store = app.store
    try:
        with _progress(file) as progress:
            result = importer(
                store,
                config,
                file,
                skip_invalid=skip_invalid,
                progress=progress,
                rename=rename,
                format=row_format(name),
            )
    except RejectedFile as rejected:
        # one bad field per line, each starting with FILE:LINE, then the verdict
        for problem in rejected.problems:
            click.echo(problem, err=True)
        raise InputError(rejected.summary) from None
    history: dict[str, Any] | None = None
    warnings: list[str] = []
    if kind == "events":
        result.late = late_events(store, config, result)
        history, warnings = _history(app)
    if as_json:
        answer = result.as_dict()
        if history is not None:
            answer["history"] = history
            answer["warnings"] = [*answer.get("warnings", []), *warnings]
        echo_json(answer)
        return
    for problem in result.problems:
        click.echo(problem, err=True)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    summary = (
        f"{result.file}: {result.rows} rows: {result.inserted} new, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )
    if result.invalid:
        summary += f", {result.invalid} invalid (not imported)"
    if result.dropped:
        summary += f", {result.dropped} bad optional fields dropped"
    click.echo(summary)
    if result.ignored:
        click.echo(f"ignored: {result.ignored} (orders not paid yet, or without a customer)")
    if result.skipped_forgotten:
        click.echo(f"skipped: {result.skipped_forgotten} rows of forgotten contacts")
    for campaign, count in result.late.items():
        events = "event" if count == 1 else "events"
        click.echo(
            f"too late: {count} {events} for campaign {campaign} (due + max_lateness already "
            "past: they get no message)"
        )
    if history is not None:
        from regard.campaigns.history import describe_history

        click.echo(f"order history: {describe_history(history)}")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _history(app: App) -> tuple[dict[str, Any], list[str]]:
    """How far back the store's orders reach now (``history`` of ``--json``), and the
    warning for enabled campaigns that count orders on a history that may be partial."""
    from regard.campaigns.history import history_json, history_warnings
    from regard.campaigns.loader import load_campaigns
    from regard.store.history import History
    from regard.times import now_instant

    now = now_instant()
    history = History(app.store).orders(now)
    config = app.config
    enabled = load_campaigns(config).enabled if config.campaigns_dir.is_dir() else []
    return history_json(history), history_warnings(enabled, history, now)


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
