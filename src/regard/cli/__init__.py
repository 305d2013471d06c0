"""The ``regard`` command: a thin shell over the library.

Each command group lives in its own module and is loaded only when used, so ``regard
--help`` stays fast. Commands parse, call one library function, and format; RegardError
becomes a message on stderr and the documented exit status (1 bad input, 2 usage,
3 deliveries failed).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from regard import __version__
from regard.errors import RegardError

if TYPE_CHECKING:
    from regard.config import Config
    from regard.store import Store
    from regard.times import Instant

# command name → "module:attribute"; one module per group of commands
COMMANDS: dict[str, str] = {
    "init": "regard.cli.workspace:init",
    "demo": "regard.cli.demo:demo",
    "import": "regard.cli.imports:import_group",
    "sync": "regard.cli.sync:sync",
    "contacts": "regard.cli.contacts:contacts",
    "check": "regard.cli.campaigns:check",
    "campaigns": "regard.cli.campaigns:campaigns",
    "preview": "regard.cli.preview:preview",
    "plan": "regard.cli.plan:plan",
    "run": "regard.cli.run:run",
    "daemon": "regard.cli.daemon:daemon",
    "serve": "regard.cli.serve:serve",
    "status": "regard.cli.daemon:status",
    "deliveries": "regard.cli.deliveries:deliveries",
    "report": "regard.cli.report:report",
    "simulate": "regard.cli.report:simulate",
    "migrate-store": "regard.cli.store:migrate_store",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in COMMANDS if self._load(n) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that command group is not part of this build
                return None
            raise
        command = getattr(module, attr, None)
        if not isinstance(command, click.Command):
            return None
        if name not in NO_CONFIG:
            _accept_config(command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RegardError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            # a full disk or a damaged page met while reading (writes say so themselves)
            from regard.store import fault_reason

            reason = fault_reason(exc)
            app = ctx.find_object(App)
            if reason is None or app is None:
                raise
            click.echo(f"error: {app.store_path()}: {reason}", err=True)
            ctx.exit(1)


# commands that make a workspace rather than read one
NO_CONFIG = frozenset({"init", "demo"})


def _remember_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    app = ctx.find_object(App)
    if value is not None and app is not None:
        app.config_path = value


def _accept_config(command: click.Command) -> None:
    """``--config`` is global: accepted after the command too (``regard run --config x``)."""
    if not any(param.name == "config" for param in command.params):
        command.params.append(
            click.Option(
                ["--config"],
                type=click.Path(dir_okay=False),
                expose_value=False,
                callback=_remember_config,
                help="The config file (the same as `regard --config PATH`).",
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_config(sub)


class App:
    """What every command shares: the config path, and the config and store, opened lazily."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._store: Store | None = None
        self._created_store = False

    @property
    def config(self) -> Config:
        if self._config is None:
            # imported on first use: `regard --help` and `regard init` never load them
            from regard.workspace import load_config

            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from regard.store import open_store

            target = self.config.store_target
            # a database server's store is never removed; a SQLite file made just now is
            self._created_store = not isinstance(target, str) and not target.exists()
            self._store = open_store(target)
            # every sum of amounts converts with the config's [currencies] as it is now
            self._store.contacts.use_rates(self.config.currencies)
        return self._store

    def store_path(self) -> str:
        """The store's path, as far as it is known (for an error about it)."""
        if self._store is not None:
            return self._store.label
        return self._config.store_label if self._config is not None else "the store"

    def close(self) -> None:
        if self._store is not None:
            if self._created_store:
                # a command that found no store and wrote nothing to it (it only reads, or
                # its import failed) leaves none behind: the first import or run makes it
                from regard.store import remove_blank

                remove_blank(self._store)
            else:
                self._store.close()
            self._store = None


pass_app = click.make_pass_decorator(App)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="regard")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The config file (default: $REGARD_CONFIG, else ./regard.toml).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """regard turns one-off buyers into regulars.

    It keeps your customers and their orders in a SQLite store, evaluates retention
    campaigns written as TOML files, renders each message personally and delivers it
    (e-mail, SMS, webhook, handwritten card) exactly once per occasion.

    \b
    Start here:
      regard demo                 a demo shop, several months of campaigns, in seconds
      regard init myshop          a starter workspace to make your own
      regard import contacts customers.csv
      regard preview thank-you 1042
      regard run                  one tick: evaluate campaigns, send what is due
    """
    app = App(config_path)
    ctx.obj = app
    ctx.call_on_close(app.close)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--json``: print one JSON document on stdout, nothing else."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(fn)


def echo_json(data: Any) -> None:
    """Print ``data`` as the command's single JSON document."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    from regard.times import iso

    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def at_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--at T``: act as if it were T (ISO 8601; naive = the config's time zone)."""
    return click.option(
        "--at",
        "at",
        default=None,
        metavar="T",
        help="Act as if it were T (ISO 8601; naive times are in the config's time zone).",
    )(fn)


def resolve_at(app: App, at: str | None) -> Instant:
    """The instant a command acts at: ``--at`` or now. Converted here, once, it is what
    the command passes on (:class:`regard.times.Instant`)."""
    from regard.times import now_instant, parse_instant, to_epoch

    if at is None:
        return now_instant()
    try:
        return to_epoch(parse_instant(at, app.config.tz))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None


def main() -> None:
    """Entry point of the ``regard`` console script."""
    cli.main(prog_name="regard")
