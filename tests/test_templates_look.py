"""Templates, look and preview: layouts through extends/include/import for every block,
``_`` files, the text part made from HTML, greetings in both registers, ``check`` against
the store's own contacts, ``deliveries retry`` of render errors, ``preview --html`` and
``preview --send-to`` (file provider and a Postmark fake on 127.0.0.1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import Workspace
from httpsink import Answer
from regard.campaigns import load_campaign
from regard.campaigns.templates import template_files
from regard.errors import TemplateError
from regard.render import render_message
from regard.render.filters import greeting, rendering_for
from regard.workspace import load_config

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ORDER = {
    "id": "o-1",
    "type": "order",
    "occurred_at": datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    "amount": 49.9,
    "currency": "EUR",
    "properties": {"name": "#1001"},
}
ANNA = {
    "id": "c-1",
    "email": "anna@example.org",
    "first_name": "anna",
    "last_name": "jäger",
    "salutation": "Frau",
    "locale": "de",
    "timezone": "Europe/Berlin",
}
CAMPAIGN = (
    'channel = "email"\nprovider = "outbox"\ntemplate = "m"\n[trigger]\ntype = "post_purchase"\n'
)

LAYOUT = """\
{% block html %}<html><body><div class="frame">{% block content %}{% endblock %}</div>
<footer>{{ sender.name }}{% block extra %} base-extra{% endblock %}</footer></body></html>
{% endblock %}
"""
MACROS = "{% macro shout(word) %}{{ word | upper }}!{% endmacro %}"
SIGNATURE = "-- \n{{ sender.name }}, {{ sender.city }}"


def setup(ws: Workspace, files: dict[str, str]) -> Any:
    for name, text in files.items():
        ws.write(f"templates/{name}", text)
    ws.write("campaigns/c.toml", CAMPAIGN.replace('"m"', '"m"'))
    config = load_config(ws.config)
    return config, load_campaign(config, "c")


def test_a_message_that_extends_a_layout_has_its_html_part(workspace: Workspace) -> None:
    child = (
        '{% extends "_layout.j2" %}\n'
        '{% import "_macros.j2" as m %}\n'
        "{% set shop = sender.name %}\n"
        "{% block subject %}Danke, {{ shop }}{% endblock %}\n"
        "{% block text %}{{ contact | greeting(formal=true) }}, {{ m.shout('danke') }}\n"
        '{% include "_signature.j2" %}{% endblock %}\n'
        "{% block content %}<p>{{ m.shout('danke') }} {{ contact.first_name ~ ' & co' }}</p>{% endblock %}\n"
        "{% block extra %}{{ super() }} + child{% endblock %}\n"
    )
    config, campaign = setup(
        workspace,
        {"_layout.j2": LAYOUT, "_macros.j2": MACROS, "_signature.j2": SIGNATURE, "m.j2": child},
    )
    message = render_message(config, campaign, ANNA, ORDER, "o-1", NOW)
    assert message.subject == "Danke, Blumen Rosa GmbH"  # a top-level {% set %}
    assert message.text == "Guten Tag Frau Jäger, DANKE!\n--\nBlumen Rosa GmbH, Berlin"
    assert message.html is not None
    assert message.html.startswith('<html><body><div class="frame">')
    assert "<p>DANKE! anna &amp; co</p>" in message.html  # autoescaped, macro from an import
    assert "Blumen Rosa GmbH base-extra + child</footer>" in message.html  # super()


def test_an_error_in_a_layout_names_the_layout_and_check_fails(workspace: Workspace) -> None:
    layout = "{% block html %}<html>\n<p>{{ sender.nickname }}</p>\n{% block content %}{% endblock %}</html>{% endblock %}"
    child = '{% extends "_layout.j2" %}{% block subject %}S{% endblock %}{% block text %}T{% endblock %}{% block content %}C{% endblock %}'
    config, campaign = setup(workspace, {"_layout.j2": layout, "m.j2": child})
    with pytest.raises(TemplateError) as caught:
        render_message(config, campaign, ANNA, ORDER, "o-1", NOW)
    assert "_layout.j2:2:" in str(caught.value)
    assert "sender has no field 'nickname'" in str(caught.value)
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "_layout.j2:2: sender has no field 'nickname'" in result.output


def test_a_missing_layout_is_a_template_error(workspace: Workspace) -> None:
    child = '{% extends "_nowhere.j2" %}{% block subject %}S{% endblock %}{% block text %}T{% endblock %}'
    config, campaign = setup(workspace, {"m.j2": child})
    with pytest.raises(TemplateError, match=r"no template '_nowhere\.j2'"):
        render_message(config, campaign, ANNA, ORDER, "o-1", NOW)


def test_underscore_files_are_no_messages(workspace: Workspace) -> None:
    setup(
        workspace,
        {
            "_layout.j2": LAYOUT,
            "m.j2": "{% block subject %}S{% endblock %}{% block text %}T{% endblock %}",
        },
    )
    report = workspace.cli_json("check")
    assert report["templates"] == ["m.j2"]
    assert report["layouts"] == ["_layout.j2"]
    workspace.write("campaigns/c.toml", CAMPAIGN.replace('"m"', '"_layout"'))
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "_layout is a layout or partial" in result.output


def test_the_text_part_is_made_from_html_when_there_is_no_text(workspace: Workspace) -> None:
    html = (
        "{% block subject %}S{% endblock %}{% block html %}<html><body>"
        '<div style="display: none">preheader</div>'
        "<table><tr><td><p>{{ contact | greeting(formal=true) }},</p>"
        '<p>danke &amp; <a href="https://blumen-rosa.de/shop">zum Shop</a></p></td></tr></table>'
        "</body></html>{% endblock %}"
    )
    config, campaign = setup(workspace, {"m.j2": html})
    message = render_message(config, campaign, ANNA, ORDER, "o-1", NOW)
    assert message.text == "Guten Tag Frau Jäger,\n\ndanke & zum Shop (https://blumen-rosa.de/shop)"
    # and never the reverse: a text-only template has no HTML part
    config, campaign = setup(
        workspace, {"m.j2": "{% block subject %}S{% endblock %}{% block text %}T{% endblock %}"}
    )
    assert render_message(config, campaign, ANNA, ORDER, "o-1", NOW).html is None


@pytest.mark.parametrize(
    ("language", "contact", "formal", "informal"),
    [
        ("de", {"salutation": "Frau", "first_name": "anna", "last_name": "jäger"},
         "Guten Tag Frau Jäger", "Hallo Anna"),
        ("de", {"salutation": "Herr Dr.", "last_name": "Weber"},
         "Guten Tag Herr Dr. Weber", "Hallo Herr Dr. Weber"),
        ("de", {"first_name": "Kim", "last_name": "Berg"}, "Guten Tag Kim Berg", "Hallo Kim"),
        ("de", {"company": "Blumen Weiß GmbH"}, "Sehr geehrte Damen und Herren", "Hallo zusammen"),
        ("de", {}, "Guten Tag", "Hallo"),
        ("en", {"salutation": "Mrs", "last_name": "Smith", "first_name": "Jane"},
         "Dear Ms Smith", "Hi Jane"),
        ("en", {"company": "Smith & Daughters Ltd"}, "Dear Sir or Madam", "Hi there"),
        ("en", {"salutation": "Mr", "last_name": "Brown"}, "Dear Mr Brown", "Hi Mr Brown"),
    ],
)  # fmt: skip
def test_greetings_in_both_registers(
    language: str, contact: dict[str, str], formal: str, informal: str
) -> None:
    with rendering_for(language, "UTC", "EUR"):
        assert greeting(contact, formal=True) == formal
        assert greeting(contact, formal=False) == informal


def test_the_shipped_e_mails_extend_the_layout() -> None:
    skeleton = Path(__file__).resolve().parent.parent / "src" / "regard" / "skeleton"
    emails = [
        p.stem
        for p in (skeleton / "campaigns").glob("*.toml")
        if 'channel = "email"' in p.read_text(encoding="utf-8")
    ]
    assert len(emails) >= 5
    for name in emails:
        for path in template_files(skeleton / "templates", name).values():
            text = path.read_text(encoding="utf-8")
            assert '{% extends "_layout.j2" %}' in text, path.name
            assert "{% block html %}" not in text, path.name  # the layout's, not their own


def test_the_shipped_german_e_mails_keep_to_the_formal_register() -> None:
    folder = Path(__file__).resolve().parent.parent / "src" / "regard" / "skeleton" / "templates"
    german = sorted(folder.glob("*.de.j2"))
    assert german
    for path in german:
        text = path.read_text(encoding="utf-8")
        assert "greeting(formal=true)" in text, path.name
        assert "contact.first_name" not in text, path.name  # no first names beside "Sie"
        assert " du " not in text and " dich " not in text, path.name


# -- check against the store's own contacts -------------------------------------------------


def import_shop(ws: Workspace, orders: list[dict[str, Any]]) -> None:
    ws.write(
        "contacts.csv",
        "id,email,first_name,last_name,salutation,locale,consent_email\n"
        "k1,anna@example.org,Anna,Jäger,Frau,de,true\n"
        "k2,ben@example.org,Ben,Roth,Herr,de,true\n",
    )
    ws.write("events.jsonl", "".join(json.dumps(o) + "\n" for o in orders))
    assert ws.cli("import", "contacts", str(ws.root / "contacts.csv")).exit_code == 0
    assert ws.cli("import", "events", str(ws.root / "events.jsonl")).exit_code == 0


ORDER_NAME = (
    "{% block subject %}Bestellung {{ event.name }}{% endblock %}"
    "{% block text %}{{ contact | greeting(formal=true) }}: {{ event.name }}{% endblock %}"
)
ITEMS = (
    "{% block subject %}Ihre Bestellung{% endblock %}"
    "{% block text %}{% for item in event.items %}{{ item.name }}{% endfor %}{% endblock %}"
)


def order(event_id: str, contact_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "id": event_id, "contact_id": contact_id, "type": "order",
        "occurred_at": "2026-11-01T10:00:00", "amount": "20.00", "currency": "EUR",
        "properties": properties,
    }  # fmt: skip


def test_check_passes_a_template_that_uses_what_real_orders_have(workspace: Workspace) -> None:
    setup(workspace, {"m.j2": ORDER_NAME})
    # before the store has orders, the made-up sample order has no `name`
    assert workspace.cli("check").exit_code == 1
    import_shop(workspace, [order("o1", "k1", name="#1001"), order("o2", "k2", name="#1002")])
    result = workspace.cli("check")
    assert result.exit_code == 0, result.output
    assert "(2 for the store's own contacts)" in result.stdout


def test_check_fails_a_template_that_breaks_on_a_real_order(workspace: Workspace) -> None:
    setup(workspace, {"m.j2": ITEMS})
    assert workspace.cli("check").exit_code == 0  # the made-up order has items
    items = [{"sku": "R", "name": "Rosen", "quantity": 1, "price": "20.00"}]
    import_shop(workspace, [order("o1", "k1", items=items), order("o2", "k2", name="#2")])
    result = workspace.cli("check")
    assert result.exit_code == 1
    problem = next(
        line for line in result.output.splitlines() if "event has no field 'items'" in line
    )
    assert "m.j2:1:" in problem
    assert "campaign c, template m, contact k2, event o2" in problem


def test_check_renders_only_the_store_contacts_in_the_audience(workspace: Workspace) -> None:
    setup(workspace, {"m.j2": ITEMS})
    workspace.write("campaigns/c.toml", CAMPAIGN + "[audience]\norder_count = { min = 2 }\n")
    items = [{"sku": "R", "name": "Rosen", "quantity": 1, "price": "20.00"}]
    second = dict(order("o3", "k1", items=items), occurred_at="2026-11-02T10:00:00")
    # k2's only order has no items, but k2 is not in the audience (one order)
    import_shop(workspace, [order("o1", "k1", items=items), second, order("o2", "k2", name="#2")])
    result = workspace.cli("check")
    assert result.exit_code == 0, result.output
    assert "(1 for the store's own contacts)" in result.stdout


# -- deliveries retry of a render error -----------------------------------------------------


def test_a_render_error_is_retried_once_the_template_is_fixed(workspace: Workspace) -> None:
    setup(workspace, {"m.j2": ITEMS})
    import_shop(workspace, [order("o2", "k2", name="#2")])
    assert workspace.cli("run", "--at", "2026-11-02T12:00").exit_code == 0
    [skipped] = workspace.cli_json("deliveries")
    assert (skipped["state"], skipped["reason"]) == ("skipped", "render_error")
    # still broken: nothing changes, and the error says why
    result = workspace.cli("deliveries", "retry", skipped["delivery_id"])
    assert result.exit_code == 1
    assert "event has no field 'items'" in result.output
    assert workspace.cli_json("deliveries")[0]["state"] == "skipped"
    workspace.write("templates/m.j2", ORDER_NAME)
    result = workspace.cli("deliveries", "retry", skipped["delivery_id"])
    assert result.exit_code == 0, result.output
    [pending] = workspace.cli_json("deliveries")
    assert (pending["state"], pending["reason"]) == ("pending", None)
    assert workspace.cli("run", "--at", "2026-11-02T12:05").exit_code == 0
    [sent] = workspace.outbox()
    assert sent["text"] == "Guten Tag Herr Roth: #2"
    assert sent["delivery_id"] == skipped["delivery_id"]


def test_retry_refuses_other_skipped_deliveries(workspace: Workspace) -> None:
    setup(workspace, {"m.j2": ORDER_NAME})
    import_shop(workspace, [order("o2", "k2", name="#2")])
    workspace.write("contacts2.csv", "id,consent_email\nk2,false\n")
    assert workspace.cli("import", "contacts", str(workspace.root / "contacts2.csv")).exit_code == 0
    assert workspace.cli("run", "--at", "2026-11-02T12:00").exit_code == 0
    [skipped] = workspace.cli_json("deliveries")
    assert skipped["reason"] == "no_consent"
    result = workspace.cli("deliveries", "retry", skipped["delivery_id"])
    assert result.exit_code == 1
    assert "only dead or unconfirmed deliveries can be retried" in result.output


# -- preview --html and --send-to -----------------------------------------------------------


def shipped(ws: Workspace) -> None:
    """The starter's templates and its thank-you campaign, one customer with an order."""
    skeleton = Path(__file__).resolve().parent.parent / "src" / "regard" / "skeleton"
    for path in (skeleton / "templates").iterdir():
        ws.write(f"templates/{path.name}", path.read_text(encoding="utf-8"))
    ws.write("campaigns/thank-you.toml", (skeleton / "campaigns" / "thank-you.toml").read_text())
    import_shop(ws, [order("o1", "k1", name="#1001")])


