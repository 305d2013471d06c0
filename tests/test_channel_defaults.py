"""``[channels]`` in regard.toml: a default provider per channel, so a campaign without
``provider`` uses its channel's; switching from the file outbox to a real service is one
line of the config."""

from __future__ import annotations

import json

CAMPAIGN = """\
channel = "email"
template = "danke"

[trigger]
type = "post_purchase"
delay = "1h"
"""


def setup(workspace, channels: str) -> None:
    config = workspace.config.read_text(encoding="utf-8")
    workspace.write(
        "regard.toml",
        config + '\n[providers.mail]\ntype = "file"\npath = "outbox/mail.jsonl"\n' + channels,
    )
    workspace.write("campaigns/danke.toml", CAMPAIGN)
    workspace.write(
        "templates/danke.j2",
        "{% block subject %}Danke!{% endblock %}{% block text %}Danke.{% endblock %}",
    )


def test_a_campaign_without_provider_uses_its_channels_default(workspace):
    setup(workspace, '\n[channels]\nemail = "mail"\n')
    contacts = workspace.write(
        "contacts.csv", "id,email,consent_email\nc1,juergen@example.de,yes\n"
    )
    events = workspace.write(
        "events.csv", "id,contact_id,type,occurred_at\no1,c1,order,2026-05-20T10:00:00\n"
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0
    result = workspace.cli("run", "--at", "2026-05-20T12:00:00")
    assert result.exit_code == 0, result.output + result.stderr
    [line] = (workspace.root / "outbox/mail.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["campaign"] == "danke"
    assert not (workspace.root / "outbox/messages.jsonl").exists()

    # a campaign's own provider still wins
    workspace.write("campaigns/danke.toml", 'provider = "outbox"\n' + CAMPAIGN)
    assert workspace.cli("check").exit_code == 0


def test_no_provider_and_no_default_names_the_file_and_line(workspace):
    setup(workspace, "")
    result = workspace.cli("check")
    assert result.exit_code == 1
    out = result.output + result.stderr
    assert "danke.toml:1: provider: required key is missing: name a [providers.NAME] here" in out
    assert "[channels]" in out
    assert "Field required" not in out


def test_channels_are_checked_against_providers(workspace):
    setup(workspace, '\n[channels]\nemail = "mial"\n')
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "regard.toml:24: channels: email: no [providers.mial]" in result.output


def test_channels_name_channels(workspace):
    setup(workspace, '\n[channels]\nfax = "mail"\n')
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "channels: fax: no such channel" in result.output + result.stderr


def test_the_default_must_serve_the_channel(workspace):
    config = workspace.config.read_text(encoding="utf-8")
    workspace.write(
        "regard.toml",
        config + '\n[providers.sms]\ntype = "seven"\napi_key = "k"\n\n[channels]\nemail = "sms"\n',
    )
    workspace.write("campaigns/danke.toml", CAMPAIGN)
    workspace.write(
        "templates/danke.j2", "{% block subject %}D{% endblock %}{% block text %}D{% endblock %}"
    )
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "provider 'sms' (type 'seven') cannot deliver email" in result.output + result.stderr
