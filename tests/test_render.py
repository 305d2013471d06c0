"""Rendering messages: locale fallback, filters in de and en, strictness, the sandbox."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import Workspace
from regard.campaigns import load_campaign
from regard.config import Config
from regard.errors import TemplateError
from regard.render import Message, address_line, render_message, wrap_card
from regard.render.filters import capitalise_name, rendering_for
from regard.render.message import templates_for
from regard.workspace import load_config

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ORDER = {
    "id": "o-1",
    "type": "order",
    "occurred_at": datetime(2026, 11, 20, 23, 30, tzinfo=UTC),  # 21 Nov in Berlin
    "amount": 49.9,
    "currency": "EUR",
    "properties": {"items": [{"sku": "R12", "name": "Rosen", "quantity": 2, "price": 24.95}]},
}


def contact(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "c-1",
        "email": "anna@example.com",
        "first_name": "anna",
        "last_name": "schmidt",
        "salutation": "Frau",
        "company": None,
        "locale": "de",
        "timezone": "Europe/Berlin",
        "order_count": 1,
        "tags": [],
    }
    return base | fields


def setup(ws: Workspace, files: dict[str, str], channel: str = "email") -> Config:
    for name, text in files.items():
        ws.write(f"templates/{name}", text)
    ws.write(
        "campaigns/c.toml",
        f'channel = "{channel}"\nprovider = "outbox"\ntemplate = "m"\n'
        '[trigger]\ntype = "post_purchase"\n',
    )
    return load_config(ws.config)


def render(ws: Workspace, config: Config, person: dict[str, Any], event: Any = ORDER) -> Message:
    return render_message(config, load_campaign(config, "c"), person, event, "o-1", NOW)


EMAIL = (
    "{% block subject %}{{ s }}{% endblock %}\n"
    "{% block text %}\n{{ contact | greeting }},\n\n{{ t }}\n{% endblock %}\n"
)


def email(subject: str, text: str, html: str | None = None) -> str:
    out = EMAIL.replace("{{ s }}", subject).replace("{{ t }}", text)
    if html is not None:
        out += "{% block html %}" + html + "{% endblock %}\n"
    return out


def test_locale_picks_the_file_with_fallback(workspace: Workspace) -> None:
    config = setup(
        workspace,
        {
            "m.j2": email("Thanks", "base"),
            "m.de.j2": email("Danke", "de"),
            "m.de-AT.j2": email("Servus", "de-AT"),
        },
    )
    assert render(workspace, config, contact(locale="de")).subject == "Danke"
    assert render(workspace, config, contact(locale="de-AT")).subject == "Servus"
    assert render(workspace, config, contact(locale="de_CH")).subject == "Danke"
    assert render(workspace, config, contact(locale="fr")).subject == "Thanks"
    # no locale of its own: the config's (de)
    assert render(workspace, config, contact(locale=None)).subject == "Danke"


def test_without_a_base_file_other_locales_are_an_error(workspace: Workspace) -> None:
    config = setup(workspace, {"m.de.j2": email("Danke", "de")})
    with pytest.raises(TemplateError, match=r"no template 'm' for locale 'en' \(and no m.j2\)"):
        render(workspace, config, contact(locale="en"))


def test_the_message_of_each_channel(workspace: Workspace) -> None:
    config = setup(
        workspace,
        {
            "m.j2": email(
                "Thanks  for\n your order",
                "{{ event.amount | money }} {{ event['items'][0].name }}",
                "<p>{{ contact.last_name }}</p>",
            )
        },
    )
    message = render(workspace, config, contact(locale="en", last_name="<Schmidt & Co>"))
    assert message == Message(
        subject="Thanks for your order",
        text="Dear Ms <Schmidt & Co>,\n\n€49.90 Rosen",
        html="<p>&lt;Schmidt &amp; Co&gt;</p>",
        card=None,
    )


def test_required_blocks(workspace: Workspace) -> None:
    config = setup(workspace, {"m.j2": "{% block text %}Hallo{% endblock %}"})
    with pytest.raises(TemplateError) as info:
        render(workspace, config, contact())
    assert str(info.value) == (
        f"{workspace.root / 'templates' / 'm.j2'}: no {{% block subject %}} "
        "(an email message needs subject and text)"
    )


@pytest.mark.parametrize(
    ("template", "line", "reason"),
    [
        ("{{ contact.nickname }}", 6, "contact has no field 'nickname'"),
        (
            "{{ contact.company }}",
            6,
            "contact.company is empty here (test it with {% if contact.company %})",
        ),
        ("{{ shop }}", 6, "'shop' is undefined"),
        (
            "{{ sender.company }}",
            6,
            "sender.company is empty here (test it with {% if sender.company %})",
        ),
        ("{{ event.coupon }}", 6, "event has no field 'coupon'"),
        (
            "{{ contact.company | upper }}",
            6,
            "contact.company is empty here (test it with {% if contact.company %})",
        ),
    ],
)
def test_a_missing_name_is_an_error_never_empty_text(
    workspace: Workspace, template: str, line: int, reason: str
) -> None:
    config = setup(workspace, {"m.de.j2": email("Hallo", "\n" + template)})
    with pytest.raises(TemplateError) as info:
        render(workspace, config, contact())
    assert str(info.value) == f"{workspace.root / 'templates' / 'm.de.j2'}:{line}: {reason}"


def test_empty_fields_are_false_and_take_defaults(workspace: Workspace) -> None:
    text = (
        "{% if contact.company %}Firma {{ contact.company }}{% else %}privat{% endif %}"
        " {{ contact.company | default('ohne Firma') }}"
        " {% if contact.vip is defined %}vip{% else %}normal{% endif %}"
    )
    config = setup(workspace, {"m.de.j2": email("Hallo", text)})
    assert (
        render(workspace, config, contact()).text
        == "Liebe Frau Schmidt,\n\nprivat ohne Firma normal"
    )


def test_no_event_for_triggers_without_one(workspace: Workspace) -> None:
    config = setup(workspace, {"m.de.j2": email("Hallo", "{{ event.amount }}")})
    with pytest.raises(
        TemplateError, match="there is no event for a campaign with trigger post_purchase"
    ):
        render(workspace, config, contact(), event=None)


def test_syntax_error_names_file_and_line(workspace: Workspace) -> None:
    config = setup(workspace, {"m.de.j2": email("Hallo", "\n{% if %}")})
    with pytest.raises(TemplateError) as info:
        render(workspace, config, contact())
    assert str(info.value).startswith(f"{workspace.root / 'templates' / 'm.de.j2'}:6: ")


# -- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "expression", "expected"),
    [
        ("de", "{{ 49.9 | money }}", "49,90 €"),
        ("en", "{{ 49.9 | money }}", "€49.90"),
        ("de", "{{ 1234.5 | money('USD') }}", "1.234,50 $"),
        ("en", "{{ 1234.5 | money('USD') }}", "$1,234.50"),
        ("de-AT", "{{ 49.9 | money }}", "€ 49,90"),
        ("de", "{{ event.occurred_at | date }}", "21. November 2026"),
        ("en", "{{ event.occurred_at | date }}", "November 21, 2026"),
        ("de", "{{ event.occurred_at | date('short') }}", "21.11.26"),
        ("de", "{{ event.occurred_at | datetime }}", "21. November 2026, 00:30"),
        ("en", "{{ event.occurred_at | datetime }}", "November 21, 2026, 12:30 AM"),
        ("de", "{{ event.occurred_at | time }}", "00:30"),
        ("en", "{{ event.occurred_at | time }}", "12:30 AM"),
        ("en", "{{ event.occurred_at | datetime('yyyy-MM-dd HH:mm') }}", "2026-11-21 00:30"),
        ("en", "{{ 49.9 | money('GBP') }}", "£49.90"),
        ("de", "{{ event.amount | money(event.currency) }}", "49,90 €"),
        ("en", "{{ contact.first_name | first_name }}", "Anna"),
        ("de", "{{ contact.birthday | date }}", "17. Mai 1990"),
        ("en", "{{ contact.birthday | date('d MMMM') }}", "17 May"),
        ("de", "{{ '2026-03-01' | date }}", "1. März 2026"),
        ("de", "{{ now | date('EEEE') }}", "Sonntag"),
        ("de", "{{ contact | greeting }}", "Liebe Frau Schmidt"),
        ("en", "{{ contact | greeting }}", "Dear Ms Schmidt"),
        ("de", "{{ contact.first_name | first_name }}", "Anna"),
        ("de", "{{ contact | first_name }}", "Anna"),
    ],
)
def test_filters(workspace: Workspace, locale: str, expression: str, expected: str) -> None:
    config = setup(workspace, {"m.j2": email("x", "\n" + expression)})
    text = render(workspace, config, contact(locale=locale, birthday=date(1990, 5, 17))).text
    assert text is not None
    assert text.split("\n\n", 1)[1] == expected


@pytest.mark.parametrize(
    ("language", "person", "expected"),
    [
        ("de", {"salutation": "Frau", "last_name": "schmidt"}, "Liebe Frau Schmidt"),
        (
            "de",
            {"salutation": "Herr", "last_name": "Weiß", "first_name": "Jürgen"},
            "Lieber Herr Weiß",
        ),
        ("de", {"salutation": "herr", "last_name": None, "first_name": "jürgen"}, "Hallo Jürgen"),
        ("de", {"salutation": "Frau Dr.", "last_name": "schmidt"}, "Liebe Frau Dr. Schmidt"),
        ("de", {"salutation": "Hr.", "last_name": "Weiß"}, "Lieber Herr Weiß"),
        ("de", {"salutation": "Divers", "last_name": "Weiß", "first_name": "Kim"}, "Hallo Kim"),
        (
            "de",
            {"salutation": None, "last_name": "Weiß", "first_name": "anne-marie"},
            "Hallo Anne-Marie",
        ),
        ("de", {"salutation": None, "last_name": None, "first_name": None}, "Hallo"),
        ("de", {"salutation": "Frau", "last_name": None, "first_name": None}, "Hallo"),
        ("en", {"salutation": "Ms", "last_name": "smith"}, "Dear Ms Smith"),
        ("en", {"salutation": "Mr", "last_name": "Smith"}, "Dear Mr Smith"),
        ("en", {"salutation": "Mrs.", "last_name": "Smith"}, "Dear Ms Smith"),
        ("en", {"salutation": None, "first_name": "anna", "last_name": "Smith"}, "Hi Anna"),
        ("en", {"salutation": None, "first_name": "", "last_name": None}, "Hello"),
        ("fr", {"salutation": None, "first_name": "Zoé"}, "Hi Zoé"),
    ],
)
def test_greeting(
    workspace: Workspace, language: str, person: dict[str, Any], expected: str
) -> None:
    config = setup(workspace, {"m.j2": email("x", "")})
    base = {"first_name": None, "last_name": None, "salutation": None}
    text = render(workspace, config, contact(locale=language, **(base | person))).text
    assert text == f"{expected},"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jürgen", "Jürgen"),
        ("JÜRGEN", "Jürgen"),
        ("anne-marie", "Anne-Marie"),
        ("maria  luisa", "Maria Luisa"),
        ("o'neill", "O'Neill"),
        ("McKenzie", "McKenzie"),
        ("DeShawn", "DeShawn"),
        ("özlem", "Özlem"),
    ],
)
def test_first_name_capitalisation(raw: str, expected: str) -> None:
    assert capitalise_name(raw) == expected


def test_first_name_of_a_contact_without_one_is_an_error(workspace: Workspace) -> None:
    config = setup(workspace, {"m.j2": email("{{ contact | first_name }}", "")})
    with pytest.raises(TemplateError, match=r"contact\.first_name is empty here"):
        render(workspace, config, contact(first_name=None))


def test_money_outside_a_message_defaults_to_english(tmp_path: Path) -> None:
    from regard.render.filters import money

    assert money(3) == "€3.00"
    with pytest.raises(ValueError, match="money: 'EUROS' is not a currency code like EUR"):
        money(3, "euros")
    with rendering_for("de", "Europe/Berlin", "CHF"):
        assert money(3) == "3,00 CHF"


# -- the sandbox ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{{ ''.__class__.__mro__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
        ("{{ contact.__class__ }}", "contact has no field '__class__'"),
        ("{{ contact['_data'] }}", "access to attribute '_data' of 'Record' object is unsafe"),
        (
            "{{ contact.first_name.__class__.__mro__ }}",
            "access to attribute '__class__' of 'str' object is unsafe",
        ),
        ("{{ contact.data }}", "contact has no field 'data'"),
        (
            "{{ cycler.__init__.__globals__ }}",
            "access to attribute '__init__' of 'type' object is unsafe",
        ),
        ("{{ range(10**9) | list }}", "range() of more than 10000 items in one message is refused"),
        ("{{ 10 ** (contact.order_count * 100) }}", "powers above 64 are refused"),
        ("{{ ((9 ** 64) ** 64) ** 64 }}", "powers beyond 4096 bits are refused"),
        (
            "{{ range(1000000000) | list }}",
            "range() of more than 10000 items in one message is refused",
        ),
        (
            "{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}",
            "range() of more than 10000 items in one message is refused",
        ),
        ("{{ 'x' * 1000000000 }}", "repeating a text or list this often is refused"),
        (
            "{{ 'x' | center(1000000000) }}",
            "the number 1000000000 is too large for a template argument",
        ),
        (
            "{{ 'x'.ljust(1000000000) }}",
            "the number 1000000000 is too large for a template argument",
        ),
        ("{{ '{:>999999999}'.format(1) }}", "the width 999999999 is too large for a template"),
        ("{{ '%999999999d' % 1 }}", "the width 999999999 is too large for a template format"),
        ("{{ contact.tags.append(1) }}", "access to attribute 'append' of 'list' object is unsafe"),
        ("{{ lipsum(2) }}", "'lipsum' is undefined"),
        (
            "{% for i in range(9000) %}{{ 'x' * 9000 }}{% endfor %}",
            "block text is longer than 100000 characters",
        ),
    ],
)
def test_sandbox_refuses(workspace: Workspace, payload: str, reason: str) -> None:
    config = setup(workspace, {"m.de.j2": email("Hallo", payload)})
    with pytest.raises(TemplateError) as info:
        render(workspace, config, contact())
    assert reason in str(info.value)


def test_templates_are_compiled_once(workspace: Workspace) -> None:
    config = setup(workspace, {"m.de.j2": email("Hallo", "x")})
    render(workspace, config, contact())
    templates = templates_for(config)
    path = workspace.root / "templates" / "m.de.j2"
    assert templates.load(path) is templates.load(path)


# -- cards -----------------------------------------------------------------------------------


def test_card_text_over_the_provider_limit_is_an_error(workspace: Workspace) -> None:
    config = setup(workspace, {"m.j2": "{% block card %}{{ 'x' * 1000 }}{% endblock %}"}, "card")
    assert len(render(workspace, config, contact()).card or "") == 1000  # the file provider's limit
    workspace.write("templates/m.j2", "{% block card %}{{ 'x' * 1001 }}{% endblock %}")
    with pytest.raises(TemplateError) as info:
        render(workspace, config, contact())
    assert str(info.value) == (
        f"{workspace.root / 'templates' / 'm.j2'}: the card text is 1001 characters long; "
        "provider 'outbox' takes at most 1000"
    )


def test_wrap_card() -> None:
    text = "Liebe Frau Schmidt,\n\nherzlichen Dank für Ihre Bestellung und Ihr Vertrauen!"
    assert wrap_card(text, 24) == (
        "Liebe Frau Schmidt,\n\nherzlichen Dank für Ihre\nBestellung und Ihr\nVertrauen!"
    )


def test_address_line_keeps_postal_code_and_city_together() -> None:
    to = {"name": "Eva Schön", "company": "", "street": "Am Markt 2", "postal_code": "04109",
          "city": "Leipzig", "country": "DE"}  # fmt: skip
    assert address_line(to) == "Eva Schön, Am Markt 2, 04109 Leipzig, DE"
    assert address_line({"name": "Eva", "city": "Leipzig"}) == "Eva, Leipzig"