def test_preview_writes_the_full_html(workspace: Workspace, tmp_path: Path) -> None:
    shipped(workspace)
    target = tmp_path / "out" / "thank-you.html"
    target.parent.mkdir()
    result = workspace.cli(
        "preview", "thank-you", "k1", "--at", "2026-11-04T12:00", "--html", str(target)
    )
    assert result.exit_code == 0, result.output
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert '<meta charset="utf-8">' in html
    assert "Guten Tag Frau Jäger," in html
    assert "Lindenstraße 5, 10969 Berlin" in html  # the footer's address
    assert f"HTML written to {target}" in result.stdout
    assert workspace.cli_json("deliveries") == []  # a preview records nothing


def test_preview_html_of_a_text_only_message_is_an_error(
    workspace: Workspace, tmp_path: Path
) -> None:
    setup(workspace, {"m.j2": ORDER_NAME})
    import_shop(workspace, [order("o1", "k1", name="#1")])
    result = workspace.cli(
        "preview", "c", "k1", "--at", "2026-11-02T12:00", "--html", str(tmp_path / "x.html")
    )
    assert result.exit_code == 1
    assert "has no HTML part" in result.output
    assert not (tmp_path / "x.html").exists()


def test_send_to_through_the_file_provider_is_no_delivery(workspace: Workspace) -> None:
    shipped(workspace)
    result = workspace.cli(
        "preview", "thank-you", "k1", "--at", "2026-11-04T12:00", "--send-to", "me@blumen-rosa.de"
    )
    assert result.exit_code == 0, result.output
    [test] = workspace.outbox()
    assert test["to"] == "me@blumen-rosa.de"
    assert test["subject"] == "[Test] Danke für Ihre erste Bestellung bei Blumen Rosa GmbH"
    assert test["html"].startswith("<!DOCTYPE html>")
    assert test["text"].startswith("Guten Tag Frau Jäger,")
    assert test["delivery_id"].startswith("test_")
    assert workspace.cli_json("deliveries") == []
    # the contact's own delivery is still to come, and goes out as usual
    assert workspace.cli("run", "--at", "2026-11-04T12:00").exit_code == 0
    tests, real = workspace.outbox()
    assert real["to"] == "anna@example.org" and not real["subject"].startswith("[Test]")
    assert tests["delivery_id"] != real["delivery_id"]


