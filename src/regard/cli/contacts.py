"""``regard contacts show|unsubscribe|resubscribe|forget``.

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
    """Look at one contact, unsubscribe or resubscribe them, or erase them.

    \b
      regard contacts show 1042
      regard contacts unsubscribe 1042 --channel sms
      regard contacts unsubscribe anna@example.com
      regard contacts resubscribe +4917112345678 --channel sms
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
        for kind, channels in app.store.suppressions.summary(contact_id).items():
            data[kind] = {channel: iso(at) for channel, at in channels.items()}
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
    for kind in ("unsubscribed", "bounced"):
        of_kind = [s for s in suppressions if s["kind"] == kind]
        click.echo(f"\n{kind}" if of_kind else f"\n{kind}: no")
        for s in of_kind:
            channel = "all channels" if s["channel"] == "*" else s["channel"]
            source = f", {s['source']}" if s["source"] else ""
            click.echo(f"  {channel}: {s['reason']} ({_human(_instant(s['created_at']))}{source})")
    rows = contacts.latest_deliveries(contact_id, DELIVERIES_SHOWN)
    click.echo(f"\nlatest deliveries: {len(rows) or 'none'}")
    for r in rows:
        why = f" ({r['reason']})" if r["reason"] else ""
        click.echo(
            f"  {_human(_instant(r['created_at']))}  {r['campaign']}  {r['occasion']}  "
            f"{r['channel']}  {r['state']}{why}  {r['id']}"
        )


_channel_option = click.option(
    "--channel",
    type=click.Choice(CHANNELS),
    default=None,
    help="Only this channel (default: every channel).",
)


@contacts.command()
@click.argument("key", metavar="ID|EMAIL|PHONE")
@_channel_option
@json_option
@pass_app
def unsubscribe(app: App, key: str, channel: str | None, as_json: bool) -> None:
    """Stop marketing to a contact: on one channel, or (default) on all of them.

    The contact is found by id, e-mail or phone. Service messages (campaigns with
    purpose = "service") still go; bounced addresses are another matter (see `show`).

    \b
      regard contacts unsubscribe 1042
      regard contacts unsubscribe anna@example.com --channel email
      regard contacts unsubscribe 1042 --channel sms
    """
    contact_id = _find(app, key)
    added = app.store.suppressions.add(contact_id, channel or "*", source="cli")
    if as_json:
        echo_json({"contact_id": contact_id, "channel": channel, "added": added})
        return
    what = f"the {channel} channel" if channel else "all channels"
    state = "unsubscribed from" if added else "was already unsubscribed from"
    click.echo(f"{contact_id} {state} {what}")


@contacts.command()
@click.argument("key", metavar="ID|EMAIL|PHONE")
@_channel_option
@json_option
@pass_app
def resubscribe(app: App, key: str, channel: str | None, as_json: bool) -> None:
    """Undo an unsubscribe: marketing may reach the contact again on one channel, or
    (default) on all of them (consent still applies). A bounced address stays bounced.

    \b
      regard contacts resubscribe 1042
      regard contacts resubscribe +4917112345678 --channel sms
    """
    contact_id = _find(app, key)
    removed = app.store.suppressions.remove(contact_id, channel or "*")
    if as_json:
        echo_json({"contact_id": contact_id, "channel": channel, "removed": removed})
        return
    what = f"the {channel} channel" if channel else "all channels"
    state = "resubscribed to" if removed else "was not unsubscribed from"
    click.echo(f"{contact_id} {state} {what}")


def _find(app: App, key: str) -> str:
    """The id of the contact ``key`` (an id, e-mail or phone) names; InputError if none."""
    found = app.store.contacts.find(key)
    if found is None:
        raise InputError(
            _unknown(app, key).replace("unknown contact", "no contact with id or address")
        )
    return found


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
    if result.until_vacuum:
        click.echo(
            "note: PostgreSQL keeps the old versions of the erased rows in the files of "
            f"{', '.join(result.until_vacuum)} until VACUUM reclaims them (autovacuum does "
            f"so on its own; `VACUUM FULL {', '.join(result.until_vacuum)}` frees them now), "
            "and in its write-ahead log, archives, replicas and backups until those expire"
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
