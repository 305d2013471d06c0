"""``regard check`` and ``regard campaigns`` through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import Workspace

SKELETON = Path(__file__).resolve().parent.parent / "src" / "regard" / "skeleton"

THANKS = 'channel = "email"\nprovider = "outbox"\ntemplate = "thanks"\n[trigger]\ntype = "post_purchase"\n'


def with_examples(ws: Workspace) -> None:
    shutil.rmtree(ws.root / "campaigns")
    shutil.rmtree(ws.root / "templates")
    shutil.copytree(SKELETON / "campaigns", ws.root / "campaigns")
    shutil.copytree(SKELETON / "templates", ws.root / "templates")


def problem_lines(stdout: str) -> list[str]:
    """check's problems: its lines but the purposes and notes about campaigns."""
    return [line for line in stdout.splitlines() if not line.startswith(("campaign ", "warning: "))]


def test_check_passes_on_the_shipped_examples(workspace: Workspace) -> None:
    with_examples(workspace)
    result = workspace.cli("check")
    assert result.exit_code == 0, result.output
    # the store is empty: a warning (exit 0), so not "ok"
    last = "no problems, 1 warning: 9 campaigns, 18 templates, 36 sample renders"
    assert result.stdout.splitlines()[-1] == last
    assert "the store has no contacts yet" in result.stderr
    # each campaign's purpose; the shipped e-mails show the unsubscribe link in their text
    # (the macro) and html (the layout) themselves, so regard appends no footer to them
    assert "campaign win-back: marketing" in result.stdout.splitlines()
    assert "campaign nps-apology: service" in result.stdout.splitlines()
    assert [line for line in result.stdout.splitlines() if "footer" in line] == []
    report = workspace.cli_json("check")
    assert report["ok"] is True
    assert report["problems"] == []
    assert len(report["campaigns"]) == 9


def test_check_lists_every_problem_and_exits_1(workspace: Workspace) -> None:
    with_examples(workspace)
    workspace.write("campaigns/broken.toml", THANKS.replace("post_purchase", "post_purchas"))
    workspace.write("campaigns/typo.toml", THANKS + 'dealy = "2d"\n')
    workspace.write("campaigns/thanks.toml", THANKS)
    # prints a field that not every contact has, and one that does not exist at all
    workspace.write(
        "templates/thanks.j2",
        "{% block subject %}Hi {{ contact.first_name }}{% endblock %}\n"
        "{% block text %}\n{{ contact.nickname }}\n{% endblock %}\n",
    )
    workspace.write("templates/syntax.j2", "{% block text %}{% if %}{% endblock %}")
    result = workspace.cli("check")
    assert result.exit_code == 1
    root = str(workspace.root) + "/"
    lines = problem_lines(result.stdout.replace(root, ""))
    assert lines == [
        "campaigns/broken.toml:5: trigger.type: unknown trigger type 'post_purchas' "
        "(did you mean 'post_purchase'?); one of: event, post_purchase, inactivity, "
        "anniversary, milestone, followup",
        "campaigns/typo.toml:6: trigger.dealy: unknown key (did you mean 'delay'?)",
        "templates/syntax.j2:1: Expected an expression, got 'end of statement block'",
        "templates/thanks.j2:3: contact has no field 'nickname' "
        "(campaign thanks, locale de, contact with names)",
        "templates/thanks.j2:1: contact.first_name is empty here (test it with "
        "{% if contact.first_name %}) (campaign thanks, locale de, contact without names)",
    ]
    assert "5 problems" in result.stderr
    report = json.loads(workspace.cli("check", "--json").stdout)
    assert report["ok"] is False
    assert [p.replace(root, "") for p in report["problems"]] == lines


def test_check_renders_cards_against_the_provider_limit(workspace: Workspace) -> None:
    workspace.write(
        "campaigns/card.toml",
        'channel = "card"\nprovider = "outbox"\ntemplate = "card"\n'
        '[trigger]\ntype = "milestone"\nmetric = "order_count"\nthreshold = 5\n',
    )
    workspace.write(
        "templates/card.j2",
        "{% block card %}{{ contact | greeting }}, {{ 'x' * 990 }}{% endblock %}",
    )
    result = workspace.cli("check")
    assert result.exit_code == 1
    # a greeting with names makes it too long; "Hallo, " / "Hello, " does not
    assert problem_lines(result.stdout.replace(str(workspace.root) + "/", "")) == [
        "templates/card.j2: the card text is 1008 characters long; provider 'outbox' takes "
        "at most 1000 (campaign card, locale de, contact with names)",
        "templates/card.j2: the card text is 1005 characters long; provider 'outbox' takes "
        "at most 1000 (campaign card, locale en, contact with names)",
    ]


def test_check_renders_with_the_attributes_of_the_store(workspace: Workspace) -> None:
    workspace.write("campaigns/thanks.toml", THANKS)
    workspace.write(
        "templates/thanks.j2",
        "{% block subject %}Hi{% endblock %}{% block text %}Hello\n"
        "{% if contact.credit is defined %}{{ contact.credit | money }}{% endif %}{% endblock %}",
    )
    assert workspace.cli("check").exit_code == 0
    workspace.write("contacts.csv", "id,email,credit\n1,a@example.com,ten euros\n")
    assert workspace.cli("import", "contacts", str(workspace.root / "contacts.csv")).exit_code == 0
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "thanks.j2:2: money needs a number, not 'ten euros'" in result.stdout


