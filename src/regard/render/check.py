"""``regard check``: every campaign and template, rendered against sample contacts.

Each template file is compiled; each valid campaign's template is rendered in every locale it
has for a contact with every field and for one with only the bare minimum (no names, no
company, no phone), with a sample event where the trigger has one. A template that prints
a field without checking it first fails here, not in a customer's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from regard.campaigns.loader import load_campaigns
from regard.campaigns.model import (
    Campaign,
)
from regard.channels import sms
from regard.errors import TemplateError
from regard.render.environment import SUFFIX, pick_template, template_files
from regard.render.message import render_message, templates_for
from regard.store.contacts import read_contact_sample
from regard.times import utcnow

if TYPE_CHECKING:
    from regard.config import Config


@dataclass
class CheckResult:
    """What ``check`` looked at and every problem it found."""

    campaigns: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    renders: int = 0
    problems: list[str] = field(default_factory=list)
    # SMS campaigns: the longest sample text's segments and, with a provider cost (per
    # segment), the cost of one message
    sms: dict[str, dict[str, Any]] = field(default_factory=dict)

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


def sample_event(config: Config, campaign: Campaign, now: datetime) -> dict[str, Any] | None:
    """The event a campaign's message is rendered with (None when its trigger has none)."""
    kind = campaign.trigger.sample_event_type()
    if kind is None:
        return None
    amounts = {"order": 149.9, "nps": 4}
    properties: dict[str, Any] = {}
    if kind == "order":
        properties["items"] = [
            {"sku": "ROSE-12", "name": "Rosen, 12 Stück", "quantity": 1, "price": 149.9}
        ]
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
    # a provider a campaign sends through must find its secrets in the environment
    for provider in sorted({c.provider for c in loaded.campaigns if c.enabled}):
        result.problems.extend(config.unset_variables(provider))
    templates = templates_for(config)
    folder = config.templates_dir
    paths = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    for path in paths:
        result.templates.append(path.name)
        for html in (False, True):
            try:
                templates.load(path, html=html)
            except TemplateError as exc:
                if str(exc) not in result.problems:
                    result.problems.append(str(exc))
    seen = set(result.problems)
    store = read_contact_sample(config.store_path, default_locale=config.locale)
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
        event = sample_event(config, campaign, now)
        for locale in locales:
            for contact in sample_contacts(config, locale, now, store.attributes):
                result.renders += 1
                try:
                    rendered = render_message(config, campaign, contact, event, "sample", now)
                    if campaign.channel == "sms" and rendered.text:
                        _note_sms(config, campaign, rendered.text, result)
                except TemplateError as exc:
                    if str(exc) not in seen:
                        seen.add(str(exc))
                        sample = "with names" if contact["id"] == "sample-full" else "without names"
                        result.problems.append(
                            f"{exc} (campaign {campaign.id}, locale {locale}, contact {sample})"
                        )
    return result


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
