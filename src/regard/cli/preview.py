"""``regard preview``: one campaign's message for one contact, exactly as it would be sent,
or the precise reason it would not be.

(Library modules are imported inside the commands that use them: ``regard --help`` imports
every command module to list it, and stays fast.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import click

from regard.cli import App, at_option, echo_json, json_option, pass_app, resolve_at
from regard.errors import InputError, TemplateError

if TYPE_CHECKING:
    from regard.engine import Explanation


@click.command()
@click.argument("campaign_id", metavar="CAMPAIGN")
@click.argument("contact_id")
@at_option
@click.option("--event", "event_id", default=None, metavar="EVENT_ID",
              help="The occasion of this event (event and post_purchase campaigns).")  # fmt: skip
@json_option
@pass_app
def preview(
    app: App, campaign_id: str, contact_id: str, at: str | None, event_id: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Show CAMPAIGN's message for CONTACT_ID as a tick now (or at T) would send it:
    subject, text, html, and card text wrapped as on the card. When it would not be sent,
    say why: not due (and when it is), not in the audience, no consent, no address,
    unsubscribed, capped, held out, outside starts/ends, or decided earlier. A template
    that does not render (an unknown variable, a card text too long) is exit status 1.

    \b
    Examples:
      regard preview thank-you 1042
      regard preview birthday 1042 --at 2026-05-17T09:00
      regard preview nps-apology 1042 --event nps-77 --json
    """
    from regard.campaigns.loader import load_campaigns
    from regard.engine import explain

    when = resolve_at(app, at)
    loaded = load_campaigns(app.config)
    campaign = loaded.get(campaign_id)
    if campaign is None:
        problems = [p for p in loaded.errors if campaign_id in p]
        if problems:
            raise InputError("\n".join(problems))
        known = ", ".join(c.id for c in loaded.campaigns) or "none"
        raise InputError(
            f"no campaign {campaign_id!r} in {app.config.campaigns_dir} (known: {known})"
        )
    answer = explain(app.store, app.config, campaign, contact_id, when, event_id, campaigns=loaded)
    if as_json:
        echo_json(answer.as_json())
    else:
        table = app.config.providers.get(campaign.provider)
        price = (table.cost, app.config.currency) if table and table.cost is not None else None
        for line in describe(answer, campaign.channel, price):
            click.echo(line)
    if answer.reason == "render_error":
        # a template that does not render is bad input (exit 1), even where the answer
        # is already out; the error names the file, line and field
        raise TemplateError(answer.error or answer.detail)


def describe(
    answer: Explanation, channel: str, price: tuple[Decimal, str] | None = None
) -> list[str]:
    """The preview for people: the message as it would go out, or why not. ``price``: the
    provider's cost (for SMS, per segment) and currency."""
    from regard.render import address_line, wrap_card
    from regard.times import iso

    lines = [f"{answer.campaign} → {answer.contact_id} at {iso(answer.at)}: {answer.detail}"]
    message = answer.message
    if answer.reason == "not_due" and answer.due_at is not None:
        event = f" --event {answer.event_id}" if answer.event_id else ""
        lines.append(
            f"  the message as it will go out: regard preview {answer.campaign} "
            f"{answer.contact_id} --at {iso(answer.due_at)}{event}"
        )
    if not message:
        return lines
    to = message.get("to")
    if isinstance(to, dict):
        to = address_line(to)
    lines.append("")
    lines.append(f"To:      {to if to is not None else '(webhook)'}")
    if message.get("subject"):
        lines.append(f"Subject: {message['subject']}")
    if channel == "card":
        card = message.get("card") or {}
        lines.append(f"Card:    design {card.get('design') or '-'}, font {card.get('font') or '-'}")
        lines += ["", wrap_card(message.get("text") or "")]
        return lines
    if channel == "sms" and message.get("text"):
        from regard.channels.sms import describe as sms_length
        from regard.channels.sms import segments

        cost = ""
        if price is not None:
            each = price[0] * segments(message["text"]).segments
            cost = f"; {each:.4g} {price[1]} per message"
        lines.append(f"SMS:     {sms_length(message['text'])}{cost}")
    lines += ["", message.get("text") or ""]
    if message.get("html"):
        lines += ["", "--- html ---", message["html"]]
    return lines
