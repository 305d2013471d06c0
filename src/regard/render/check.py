"""``regard check``: every campaign and template, rendered against sample contacts and
against the store's own.

Each template file is compiled (``_`` layouts and partials too, though they are no messages);
each valid campaign's template is rendered in every locale it has for a contact with every
field and for one with only the bare minimum (no names, no company, no phone), with a sample
event where the trigger has one; then for up to :data:`REAL_SAMPLE` of the store's own
contacts in its audience, each with its latest event that the trigger matches (a real order
has the properties a real shop sends, ``items`` or not). A template that prints a field
without checking it first fails here, not in a customer's inbox.

Then it asks the store what the campaigns will meet (read-only, SQLite files only): how
many contacts each campaign can reach today (its audience, with the channel's address,
with consent for marketing, not unsubscribed or bounced), and how far back the order
history reaches.

Warnings do not fail the check (exit status 0, ``ok`` true): the placeholder sender that
``regard init`` writes; an empty store; an enabled campaign that reaches no contact today;
campaigns counting orders (``nth``, milestones) on an order history that may be partial.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regard.campaigns.history import history_json, history_warnings
from regard.campaigns.journeys import journeys
from regard.campaigns.loader import load_campaigns
from regard.campaigns.model import (
    Campaign,
)
from regard.channels import sms
from regard.errors import TemplateError
from regard.render.environment import SUFFIX, is_message_file, pick_template, template_files
from regard.render.isolation import render_message
from regard.render.message import templates_for
from regard.render.unsubscribe import SAMPLE_LINKS as LINKS
from regard.render.unsubscribe import check_notes
from regard.store.contacts import read_contact_sample
from regard.store.history import Reach, read_order_history, read_reach
from regard.store.samples import RealSample, read_real_sample
from regard.times import to_epoch, utcnow

REAL_SAMPLE = 20  # of the store's own contacts, per campaign
# what `regard init` writes into [sender]: a shop that kept it sends mail as nobody
PLACEHOLDER_SENDER = {"name": ("Mein Laden",), "email": ("example.com",)}

if TYPE_CHECKING:
    from regard.config import Config


@dataclass
class CheckResult:
    """What ``check`` looked at and every problem it found."""

    campaigns: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    renders: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # not problems: the footer, warnings
    purposes: dict[str, str] = field(default_factory=dict)  # campaign id → its purpose
    layouts: list[str] = field(default_factory=list)  # _ files: layouts and partials
    real_renders: int = 0  # of those renders, against the store's own contacts
    warnings: list[str] = field(default_factory=list)
    # SMS campaigns: the longest sample text's segments and, with a provider cost (per
    # segment), the cost of one message
    sms: dict[str, dict[str, Any]] = field(default_factory=dict)
    # each chain of follow-ups: {"steps": [...], "describe": "...", "holdout": "..."}
    journeys: list[dict[str, Any]] = field(default_factory=list)
    # the store's contacts (None: no store file, or a server store check does not read)
    contacts: int | None = None
    # campaign id → {audience, with_address, consented, reachable}: whom it can reach today
    reach: dict[str, dict[str, int]] = field(default_factory=dict)
    # how far back the store's orders reach: {orders, contacts, first_order_at, …}
    history: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def sample_contacts(
    config: Config, locale: str, now: datetime, attributes: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A contact with every field (and the store's attributes), and one with the bare minimum."""
    german = locale.split("-")[0].split("_")[0] == "de"
    full: dict[str, Any] = {
        "id": "sample-full",
        "email": "juergen.weiss@example.com" if german else "jane.smith@example.com",
        "phone": "+4915112345678",
        "first_name": "Jürgen" if german else "Jane",
        "last_name": "Weiß" if german else "Smith",
        "salutation": "Herr" if german else "Ms",
        "company": "Blumen Weiß GmbH" if german else "Smith & Daughters Ltd",
        "locale": locale,
        "timezone": config.timezone,
        "country": "DE" if german else "GB",
        "street": "Oranienstraße 12" if german else "12 Market Street",
        "postal_code": "10999" if german else "M1 1AA",
        "city": "Berlin" if german else "Manchester",
        "birthday": date(1984, 2, 29),
        "signup_at": now - timedelta(days=500),
        "consent_email": True,
        "consent_sms": True,
        "consent_card": True,
        "tags": ["newsletter"],
        "first_order_at": now - timedelta(days=365),
        "last_order_at": now - timedelta(days=2),
        "order_count": 5,
        "total_spent": 512.4,
        "last_event_at": now - timedelta(days=2),
        **(attributes or {}),
    }
    bare = {key: None for key in full} | {
        "id": "sample-bare",
        "email": "kunde@example.com",
        "locale": locale,
        "tags": [],
        "first_order_at": now - timedelta(days=365),
        "last_order_at": now - timedelta(days=100),
        "order_count": 1,
        "total_spent": 49.9,
        "last_event_at": now - timedelta(days=100),
    }
    return [full, bare]