def test_campaigns_lists_with_counts(workspace: Workspace) -> None:
    with_examples(workspace)
    (workspace.root / "campaigns" / "birthday.toml").write_text(
        "enabled = false\n" + (SKELETON / "campaigns" / "birthday.toml").read_text()
    )
    result = workspace.cli("campaigns")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "id", "trigger", "channel", "purpose", "provider", "enabled", "pending", "sending",
        "sent", "held_out", "skipped", "dead", "cancelled",
    ]  # fmt: skip
    assert lines[2].split()[:6] == [
        "birthday", "anniversary", "birthday", "email", "marketing", "outbox",
    ]  # fmt: skip
    assert "no" in lines[2].split()
    assert not (workspace.root / "regard.db").exists()  # listing never creates a store
    rows = workspace.cli_json("campaigns")
    thank_you = next(r for r in rows if r["id"] == "thank-you")
    assert thank_you == {
        "id": "thank-you",
        "name": "Danke nach der ersten Bestellung",
        "trigger": "post_purchase +2d (#1)",
        "channel": "email",
        "purpose": "marketing",
        "provider": "outbox",
        "enabled": True,
        "priority": 0,
        "holdout": 0.1,
        "deliveries": {},
    }


def test_campaigns_with_a_broken_file_lists_the_rest_and_exits_1(workspace: Workspace) -> None:
    workspace.write(
        "templates/thanks.j2", "{% block subject %}x{% endblock %}{% block text %}y{% endblock %}"
    )
    workspace.write("campaigns/thanks.toml", THANKS)
    workspace.write("campaigns/typo.toml", "prority = 1\n" + THANKS)
    result = workspace.cli("campaigns")
    assert result.exit_code == 1
    assert "thanks" in result.stdout
    assert "typo.toml:1: prority: unknown key (did you mean 'priority'?)" in result.stderr


def test_check_renders_with_the_event_the_trigger_brings(workspace: Workspace) -> None:
    template = (
        "{% block subject %}Hi{% endblock %}"
        "{% block text %}Last seen {{ event.occurred_at | date }}{% endblock %}"
    )
    workspace.write("templates/t.j2", template)
    workspace.write(
        "campaigns/lapse.toml",
        'channel = "email"\nprovider = "outbox"\ntemplate = "t"\n'
        '[trigger]\ntype = "inactivity"\nafter = "90d"\n',
    )
    assert workspace.cli("check").exit_code == 0
    workspace.write(
        "campaigns/lapse.toml",
        'channel = "email"\nprovider = "outbox"\ntemplate = "t"\n'
        '[trigger]\ntype = "anniversary"\nfield = "birthday"\n',
    )
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert "there is no event for a campaign with trigger anniversary" in result.stdout


def test_check_finds_locales_of_the_store_without_a_template(workspace: Workspace) -> None:
    workspace.write("campaigns/thanks.toml", THANKS)
    workspace.write(
        "templates/thanks.de.j2",
        "{% block subject %}Hallo{% endblock %}{% block text %}Danke{% endblock %}",
    )
    workspace.write(
        "contacts.csv",
        "id,email,locale\n1,a@example.com,de\n2,b@example.com,en\n3,c@example.com,\n",
    )
    assert workspace.cli("import", "contacts", str(workspace.root / "contacts.csv")).exit_code == 0
    result = workspace.cli("check")
    assert result.exit_code == 1
    assert problem_lines(result.stdout.replace(str(workspace.root) + "/", "")) == [
        "templates/thanks.j2: no template 'thanks' for locale 'en', which 1 contact(s) in the "
        "store speak (campaign thanks)"
    ]


def test_the_shipped_e_mails_show_the_unsubscribe_link_once(workspace: Workspace) -> None:
    with_examples(workspace)
    workspace.write(
        "contacts.jsonl",
        "".join(
            json.dumps(row) + "\n"
            for row in (
                {"id": "de1", "email": "jürgen@example.de", "first_name": "Jürgen",
                 "locale": "de", "consent_email": True},
                {"id": "en1", "email": "ann@example.com", "first_name": "Ann",
                 "locale": "en", "consent_email": True},
            )
        ),
    )  # fmt: skip
    workspace.write(
        "events.jsonl",
        "".join(
            json.dumps({"id": f"o-{c}", "contact_id": c, "type": "order",
                        "occurred_at": "2026-03-02T10:00:00Z", "amount": 49.9}) + "\n"
            for c in ("de1", "en1")
        ),
    )  # fmt: skip
    for kind in ("contacts", "events"):
        result = workspace.cli("import", kind, str(workspace.root / f"{kind}.jsonl"))
        assert result.exit_code == 0, result.output
    result = workspace.cli("run", "--at", "2026-03-05T12:00:00Z")
    assert result.exit_code == 0, result.output
    thanks = [r for r in workspace.outbox() if r["campaign"] == "thank-you"]
    assert len(thanks) == 2
    for record in thanks:
        url = record["headers"]["List-Unsubscribe"][1:-1]
        assert record["text"].count(url) == 1, record["text"]
        assert record["html"].count(url) == 1  # the layout's footer, nothing appended
    lines = {
        "de1": "Keine E-Mails mehr erhalten? Hier abmelden: ",  # the template's own line
        "en1": "No more e-mails? Unsubscribe here: ",
    }
    for record in thanks:
        url = record["headers"]["List-Unsubscribe"][1:-1]
        assert lines[record["contact_id"]] + url in record["text"]
