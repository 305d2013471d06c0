"""What the docs show must run: every campaign of docs/campaigns.md loads, every filter of its
grammar table is valid, and the example templates sign off on a line of their own."""

from __future__ import annotations

import re
import shutil
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import Workspace
from regard.campaigns import load_campaigns
from regard.grammar import check_filter
from regard.render import render_message
from regard.render.check import sample_contacts, sample_event
from regard.workspace import load_config

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGNS_DOC = (ROOT / "docs" / "campaigns.md").read_text(encoding="utf-8")
SKELETON = ROOT / "src" / "regard" / "skeleton"


def toml_blocks(text: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", text, re.DOTALL)


def grammar_examples() -> list[str]:
    section = CAMPAIGNS_DOC.split("## The filter grammar", 1)[1].split("**Fields.**", 1)[0]
    return re.findall(r"`(\w+ = (?:[^`]+))`", section)


def test_every_campaign_of_the_campaigns_doc_loads(workspace: Workspace) -> None:
    blocks = toml_blocks(CAMPAIGNS_DOC)
    assert blocks
    for number, block in enumerate(blocks):
        template = tomllib.loads(block)["template"]
        workspace.write(f"templates/{template}.j2", "{% block subject %}s{% endblock %}\n"
                        "{% block text %}t{% endblock %}\n")  # fmt: skip
        # a block that names its file (``# campaigns/<id>.toml``) is that campaign: the
        # steps of a journey refer to each other by id
        named = re.match(r"# campaigns/([\w-]+)\.toml\n", block)
        workspace.write(f"campaigns/{named[1] if named else f'doc-{number}'}.toml", block)
    loaded = load_campaigns(load_config(workspace.config))
    assert loaded.errors == []
    assert len(loaded.campaigns) == len(blocks)


@pytest.mark.parametrize("example", grammar_examples())
def test_every_filter_of_the_grammar_table_is_valid(example: str) -> None:
    check_filter(tomllib.loads(example))


def test_the_grammar_table_has_its_examples() -> None:
    assert len(grammar_examples()) >= 8


@pytest.mark.parametrize("locale", ["de", "en"])
def test_example_templates_sign_off_on_a_line_of_their_own(
    workspace: Workspace, locale: str
) -> None:
    # a tag at the end of a line takes the line break with it (trim_blocks): "BerlinMein Laden"
    shutil.rmtree(workspace.root / "campaigns")
    shutil.rmtree(workspace.root / "templates")
    shutil.copytree(SKELETON / "campaigns", workspace.root / "campaigns")
    shutil.copytree(SKELETON / "templates", workspace.root / "templates")
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(
        text.replace('country = "DE"\n', 'country = "DE"\nphone = "+49 30 1234567"\n'),
        encoding="utf-8",
    )
    config = load_config(workspace.config)
    assert config.sender.phone and config.sender.city
    now = datetime(2026, 11, 22, 9, tzinfo=UTC)
    for campaign in load_campaigns(config).campaigns:
        event = sample_event(config, campaign, now)
        for contact in sample_contacts(config, locale, now):
            message = render_message(config, campaign, contact, event, "sample", now)
            body = message.card or message.text or ""
            assert config.sender.name in body.splitlines(), (campaign.id, body)
