"""``regard contacts show|unsubscribe|forget ID``.

(Library modules are imported inside the commands that use them: ``regard --help`` imports
every command module to list it, and stays fast.)
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import click

from regard.channels import CHANNELS
from regard.cli import App, echo_json, json_option, pass_app
from regard.errors import InputError
from regard.times import from_epoch, iso

DELIVERIES_SHOWN = 10


@click.group()
def contacts() -> None:
    """Look at one contact, unsubscribe them, or erase them.

    \b
      regard contacts show 1042
      regard contacts unsubscribe 1042 --channel sms
      regard contacts forget 1042
    """


@contacts.command()
@click.argument("contact_id", metavar="ID")
@json_option
@pass_app
def show(app: App, contact_id: str, as_json: bool) -> None:
    """The contact's fields, attributes and derived facts (order_count, total_spent, …),
    with their unsubscribes and latest deliveries.

    \b
      regard contacts show 1042
      regard contacts show 1042 --json
    """
    # imported when the command runs, not when `regard contacts --help` loads this module
    from regard.store.contacts import CONTACT_FIELDS, DERIVED_FACTS

    contacts = app.store.contacts
    contact = contacts.get(contact_id)
    attributes = contacts.attributes(contact_id)
    if contact is None or attributes is None:
        raise InputError(_unknown(app, contact_id))
    if as_json:
        data = {k: _plain(v) for k, v in contact.items()}
        data["attributes"] = attributes
        echo_json(data)
        return
    width = max(len(k) for k in (*CONTACT_FIELDS, *DERIVED_FACTS, *attributes))
    for key in CONTACT_FIELDS:
        click.echo(f"{key:<{width}}  {_human(contact.get(key))}")
    if attributes:
        click.echo("\nattributes")
        for key, value in attributes.items():
            click.echo(f"{key:<{width}}  {_human(value)}")
    click.echo("\nderived facts")
    for key in DERIVED_FACTS:
        click.echo(f"{key:<{width}}  {_human(contact.get(key))}")
    suppressions = app.store.suppressions.of(contact_id)
    click.echo("\nunsubscribed" if suppressions else "\nunsubscribed: no")
    for s in suppressions:
        channel = "all channels" if s["channel"] == "*" else s["channel"]
        click.echo(f"  {channel}: {s['reason']} ({_human(_instant(s['created_at']))})")
    rows = contacts.latest_deliveries(contact_id, DELIVERIES_SHOWN)
    click.echo(f"\nlatest deliveries: {len(rows) or 'none'}")
    for r in rows:
        why = f" ({r['reason']})" if r["reason"] else ""
        click.echo(
            f"  {_human(_instant(r['created_at']))}  {r['campaign']}  {r['occasion']}  "
            f"{r['channel']}  {r['state']}{why}  {r['id']}"
        )


@contacts.command()
@click.argument("contact_id", metavar="ID")
@click.option(
    "--channel",
    type=click.Choice(CHANNELS),
    default=None,
    help="Only this channel (default: every channel).",
)
@json_option
@pass_app
def unsubscribe(app: App, contact_id: str, channel: str | None, as_json: bool) -> None:
    """Stop sending to a contact: on one channel, or (default) on all of them.

    \b
      regard contacts unsubscribe 1042
      regard contacts unsubscribe 1042 --channel sms
    """
    added = app.store.suppressions.add(contact_id, channel or "*")
    if as_json:
        echo_json({"contact_id": contact_id, "channel": channel, "added": added})
        return
    what = f"the {channel} channel" if channel else "all channels"
    state = "unsubscribed from" if added else "was already unsubscribed from"
    click.echo(f"{contact_id} {state} {what}")


@contacts.command()
@click.argument("contact_id", metavar="ID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@json_option
@pass_app
def forget(app: App, contact_id: str, yes: bool, as_json: bool) -> None:
    """Erase a contact's personal data everywhere (GDPR erasure).

    The contact row goes; events and deliveries stay only as anonymous counts; rendered
    messages, outbox lines and addresses are erased; unsubscribes are kept as hashes.
    Rows of this id in later imports are skipped.

    On a terminal it asks first; `--yes` (or a script, with no terminal) does not.

    \b
      regard contacts forget 1042
      regard contacts forget 1042 --yes
    """
    # imported when the command runs, not when `regard contacts --help` loads this module
    from regard.forget import forget_contact

    if not yes and not as_json and sys.stdin.isatty():
        click.confirm(
            f"Erase contact {contact_id}'s personal data for good (it cannot be undone)?",
            abort=True,
        )

    result = forget_contact(app.store, app.config, contact_id)
    if as_json:
        echo_json(asdict(result))
        return
    if result.already_forgotten:
        click.echo(f"{contact_id} was already forgotten")
        return
    click.echo(
        f"forgot {contact_id}: {result.events} events and {result.deliveries} deliveries "
        f"anonymised ({result.cancelled} unsent ones cancelled), {result.suppressions} "
        f"unsubscribes hashed, {result.outbox_lines} outbox lines removed"
    )
    if not result.wal_truncated:
        click.echo(
            "warning: another process kept the write-ahead log busy; it is cleared at the "
            "next checkpoint (stop the daemon and run forget again to be sure)",
            err=True,
        )


def _unknown(app: App, contact_id: str) -> str:
    forgotten_at = app.store.contacts.forgotten_at(contact_id)
    if forgotten_at is not None:
        return f"contact {contact_id!r} was forgotten ({_human(_instant(forgotten_at))})"
    return f"unknown contact {contact_id!r}"


def _instant(epoch: int | None) -> datetime | None:
    return None if epoch is None else from_epoch(epoch)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _human(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(_plain(value))
