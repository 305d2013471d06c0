"""A shop to drive through the CLI: config, campaigns and templates written as files,
contacts and events imported as JSONL on stdin, results read back as ``--json``."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from click.testing import Result

from conftest import BASIC_CONFIG, Workspace

# the shared test config, with the consent rules spelt out (they are the defaults)
CONFIG = BASIC_CONFIG.replace(
    "[providers.outbox]",
    '[consent]\nemail = "opt-in"\nsms = "opt-in"\ncard = "opt-out"\nwebhook = "opt-out"\n\n'
    "[providers.outbox]",
)

TEMPLATE = """\
{% block subject %}{{ contact | greeting }}{% endblock %}
{% block text %}{{ contact | greeting }}, danke! ({{ occasion }}){% endblock %}
{% block card %}{{ contact | greeting }}, danke!{% endblock %}
"""


class Shop:
    """A workspace driven only through the ``regard`` CLI."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        self.root = workspace.root
        self.configure()
        self.template("note", TEMPLATE)

    def configure(self, extra: str = "", timezone: str = "Europe/Berlin") -> None:
        """regard.toml: the standard shop plus ``extra`` TOML appended."""
        text = CONFIG.replace('"Europe/Berlin"', f'"{timezone}"', 1)
        self.ws.write("regard.toml", text + textwrap.dedent(extra))

    def campaign(self, campaign_id: str, trigger: str, body: str = "", **top: Any) -> None:
        """campaigns/<id>.toml: email via outbox with template ``note`` unless overridden."""
        keys = {"channel": "email", "provider": "outbox", "template": "note", **top}
        head = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
        text = head + textwrap.dedent(body) + "\n[trigger]\n" + textwrap.dedent(trigger)
        self.ws.write(f"campaigns/{campaign_id}.toml", text)

    def template(self, name: str, text: str) -> None:
        self.ws.write(f"templates/{name}.j2", text)

    def cli(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        return self.ws.cli(*args, input=input, env=env)

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self.cli(*args, input=input)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == code, result.output
        return json.loads(result.stdout)

    def import_rows(self, kind: str, *rows: dict[str, Any], code: int = 0) -> Result:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        result = self.cli("import", kind, "-", input=text)
        assert result.exit_code == code, result.output
        return result

    def contacts(self, *rows: dict[str, Any]) -> None:
        """Contacts named Anna with an e-mail address and e-mail consent unless a row says
        otherwise."""
        full = [
            {"email": f"{r['id']}@example.com", "consent_email": True, "first_name": "Anna", **r}
            for r in rows
        ]
        self.import_rows("contacts", *full)

    def events(self, *rows: dict[str, Any]) -> None:
        self.import_rows("events", *rows)

    def order(self, event_id: str, contact_id: str, when: str, amount: float = 50.0) -> None:
        self.events(
            {"id": event_id, "contact_id": contact_id, "occurred_at": when, "amount": amount}
        )

    def plan(self, at: str, campaign: str | None = None) -> list[dict[str, Any]]:
        extra = ("--campaign", campaign) if campaign else ()
        return self.json("plan", "--at", at, *extra)  # type: ignore[no-any-return]

    def tick(self, at: str, code: int = 0) -> Result:
        result = self.cli("run", "--at", at)
        assert result.exit_code == code, result.output
        return result

    def deliveries(self, *args: str) -> list[dict[str, Any]]:
        return self.json("deliveries", *args)  # type: ignore[no-any-return]

    def decided(self, at: str, campaign: str | None = None) -> list[tuple[str, str, str, str]]:
        """(contact, occasion, decision, due_at) of a plan at ``at``, sorted."""
        return sorted(
            (d["contact_id"], d["occasion"], d["decision"], d["due_at"])
            for d in self.plan(at, campaign)
        )

    def outbox(self) -> list[dict[str, Any]]:
        return self.ws.outbox()

    def db_bytes(self) -> bytes:
        parts = [p.read_bytes() for p in self.root.glob("regard.db*")]
        return b"".join(parts)


@pytest.fixture
def shop(workspace: Workspace) -> Shop:
    return Shop(workspace)