def sample_event(
    config: Config, campaign: Campaign, now: datetime, real: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The event a campaign's message is rendered with (None when its trigger has none).

    ``real`` is the store's latest matching event, if there is one: the sample then has its
    properties (a shop's orders carry ``name``, ``financial_status`` … a made-up order
    does not), in place of the made-up ones."""
    kind = campaign.trigger.sample_event_type()
    if kind is None:
        return None
    amounts = {"order": 149.9, "nps": 4}
    properties: dict[str, Any] = {}
    if kind == "order":
        properties["items"] = [
            {"sku": "ROSE-12", "name": "Rosen, 12 Stück", "quantity": 1, "price": 149.9}
        ]
    if real is not None:
        stored = real.get("properties")
        found = json.loads(stored) if isinstance(stored, str) else stored
        if isinstance(found, Mapping) and found:
            properties = dict(found)
    return {
        "id": f"sample-{kind}",
        "contact_id": "sample-full",
        "type": kind,
        "occurred_at": now - timedelta(days=2),
        "amount": amounts.get(kind),
        "currency": config.currency,
        "properties": properties,
    }


def check_workspace(config: Config, now: datetime | None = None) -> CheckResult:
    """Validate every campaign and template of the config's folders."""
    now = now or utcnow()
    result = CheckResult()
    loaded = load_campaigns(config)
    result.problems.extend(loaded.errors)
    result.campaigns = [c.id for c in loaded.campaigns]
    result.journeys = [
        {"steps": j.ids, "describe": j.describe(), "holdout": j.holdout_note()}
        for j in journeys(loaded.campaigns)
    ]
    # a provider a campaign sends through must find its secrets in the environment
    for provider in sorted({c.provider for c in loaded.campaigns if c.enabled}):
        result.problems.extend(config.unset_variables(provider))
    result.purposes = {c.id: c.purpose for c in loaded.campaigns}
    templates = templates_for(config)
    folder = config.templates_dir
    paths = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    for path in paths:
        (result.templates if is_message_file(path.name) else result.layouts).append(path.name)
        for html in (False, True):
            try:
                templates.load(path, html=html)
            except TemplateError as exc:
                if str(exc) not in result.problems:
                    result.problems.append(str(exc))
    seen = set(result.problems)
    store = read_contact_sample(config.store_target, default_locale=config.locale)
    for campaign in loaded.campaigns:
        files = template_files(folder, campaign.template)
        locales = [loc for loc in files if loc] or [config.locale]
        if "" in files and config.locale not in locales:
            locales.append(config.locale)
        if "" in files and "en" not in locales:
            locales.append("en")
        for locale, count in sorted(store.locales.items()):
            if pick_template(folder, campaign.template, locale) is None:
                result.problems.append(
                    f"{folder / (campaign.template + SUFFIX)}: no template {campaign.template!r} "
                    f"for locale {locale!r}, which {count} contact(s) in the store speak "
                    f"(campaign {campaign.id})"
                )
            elif locale not in locales:
                locales.append(locale)
        real = _real_samples(config, campaign, now)
        # the store's own first: an error they show is reported with the contact's id
        _check_real(config, campaign, real, now, result, seen)
        event = sample_event(config, campaign, now, real[0].event if real else None)
        for locale in locales:
            for contact in sample_contacts(config, locale, now, store.attributes):
                result.renders += 1
                try:
                    rendered = render_message(
                        config, campaign, contact, event, "sample", now, links=LINKS
                    )
                    notes = check_notes(config, campaign, not rendered.unsubscribe_footer)
                    result.notes.extend(n for n in notes if n not in result.notes)
                    if campaign.channel == "sms" and rendered.text:
                        _note_sms(config, campaign, rendered.text, result)
                except TemplateError as exc:
                    if str(exc) not in seen:
                        seen.add(str(exc))
                        sample = "with names" if contact["id"] == "sample-full" else "without names"
                        result.problems.append(
                            f"{exc} (campaign {campaign.id}, locale {locale}, contact {sample})"
                        )
    result.warnings.extend(sender_warnings(config))
    _check_store(config, loaded.campaigns, sum(store.locales.values()), now, result)
    return result


# what each channel's address is called in check's warnings
ADDRESS_NAMES = {
    "email": "an e-mail address",
    "sms": "a phone number",
    "card": "a complete postal address",
    "webhook": "an address",
}


def _check_store(
    config: Config, campaigns: list[Campaign], contacts: int, now: datetime, result: CheckResult
) -> None:
    """Whom each campaign can reach today, and how far back the order history reaches, with
    the warnings of an empty store, a campaign that reaches nobody and a partial history."""
    path = config.store_target
    at = to_epoch(now)
    history = read_order_history(path, at) if contacts else None
    if not contacts:
        result.contacts = 0 if config.store_is_url or Path(path).is_file() else None
        result.warnings.append(
            f"{config.store_label}: the store has no contacts yet, so no campaign reaches anyone: import the "
            "shop's customers and their full order history first "
            "(regard import contacts FILE, then regard import events FILE)"
        )
        return
    result.contacts = contacts
    for campaign in campaigns:
        rule = None if campaign.purpose == "service" else config.consent.rule(campaign.channel)
        found = read_reach(
            path,
            audience=campaign.audience,
            channel=campaign.channel,
            consent=rule,
            at=at,
            tz=config.timezone,
        )
        if found is None:
            continue
        result.reach[campaign.id] = {
            "audience": found.audience,
            "with_address": found.with_address,
            "consented": found.consented,
            "reachable": found.reachable,
        }
        if campaign.enabled and not found.reachable:
            result.warnings.append(_nobody(config, campaign, rule, found))
    if history is not None:
        result.history = history_json(history)
        result.warnings.extend(history_warnings(campaigns, history, at))


def _nobody(config: Config, campaign: Campaign, rule: str | None, found: Reach) -> str:
    """Why an enabled campaign reaches no contact today: where its count falls to 0."""
    where = f"campaign {campaign.id} reaches no contact today"
    channel = campaign.channel
    if not found.audience:
        return f"{where}: none of the store's {found.contacts} contacts is in its audience"
    if not found.with_address:
        return (
            f"{where}: none of the {found.audience} contacts in its audience has "
            f"{ADDRESS_NAMES.get(channel, 'an address')}"
        )
    if not found.consented:
        needs = {
            "opt-in": f"needs consent_{channel} = true, which none of them has",
            "existing-customer": (
                f"needs consent_{channel} = true, or an order and consent_{channel} not false"
            ),
            "opt-out": f"and every one of them has consent_{channel} = false",
        }.get(rule or "", "")
        return (
            f"{where}: none of the {found.with_address} contacts with "
            f"{ADDRESS_NAMES.get(channel, 'an address')} may get marketing on {channel} "
            f'([consent] {channel} = "{rule}" {needs}): import the shop\'s consent '
            "(a WooCommerce export has none), or check the campaign's purpose"
        )
    return (
        f"{where}: all {found.consented} contacts it may write to are unsubscribed or "
        f"bounced on {channel}"
    )


def _real_samples(config: Config, campaign: Campaign, now: datetime) -> list[RealSample]:
    """Up to REAL_SAMPLE of the store's contacts in the campaign's audience, each with its
    latest event that the trigger matches, most recent first."""
    trigger = campaign.trigger
    return read_real_sample(
        config.store_target,
        limit=REAL_SAMPLE,
        event_type=trigger.sample_event_type(),
        where=getattr(trigger, "where", None),
        audience=campaign.audience,
        at=to_epoch(now),
        tz=config.timezone,
    )


def _check_real(
    config: Config,
    campaign: Campaign,
    samples: list[RealSample],
    now: datetime,
    result: CheckResult,
    seen: set[str],
) -> None:
    """Render ``campaign`` for the store's contacts and their events (``samples``); each
    new error names the campaign, template and contact."""
    for sample in samples:
        locale = str(sample.contact.get("locale") or config.locale)
        if pick_template(config.templates_dir, campaign.template, locale) is None:
            continue  # reported above, with the number of contacts who speak it
        occasion = str(sample.event["id"]) if sample.event else "check"
        result.renders += 1
        result.real_renders += 1
        try:
            render_message(config, campaign, sample.contact, sample.event, occasion, now)
        except TemplateError as exc:
            if str(exc) not in seen:
                seen.add(str(exc))
                event = f", event {sample.event['id']}" if sample.event else ""
                result.problems.append(
                    f"{exc} (campaign {campaign.id}, template {campaign.template}, "
                    f"contact {sample.contact['id']}{event})"
                )


def sender_warnings(config: Config) -> list[str]:
    """Warnings about ``[sender]``: the placeholder that ``regard init`` wrote, still there."""
    out = []
    where = config.path or "regard.toml"
    name = config.sender.name.strip()
    if name in PLACEHOLDER_SENDER["name"]:
        out.append(
            f"{where}: sender.name: {name!r} is the placeholder of regard init: "
            "set the shop's name (it signs every message)"
        )
    email = config.sender.email.strip().lower()
    domain = email.rpartition("@")[2]
    if domain in PLACEHOLDER_SENDER["email"]:
        out.append(
            f"{where}: sender.email: {email!r} is the placeholder of regard init: "
            "set the address customers answer to"
        )
    return out


def _note_sms(config: Config, campaign: Campaign, text: str, result: CheckResult) -> None:
    """Keep the sample with the most segments of an SMS campaign, and what it costs."""
    found = sms.segments(text)
    known = result.sms.get(campaign.id)
    if known is not None and known["segments"] >= found.segments:
        return
    table = config.providers.get(campaign.provider)
    cost = table.cost if table is not None else None
    result.sms[campaign.id] = {
        "segments": found.segments,
        "encoding": found.encoding,
        "characters": len(text),
        "summary": sms.describe(text),
        "cost_per_message": float(cost * found.segments) if cost is not None else None,
    }
