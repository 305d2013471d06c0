"""A provider's secrets are needed only to send through it.

``regard import`` and the other commands that do not send work while a provider's
``${NAME}`` is not set; sending through that provider, ``check`` of a campaign using it,
and building it name the file, the line and the key.
"""

from __future__ import annotations

import json

from conftest import BASIC_CONFIG, Workspace

TWILIO = """
[providers.sms]
type = "twilio"
account_sid = "${REGARD_TEST_UNSET_SID}"
auth_token = "${REGARD_TEST_UNSET_TOKEN}"
from = "+4915112345678"
"""


def test_commands_that_do_not_send_need_no_provider_secret(workspace: Workspace) -> None:
    workspace.write("regard.toml", BASIC_CONFIG + TWILIO)
    contacts = workspace.write("c.csv", "id,email\n1,anna@example.de\n")
    result = workspace.cli("import", "contacts", str(contacts))
    assert result.exit_code == 0, result.output
    assert json.loads(workspace.cli("contacts", "show", "1", "--json").stdout)["id"] == "1"
    assert workspace.cli("status").exit_code in (0, 1)
    assert workspace.cli("deliveries", "--json").exit_code == 0


def test_a_campaign_sending_through_it_names_file_line_and_key(workspace: Workspace) -> None:
    config = workspace.write("regard.toml", BASIC_CONFIG + TWILIO)
    workspace.write(
        "campaigns/hi.toml",
        'channel = "sms"\nprovider = "sms"\ntemplate = "hi"\n[trigger]\ntype = "post_purchase"\n',
    )
    workspace.write(
        "templates/hi.j2", "{% block text %}Hallo {{ contact | greeting }}{% endblock %}"
    )
    result = workspace.cli("check")
    assert result.exit_code == 1
    line = BASIC_CONFIG.count("\n") + TWILIO[: TWILIO.index("account_sid")].count("\n") + 1
    assert f"{config}:{line}: providers.sms.account_sid: environment variable " in result.output
    assert "REGARD_TEST_UNSET_SID is not set" in result.output
    assert "REGARD_TEST_UNSET_TOKEN is not set" in result.output


def test_a_missing_variable_elsewhere_is_still_an_error(workspace: Workspace) -> None:
    workspace.write("regard.toml", BASIC_CONFIG.replace('"Europe/Berlin"', '"${REGARD_TEST_TZ}"'))
    result = workspace.cli("status")
    assert result.exit_code == 1
    assert "REGARD_TEST_TZ is not set" in result.output


def test_run_leaves_its_deliveries_pending_and_says_why(workspace: Workspace) -> None:
    workspace.write("regard.toml", BASIC_CONFIG + TWILIO)
    workspace.write(
        "campaigns/hi.toml",
        'channel = "sms"\nprovider = "sms"\ntemplate = "hi"\n[trigger]\ntype = "post_purchase"\n',
    )
    workspace.write(
        "templates/hi.j2", "{% block text %}Hallo {{ contact | greeting }}{% endblock %}"
    )
    workspace.write("c.csv", "id,phone,consent_sms\n1,+4915112345670,true\n")
    workspace.write("e.csv", "id,contact_id,occurred_at,amount\no1,1,2026-11-30T10:00:00,20\n")
    for kind, name in (("contacts", "c.csv"), ("events", "e.csv")):
        assert workspace.cli("import", kind, str(workspace.root / name)).exit_code == 0
    result = workspace.cli("run", "--at", "2026-11-30T12:00:00")
    assert "REGARD_TEST_UNSET_SID is not set" in result.output
    states = [d["state"] for d in json.loads(workspace.cli("deliveries", "--json").stdout)]
    assert states == ["pending"]
