"""``regard migrate-store --to TARGET``: the store copied to another, checked row for row.

(Library modules are imported inside the command: ``regard --help`` imports every command
module to list it, and stays fast.)
"""

from __future__ import annotations

import click

from regard.cli import App, echo_json, json_option, pass_app


@click.command("migrate-store")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="TARGET",
    help="The new store: a postgresql:// URL (${NAME} is read from the environment), "
    "or a SQLite file.",
)
@json_option
@pass_app
def migrate_store(app: App, target: str, as_json: bool) -> None:
    """Copy the config's store to TARGET, checked row for row.

    SQLite → PostgreSQL, PostgreSQL → SQLite (or file to file). TARGET must be empty (a
    new SQLite file, or a PostgreSQL database with nothing in it); the copy is one
    transaction there, and each table's row count and digest must match the source's, or
    nothing is kept. Stop the daemons first. The config is not changed: point `store` at
    TARGET afterwards.

    \b
    Examples:
      export REGARD_PG_URL=postgresql://regard:secret@db.example.com:5432/regard
      regard migrate-store --to '${REGARD_PG_URL}'
      regard migrate-store --to backup.db      # from PostgreSQL back to a SQLite file
    """
    from pathlib import Path

    from regard.cli.tables import columns
    from regard.config import check_store_url, is_store_url, substitute_env
    from regard.errors import ConfigError
    from regard.store.copy import BATCH, migrate
    from regard.times import now_instant

    try:
        to = str(substitute_env(target, Path("--to"), ("to",)))
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--to: to: "), param_hint="--to") from None
    if is_store_url(to):
        try:
            check_store_url(to)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--to") from None
    destination = to if is_store_url(to) else Path(to)
    source = app.config.store_target

    def progress(table: str, rows: int) -> None:
        if not as_json and rows and rows % BATCH == 0:  # a long table, as it goes
            click.echo(f"  {table}: {rows} rows so far", err=True)

    result = migrate(source, destination, now_instant(), progress)
    if as_json:
        echo_json(result.as_dict())
        return
    click.echo(
        f"Copied {result.source} to {result.target}: {len(result.tables)} tables, "
        f"{result.rows} rows, checked row for row (counts and digests match)."
    )
    rows = [(t.table, t.rows, t.digest[:16]) for t in result.tables]
    for line in columns(["table", "rows", "digest"], rows):
        click.echo(f"  {line}")
    if is_store_url(to):
        hint = 'store = "${REGARD_PG_URL}" (the URL, with its password, in the environment)'
    else:
        hint = f'store = "{destination}"'
    click.echo(f"Next: stop using the old store and set {hint} in {app.config.path}.")
