"""SPEC "Templates": locale files and fallback, context, strict variables, autoescaped
HTML, locale filters, the card length limit."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Shop

AT = "2026-03-01T12:00:00Z"


def message(shop: Shop, contact: str, campaign: str = "thanks") -> dict[str, Any]:
    answer = shop.json("preview", campaign, contact, "--at", AT)
    assert answer["message"], answer
    return answer["message"]  # type: ignore[no-any-return]


@pytest.fixture
def ordered(shop: Shop) -> Shop:
    shop.campaign("thanks", 'type = "post_purchase"\n', name="Danke schön", purpose="service")
    shop.contacts(
        {"id": "de", "locale": "de"},
        {"id": "fr", "locale": "fr"},
        {"id": "none"},
        {"id": "en", "locale": "en"},
    )
    for contact in ("de", "fr", "none", "en"):
        shop.order(f"o-{contact}", contact, "2026-03-01T10:00:00Z", 49.9)
    return shop


def test_locale_file_and_fallback(ordered: Shop) -> None:
    ordered.template(
        "note", "{% block subject %}neutral{% endblock %}{% block text %}n{% endblock %}"
    )
    ordered.ws.write(
        "templates/note.de.j2",
        "{% block subject %}deutsch{% endblock %}{% block text %}d{% endblock %}",
    )
    ordered.ws.write(
        "templates/note.en.j2",
        "{% block subject %}english{% endblock %}{% block text %}e{% endblock %}",
    )
    assert message(ordered, "de")["subject"] == "deutsch"
    assert message(ordered, "en")["subject"] == "english"
    assert message(ordered, "fr")["subject"] == "neutral"
    # no locale of its own: the config's locale (de)
    assert message(ordered, "none")["subject"] == "deutsch"


def test_context(ordered: Shop) -> None:
    ordered.template(
        "note",
        "{% block subject %}{{ campaign.name }}{% endblock %}{% block text %}"
        "{{ contact.id }}|{{ event.id }}|{{ occasion }}|{{ sender.name }}|{{ sender.city }}"
        "|{{ now.year }}-{{ now.month }}-{{ now.day }}{% endblock %}",
    )
    got = message(ordered, "de")
    assert got["subject"] == "Danke schön"
    assert got["text"] == "de|o-de|o-de|Blumen Rosa GmbH|Berlin|2026-3-1"


def test_money_in_the_contacts_locale(ordered: Shop) -> None:
    ordered.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}{{ event.amount | money }}{% endblock %}",
    )
    assert message(ordered, "de")["text"] == "49,90 €"
    assert message(ordered, "en")["text"] == "€49.90"


def test_greeting_without_a_first_name(shop: Shop) -> None:
    # service: the text is the template's alone (marketing e-mail gains the unsubscribe line)
    shop.campaign("thanks", 'type = "post_purchase"\n', purpose="service")
    shop.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}{{ contact | greeting }}, danke!{% endblock %}",
    )
    shop.contacts({"id": "anna", "first_name": "Anna"}, {"id": "nobody", "first_name": None})
    shop.order("o1", "anna", "2026-03-01T10:00:00Z")
    shop.order("o2", "nobody", "2026-03-01T10:00:00Z")
    assert "Anna" in message(shop, "anna")["text"]
    text = message(shop, "nobody")["text"]
    assert text.endswith(", danke!")
    assert not text.startswith(",")
    assert " ," not in text


def test_html_is_autoescaped(ordered: Shop) -> None:
    ordered.contacts({"id": "de", "first_name": "<b>Jo & Co</b>"})
    ordered.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}{{ contact.first_name }}{% endblock %}"
        "{% block html %}<p>{{ contact.first_name }}</p>{% endblock %}",
    )
    got = message(ordered, "de")
    assert got["html"] == "<p>&lt;b&gt;Jo &amp; Co&lt;/b&gt;</p>"
    assert got["text"] == "<b>Jo & Co</b>"  # plain text stays plain


def test_undefined_variable_is_an_error_never_empty(ordered: Shop) -> None:
    ordered.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}Hallo {{ contact.spitzname }},{% endblock %}",
    )
    check = ordered.cli("check")
    assert check.exit_code == 1
    assert "note" in check.output
    assert "spitzname" in check.output
    preview = ordered.cli("preview", "thanks", "de", "--at", AT)
    assert preview.exit_code == 1, preview.output
    assert "Hallo ," not in preview.output
    assert "spitzname" in preview.output
    ordered.cli("run", "--at", AT)
    assert ordered.outbox() == []
    assert all(d["state"] != "sent" for d in ordered.deliveries())


def test_undefined_top_level_variable_is_an_error(ordered: Shop) -> None:
    ordered.template(
        "note", "{% block subject %}x{% endblock %}{% block text %}Hallo {{ kunde }}{% endblock %}"
    )
    check = ordered.cli("check")
    assert check.exit_code == 1
    assert "kunde" in check.output


def test_rendering_is_sandboxed(ordered: Shop) -> None:
    ordered.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}{{ ''.__class__.__mro__ }}{% endblock %}",
    )
    assert ordered.cli("check").exit_code == 1


@pytest.mark.parametrize(
    "provider, limit",
    [('type = "file"\npath = "cards.jsonl"\n', 1000),
     ('type = "handwrytten"\napi_key = "k-123"\ntest_mode = true\n', 320)],
)  # fmt: skip
def test_card_longer_than_the_provider_allows(shop: Shop, provider: str, limit: int) -> None:
    shop.configure(f"[providers.cards]\n{provider}")
    shop.campaign("card", 'type = "post_purchase"\n', channel="card", provider="cards")
    shop.contacts(
        {"id": "c1", "street": "Weg 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}
    )
    shop.order("o1", "c1", "2026-03-01T10:00:00Z")
    shop.template("note", "{% block card %}" + "x" * limit + "{% endblock %}")
    assert shop.cli("check").exit_code == 0
    assert shop.cli("preview", "card", "c1", "--at", AT).exit_code == 0
    shop.template("note", "{% block card %}" + "x" * (limit + 1) + "{% endblock %}")
    check = shop.cli("check")
    assert check.exit_code == 1
    assert str(limit) in check.output
    preview = shop.cli("preview", "card", "c1", "--at", AT)
    assert preview.exit_code == 1, preview.output
    assert str(limit) in preview.output
    assert "x" * (limit + 1) not in preview.stdout


def test_dates_in_the_contacts_locale(shop: Shop) -> None:
    # service: the text is the template's alone (marketing e-mail gains the unsubscribe line)
    shop.campaign("thanks", 'type = "post_purchase"\n', purpose="service")
    shop.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}{{ contact.birthday | date }}{% endblock %}",
    )
    shop.contacts({"id": "de", "locale": "de", "birthday": "1990-06-15"},
                  {"id": "en", "locale": "en", "birthday": "1990-06-15"})  # fmt: skip
    shop.order("o1", "de", "2026-03-01T10:00:00Z")
    shop.order("o2", "en", "2026-03-01T10:00:00Z")
    assert "Juni" in message(shop, "de")["text"]
    assert "June" in message(shop, "en")["text"]


def test_money_uses_the_events_own_currency(shop: Shop) -> None:
    # the config's currency (EUR) is "for amounts without a currency of their own"
    # service: the text is the template's alone (marketing e-mail gains the unsubscribe line)
    shop.campaign("thanks", 'type = "post_purchase"\n', purpose="service")
    shop.template(
        "note",
        "{% block subject %}x{% endblock %}{% block text %}"
        "{{ event.amount | money }}|{{ event.amount }}|{{ event.amount | money('CHF') }}{% endblock %}",
    )
    shop.contacts({"id": "c1", "locale": "de"}, {"id": "c2", "locale": "de"})
    shop.events(
        {"id": "o1", "contact_id": "c1", "occurred_at": "2026-03-01T10:00:00Z", "amount": 49.9,
         "currency": "usd"},
        {"id": "o2", "contact_id": "c2", "occurred_at": "2026-03-01T10:00:00Z", "amount": 49.9},
    )  # fmt: skip
    assert message(shop, "c1")["text"] == "49,90 $|49.9|49,90 CHF"
    assert message(shop, "c2")["text"] == "49,90 €|49.9|49,90 CHF"
