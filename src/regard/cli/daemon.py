"""``regard daemon`` and ``regard status``: run on a server, and tell whether it does.

(Library modules are imported inside the commands that use them: ``regard --help`` imports
every command module to list it, and stays fast.)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import click

from regard.cli import App, echo_json, json_option, pass_app
from regard.times import now_instant, parse_duration

if TYPE_CHECKING:
    from regard.daemon.logs import LogFormat


@click.command()
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people and the journal, json for one JSON object a line.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="debug adds the scheduler's own records.",
)
@pass_app
def daemon(app: App, log_format: LogFormat, log_level: str) -> None:
    """Tick every scheduler.interval until SIGTERM or SIGINT.

    Each tick re-reads the campaigns and templates, evaluates them and sends what is due;
    one log line per tick and per failure goes to stderr. On SIGTERM/SIGINT no new
    deliveries are claimed, requests in flight finish, and it exits 0. On a SQLite store
    one daemon runs per store file; on PostgreSQL any number, on one machine or many (one
    tick evaluates at a time, dispatch is shared). `regard run` from cron is safe beside.

    \b
    Examples:
      regard daemon
      regard --config /etc/regard/regard.toml daemon --log-format json
      systemctl start regard      # its unit: share/regard/systemd/regard.service
                                  # in regard's virtualenv
    """
    # imported when the command runs, not when `regard daemon --help` loads this module
    from regard.daemon import run_daemon

    level = getattr(logging, log_level.upper())
    code = run_daemon(app.config_path, log_format=log_format, log_level=level)
    click.get_current_context().exit(code)


@click.command()
@click.option(
    "--max-age",
    metavar="DURATION",
    default=None,
    help="Unhealthy when the last tick is older than this (default: three daemon intervals; "
    "also checks cron setups).",
)
@click.option(
    "--dead",
    "dead_letters",
    type=click.IntRange(0),
    default=5,
    show_default=True,
    help="How many of the latest dead letters to show.",
)
@json_option
@pass_app
def status(app: App, max_age: str | None, dead_letters: int, as_json: bool) -> None:
    """The last tick and its result, the backlog, dead letters, the next tick, and every
    daemon running on the store.

    Exits 1 when the daemon's last tick is older than three intervals (or --max-age),
    or when nothing has ever ticked on the store, so a monitoring check can call it.
    With only `regard run` ticking (cron), it exits 0 unless --max-age is given.

    \b
    Examples:
      regard status
      regard status --json | jq .backlog
      regard status --max-age 2h     # cron: alert when no run for two hours
    """
    # imported when the command runs, not when `regard status --help` loads this module
    from regard.daemon.status import build_status

    age = None
    if max_age is not None:
        try:
            age = int(parse_duration(max_age).total_seconds())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--max-age") from None
    report = build_status(
        app.store, app.config, now_instant(), max_age=age, dead_letters=dead_letters
    )
    if as_json:
        echo_json(report)
    else:
        click.echo(format_status(report))
    if not report["healthy"]:
        click.get_current_context().exit(1)


def format_status(report: dict[str, Any]) -> str:
    """The status report for a person."""
    from regard.cli.tables import printable
    from regard.daemon.summary import tick_facts  # the daemon package, only when it runs

    lines = [f"Daemon:       {_daemon_line(report)}"]
    live = report.get("daemons") or []
    if len(live) > 1 or (live and report["daemon"] and live[0]["pid"] != report["daemon"]["pid"]):
        lines.append(f"Daemons:      {len(live)} running on this store")
        for row in live:
            lines.append(
                f"  pid {row['pid']} on {row['host']}, every {row['interval']}, since "
                f"{row['started_at']}, last heartbeat {row['heartbeat_at']}, {row['ticks']} ticks"
            )
    tick = report["last_tick"]
    if tick is None:
        lines.append("Last tick:    none yet")
    else:
        facts = tick_facts(tick["result"])
        enqueued = ", ".join(f"{n} {s}" for s, n in sorted(facts["enqueued"].items())) or "none"
        took = {
            "running": "still running",
            "interrupted": "never finished: its process is gone (killed?)",
        }.get(tick.get("state", ""), f"took {tick['duration']}s")
        lines.append(
            f"Last tick:    {tick['at']} ({tick['kind']}, {took}): evaluated {facts['evaluated']}, "
            f"enqueued {enqueued}; sent {facts['sent']}, to retry {facts['retried']}, "
            f"failed {facts['failed']}"
        )
    lines.append(f"Next tick:    {report['next_tick'] or '-'}")
    parts = []
    for state, by_provider in report["backlog"].items():
        total = sum(by_provider.values())
        detail = ", ".join(f"{p} {n}" for p, n in by_provider.items())
        parts.append(f"{state} {total}" + (f" ({detail})" if detail else ""))
    lines.append(f"Backlog:      {'; '.join(parts)}")
    for failing in report.get("providers_failing", []):
        lines.append(
            f"Failing:      provider {failing['provider']} since {failing['since']} "
            f"(last {failing['last_at']}), its deliveries wait: {failing['reason']}"
        )
    dead = report["dead_letters"]
    lines.append(f"Dead letters: {dead['count']}")
    for letter in dead["latest"]:
        lines.append(
            f"  {letter['dead_at']} {letter['delivery_id']} {letter['campaign']} → "
            f"{letter['contact_id']} via {letter['provider']}: {letter['reason']}"
        )
    for name, source in report.get("sources", {}).items():
        last = (
            f"last {source['last_at']} ({source['last_topic']})"
            if source["last_at"]
            else "nothing received yet"
        )
        lines.append(f"Source:       {name} ({source['type']}): {last}, {source['today']} today")
        for resource, synced in (source.get("sync") or {}).items():
            lines.append(
                f"  synced {resource} at {synced['synced_at']}: {synced['contacts']} contacts, "
                f"{synced['events']} events"
            )
    health = "OK" if report["healthy"] else f"UNHEALTHY: {report['problem']}"
    lines.append(f"Health:       {health}")
    # ids, reasons and names come from files and services: none may start a line of its own
    return "\n".join(printable(line) for line in lines)


def _daemon_line(report: dict[str, Any]) -> str:
    record = report["daemon"]
    if record is None:
        return "never ran on this store" + (
            " (ticks come from `regard run`)" if report["mode"] == "cron" else ""
        )
    where = f"pid {record['pid']} on {record['host']}, every {record['interval']}"
    if record["stopped_at"]:
        return f"stopped cleanly at {record['stopped_at']} ({where})"
    state = "running" if report["healthy"] else "not ticking"
    return f"{state}, {where}, since {record['started_at']}, {record['ticks']} ticks"