POSTMARK_OK = {
    "To": "me@blumen-rosa.de", "SubmittedAt": "2026-11-04T12:00:00Z",
    "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ErrorCode": 0, "Message": "OK",
}  # fmt: skip


def with_postmark(ws: Workspace, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", "pm-test-token")
    text = ws.config.read_text(encoding="utf-8")
    ws.config.write_text(
        text
        + f'\n[providers.mail]\ntype = "postmark"\nserver_token = "${{POSTMARK_SERVER_TOKEN}}"\n'
        f'base_url = "{url}"\n',
        encoding="utf-8",
    )
    campaign = ws.root / "campaigns" / "thank-you.toml"
    campaign.write_text(campaign.read_text().replace('provider = "outbox"', 'provider = "mail"'))


def test_send_to_through_postmark(
    workspace: Workspace, sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped(workspace)
    with_postmark(workspace, sink.url, monkeypatch)
    sink.script(Answer(200, POSTMARK_OK))
    result = workspace.cli(
        "preview",
        "thank-you",
        "k1",
        "--at",
        "2026-11-04T12:00",
        "--send-to",
        "me@blumen-rosa.de",
        "--json",
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["test"]["message_id"] == POSTMARK_OK["MessageID"]
    [request] = sink.requests
    assert (request.method, request.path) == ("POST", "/email")
    assert request.headers["x-postmark-server-token"] == "pm-test-token"
    body = request.json()
    assert body["To"] == "me@blumen-rosa.de"
    assert body["Subject"] == "[Test] Danke für Ihre erste Bestellung bei Blumen Rosa GmbH"
    assert body["HtmlBody"].startswith("<!DOCTYPE html>")
    assert "Guten Tag Frau Jäger," in body["TextBody"]
    assert request.headers["idempotency-key"].startswith("test_")
    assert workspace.cli_json("deliveries") == []
    assert workspace.outbox() == []


def test_a_refused_test_send_is_exit_status_3(
    workspace: Workspace, sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped(workspace)
    with_postmark(workspace, sink.url, monkeypatch)
    sink.script(Answer(422, {"ErrorCode": 300, "Message": "Invalid email request"}))
    result = workspace.cli(
        "preview", "thank-you", "k1", "--at", "2026-11-04T12:00", "--send-to", "me@blumen-rosa.de"
    )
    assert result.exit_code == 3
    assert "the test to me@blumen-rosa.de via mail failed" in result.output
    assert "pm-test-token" not in result.output
    assert workspace.cli_json("deliveries") == []


def test_send_to_needs_an_address_of_the_channel(workspace: Workspace) -> None:
    shipped(workspace)
    result = workspace.cli("preview", "thank-you", "k1", "--send-to", "not an address")
    assert result.exit_code == 1
    assert "is not an e-mail address" in result.output
    assert workspace.outbox() == []


# -- [sender] and check's warnings --------------------------------------------------------


def test_sender_takes_the_legal_fields_and_templates_see_them(workspace: Workspace) -> None:
    text = workspace.config.read_text(encoding="utf-8").replace(
        'country = "DE"\n',
        'country = "DE"\nvat_id = "DE123456789"\nregister = "Amtsgericht Berlin, HRB 1"\n'
        'managing_director = "Rosa Blum"\nimprint = "https://blumen-rosa.de/impressum"\n'
        'phone = "+49 30 1234567"\nwebsite = "https://blumen-rosa.de"\n'
        'logo_url = "https://blumen-rosa.de/logo.png"\nbrand_color = "#c2185b"\n',
        1,
    )
    workspace.config.write_text(text, encoding="utf-8")
    body = "{{ sender.vat_id }} | {{ sender.register }} | {{ sender.managing_director }} | {{ sender.imprint }}"
    config, campaign = setup(
        workspace,
        {"m.j2": "{% block subject %}S{% endblock %}{% block text %}" + body + "{% endblock %}"},
    )
    message = render_message(config, campaign, ANNA, ORDER, "o-1", NOW)
    assert (
        message.text
        == "DE123456789 | Amtsgericht Berlin, HRB 1 | Rosa Blum | https://blumen-rosa.de/impressum"
    )
    assert config.sender.brand_color == "#c2185b"


def test_a_bad_brand_colour_names_the_key(workspace: Workspace) -> None:
    text = workspace.config.read_text(encoding="utf-8").replace(
        'country = "DE"\n', 'country = "DE"\nbrand_color = "pink"\n', 1
    )
    workspace.config.write_text(text, encoding="utf-8")
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "sender.brand_color" in result.output and "#c2185b" in result.output


def test_check_warns_on_the_placeholder_sender_of_init(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from regard.cli import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(tmp_path / "shop")]).exit_code == 0
    config = str(tmp_path / "shop" / "regard.toml")
    result = runner.invoke(cli, ["--config", config, "check"])
    assert result.exit_code == 0, result.output  # a warning, not a problem
    assert "sender.name: 'Mein Laden' is the placeholder of regard init" in result.stderr
    assert "sender.email: 'hallo@example.com' is the placeholder" in result.stderr
    report = json.loads(runner.invoke(cli, ["--config", config, "check", "--json"]).stdout)
    # the placeholders and the empty store
    assert len(report["warnings"]) == 3 and report["ok"] is True
    assert (tmp_path / "shop" / "templates" / "_layout.j2").is_file()
