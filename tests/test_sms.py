"""SMS length and numbers: GSM-7 vs UCS-2 segments at check and preview (with the cost of a
message when the provider has a cost per segment), texts over 1,600 characters refused at
check, fixed-line numbers skipped ``no_address``, and a sent SMS costing its segments."""

from __future__ import annotations

import json

import pytest

from conftest import Workspace
from regard.channels.sms import MAX_CHARS, is_fixed_line, segments
from services import FakeTwilio

GERMAN_124 = (
    "Hallo Erika, danke für Ihre Bestellung! Ihr Gutschein „DANKE10“ gilt bis Ende Juni. "
    "Bis bald, Ihr Team vom Blumenladen Rosa!"
)


@pytest.mark.parametrize(
    ("text", "encoding", "units", "count"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # the extension table takes two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("Grüße aus Köln, Straße 5", "GSM-7", 24, 1),
        ("ä" * 70, "GSM-7", 70, 1),
        ("„" + "a" * 69, "UCS-2", 70, 1),
        ("„" + "a" * 70, "UCS-2", 71, 2),
        ("„" + "a" * 133, "UCS-2", 134, 2),
        ("„" + "a" * 134, "UCS-2", 135, 3),
        ("🌷" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 units
        ("🌷" * 36, "UCS-2", 72, 2),
    ],
)
def test_segments(text, encoding, units, count):
    found = segments(text)
    assert (found.encoding, found.units, found.segments) == (encoding, units, count)


def test_one_low_quotation_mark_makes_a_124_character_text_two_segments():
    assert len(GERMAN_124) == 124
    assert segments(GERMAN_124.replace("„", '"').replace("“", '"')).segments == 1
    found = segments(GERMAN_124)
    assert (found.encoding, found.segments, found.first_non_gsm) == ("UCS-2", 2, "„")


@pytest.mark.parametrize(
    ("phone", "fixed"),
    [
        ("+493012345678", True),  # Berlin landline
        ("+4915112345678", False),  # German mobile
        ("+12015550123", False),  # US: fixed line or mobile, cannot tell
        ("+43123", False),  # too short to place: kept
    ],
)
def test_fixed_line_numbers(phone, fixed):
    assert is_fixed_line(phone) is fixed


def sms_workspace(workspace: Workspace, text: str, cost: str = "") -> None:
    config = workspace.config.read_text(encoding="utf-8")
    workspace.write(
        "regard.toml",
        config.replace(
            '[providers.outbox]\ntype = "file"', f'[providers.outbox]\ntype = "file"\n{cost}'
        ),
    )
    workspace.write(
        "campaigns/danke.toml",
        'channel = "sms"\nprovider = "outbox"\ntemplate = "danke"\n[trigger]\ntype = "post_purchase"\n',
    )
    workspace.write("templates/danke.j2", "{% block text %}" + text + "{% endblock %}")


def test_check_shows_segments_and_the_cost_of_a_message(workspace: Workspace) -> None:
    sms_workspace(workspace, GERMAN_124, cost="cost = 0.0825")
    result = workspace.cli("check")
    assert result.exit_code == 0, result.output
    assert "danke: SMS of up to 2 segments (UCS-2 because of '„'), 124 characters" in result.stdout
    assert "0.165 EUR per message" in result.stdout
    data = json.loads(workspace.cli("check", "--json").stdout)
    assert data["sms"]["danke"]["segments"] == 2
    assert data["sms"]["danke"]["cost_per_message"] == pytest.approx(0.165)


def test_check_refuses_an_sms_over_1600_characters(workspace: Workspace) -> None:
    sms_workspace(workspace, "x" * (MAX_CHARS + 1))
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "danke.j2: the SMS text is 1601 characters long" in result.output
    sms_workspace(workspace, "x" * MAX_CHARS)
    assert workspace.cli("check").exit_code == 0


def import_contact(workspace: Workspace, phone: str) -> None:
    contacts = workspace.write(
        "contacts.csv", f"id,phone,first_name,consent_sms\nc1,{phone},Erika,yes\n"
    )
    events = workspace.write(
        "events.csv", "id,contact_id,type,occurred_at,amount\no1,c1,order,2026-05-20T10:00:00,10\n"
    )
    assert workspace.cli("import", "contacts", str(contacts)).exit_code == 0
    assert workspace.cli("import", "events", str(events)).exit_code == 0


def test_preview_shows_segments_and_cost(workspace: Workspace) -> None:
    sms_workspace(workspace, GERMAN_124, cost="cost = 0.08")
    import_contact(workspace, "+4915112345678")
    result = workspace.cli("preview", "danke", "c1", "--at", "2026-05-20T12:00:00")
    assert result.exit_code == 0, result.output
    assert "SMS:     2 segments (UCS-2 because of '„'), 124 characters; 0.16 EUR per message" in (
        result.stdout
    )


SID = "AC3f9b2c1d4e5f60718293a4b5c6d7e8f9"
TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def test_twilio_skips_a_fixed_line_and_a_sent_sms_costs_its_segments(
    workspace: Workspace,
) -> None:
    with FakeTwilio(SID, TOKEN) as service:
        sms_workspace(workspace, GERMAN_124)
        config = workspace.config.read_text(encoding="utf-8")
        workspace.write(
            "regard.toml",
            config + f'[providers.sms]\ntype = "twilio"\naccount_sid = "{SID}"\n'
            f'auth_token = "{TOKEN}"\nfrom = "+15005550006"\nbase_url = "{service.url}"\n'
            "cost = 0.08\n",
        )
        for name in ("danke", "danke-mobil"):
            workspace.write(
                f"campaigns/{name}.toml",
                'channel = "sms"\nprovider = "sms"\ntemplate = "danke"\n'
                '[trigger]\ntype = "post_purchase"\n',
            )
        import_contact(workspace, "+493012345678")
        workspace.write(
            "campaigns/danke-mobil.toml",
            'channel = "sms"\nprovider = "sms"\ntemplate = "danke"\nenabled = false\n'
            '[trigger]\ntype = "post_purchase"\n',
        )
        assert workspace.cli("run", "--at", "2026-05-20T12:00:00").exit_code == 0
        [row] = workspace.cli_json("deliveries")
        assert (row["state"], row["reason"]) == ("skipped", "no_address")
        assert service.accepted == []

        import_contact(workspace, "+4915112345678")
        workspace.write(
            "campaigns/danke-mobil.toml",
            'channel = "sms"\nprovider = "sms"\ntemplate = "danke"\n'
            '[trigger]\ntype = "post_purchase"\n',
        )
        assert workspace.cli("run", "--at", "2026-05-20T12:00:00").exit_code == 0
        report = workspace.cli_json("report", "--since", "2026-05-01", "--until", "2026-05-31")
        assert report["campaigns"]["danke-mobil"]["sent"] == 1
        assert report["campaigns"]["danke-mobil"]["cost"] == pytest.approx(0.16)
        assert [a.to for a in service.accepted] == ["+4915112345678"]


def test_the_file_provider_passes_any_number_on(workspace: Workspace) -> None:
    sms_workspace(workspace, "Danke!")
    import_contact(workspace, "+493012345678")
    assert workspace.cli("run", "--at", "2026-05-20T12:00:00").exit_code == 0
    assert [r["to"] for r in workspace.outbox()] == ["+493012345678"]
