"""Campaign files: every validation error with its exact message, file and line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import Workspace
from regard.campaigns import load_campaign, load_campaigns
from regard.campaigns.model import PostPurchaseTrigger
from regard.errors import CampaignError
from regard.workspace import load_config

TEMPLATE = "{% block subject %}Hi{% endblock %}{% block text %}Hello{% endblock %}"
CARD = "{% block card %}Danke!{% endblock %}"


def problems(ws: Workspace, text: str, name: str = "c") -> list[str]:
    """The problems of one campaign file, with the workspace path cut off."""
    ws.write("templates/t.j2", TEMPLATE)
    ws.write(f"campaigns/{name}.toml", text)
    loaded = load_campaigns(load_config(ws.config))
    prefix = str(ws.root / "campaigns") + "/"
    return [p.replace(prefix, "") for p in loaded.errors]


BASE = 'channel = "email"\nprovider = "outbox"\ntemplate = "t"\n'


def test_minimal_campaign_gets_the_documented_defaults(workspace: Workspace) -> None:
    assert problems(workspace, BASE + '[trigger]\ntype = "post_purchase"\n') == []
    campaign = load_campaign(load_config(workspace.config), "c")
    assert campaign.id == "c"
    assert campaign.title == "c"
    assert campaign.enabled is True
    assert campaign.priority == 0
    assert campaign.max_lateness == timedelta(days=2)
    assert campaign.cooldown == timedelta(0)
    assert campaign.holdout == 0.0
    assert campaign.daily_limit == 0
    assert campaign.once_per_contact is False
    assert isinstance(campaign.trigger, PostPurchaseTrigger)
    assert campaign.trigger.event == "order"
    assert campaign.audience == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            BASE + '[trigger]\ntype = "post_purchase"\ndealy = "3d"\n',
            "c.toml:6: trigger.dealy: unknown key (did you mean 'delay'?)",
        ),
        (
            BASE + 'trigger = { type = "post_purchase", dealy = "3d" }\n',
            "c.toml:4: trigger.dealy: unknown key (did you mean 'delay'?)",
        ),
        (
            BASE + '[trigger]\ntype = "post_purchas"\n',
            "c.toml:5: trigger.type: unknown trigger type 'post_purchas' (did you mean "
            "'post_purchase'?); one of: event, post_purchase, inactivity, anniversary, milestone, followup",
        ),
        (
            BASE + '[trigger]\ndelay = "3d"\n',
            "c.toml:4: trigger.type: required key is missing "
            "(one of: event, post_purchase, inactivity, anniversary, milestone, followup)",
        ),
        (
            BASE + '[trigger]\ntype = "inactivity"\n',
            "c.toml:4: trigger.after: required key is missing",
        ),
        (
            BASE + '[trigger]\ntype = "event"\ndelay = "3d"\n',
            "c.toml:4: trigger.event: required key is missing",
        ),
        (
            BASE + '[trigger]\ntype = "post_purchase"\ndelay = "3 days"\n',
            "c.toml:6: trigger.delay: '3 days' is not a duration: an integer and a unit "
            's, m, h, d or w, like "3d"',
        ),
        (
            BASE + '[trigger]\ntype = "post_purchase"\ndelay = "-3d"\n',
            "c.toml:6: trigger.delay: '-3d': a negative duration is not allowed here",
        ),
        (
            BASE + '[trigger]\ntype = "milestone"\nmetric = "orders"\nthreshold = 5\n',
            "c.toml:6: trigger.metric: 'orders' is not one of 'order_count' or 'total_spent'",
        ),
        (
            BASE + '[trigger]\ntype = "anniversary"\nfield = "birthday"\nyears = [0, 5]\n',
            "c.toml:7: trigger.years.0: Input should be greater than or equal to 1",
        ),
        (
            BASE + '[trigger]\ntype = "anniversary"\nfield = "birthday"\nat = "9 Uhr"\n',
            "c.toml:7: trigger.at: '9 Uhr' is not a time of day like \"09:00\"",
        ),
        (
            BASE + '[trigger]\ntype = "anniversary"\nfield = "city"\n',
            "c.toml:6: trigger.field: city is not a date; use birthday, signup_at, "
            "first_order_at or a date attribute",
        ),
        (
            'channel = "emial"\nprovider = "outbox"\ntemplate = "t"\n[trigger]\ntype = "event"\n'
            'event = "nps"\n',
            "c.toml:1: channel: 'emial' is not one of 'email', 'sms', 'card' or 'webhook' "
            "(did you mean 'email'?)",
        ),
        (
            BASE + 'holdout = 0.7\n[trigger]\ntype = "post_purchase"\n',
            "c.toml:4: holdout: Input should be less than or equal to 0.5",
        ),
        (
            BASE + 'starts_at = "2026-05-01"\nends_at = "2026-04-01"\n'
            '[trigger]\ntype = "post_purchase"\n',
            "c.toml: (top level): ends_at is before starts_at",
        ),
        (
            BASE + '[trigger]\ntype = "post_purchase"\n[window]\nhours = [9, 25]\n',
            "c.toml:7: window.hours: hours is [start, end] with 0 ≤ start < end ≤ 24, like [9, 18]",
        ),
        (
            BASE + '[trigger]\ntype = "post_purchase"\n[window]\ndays = ["mon", "fir"]\n',
            "c.toml:7: window.days.1: 'fir' is not one of 'mon', 'tue', 'wed', 'thu', 'fri', "
            "'sat' or 'sun' (did you mean 'fri'?)",
        ),
        (
            BASE + '[trigger]\ntype = "post_purchase"\n[goal]\nwithn = "30d"\n',
            "c.toml:7: goal.withn: unknown key (did you mean 'within'?)",
        ),
        (
            BASE + 'prority = 3\n[trigger]\ntype = "post_purchase"\n',
            "c.toml:4: prority: unknown key (did you mean 'priority'?)",
        ),
        (
            BASE + '[trigger]\ntype = "post_purchase"\n[card]\ndesign = "x"\n',
            "c.toml:6: card: [card] is only for channel card, not email",
        ),
        (
            'channel = "email"\ntemplate = "t"\n[trigger]\ntype = "post_purchase"\n',
            "c.toml:1: provider: required key is missing: name a [providers.NAME] here, "
            "or a default for channel 'email' in [channels] of the config",
        ),
        (
            BASE + '[trigger]\ntype = "post_purchase"\nnth = 0\n',
            "c.toml:6: trigger.nth: Input should be greater than or equal to 1",
        ),
        (
            BASE + 'daily_limit = -1\n[trigger]\ntype = "post_purchase"\n',
            "c.toml:4: daily_limit: Input should be greater than or equal to 0",
        ),
        (
            BASE + 'enabled = "maybe"\n[trigger]\ntype = "post_purchase"\n',
            "c.toml:4: enabled: Input should be a valid boolean, unable to interpret input",
        ),
        (
            BASE + '[trigger]\ntype = "inactivity"\nafter = "90d"\nevents = "order"\n',
            "c.toml:7: trigger.events: Input should be a valid list",
        ),
        (
            BASE + '[trigger]\ntype = "post_purchase"\nwhere = { amount = { min = "100" } }\n',
            "c.toml:6: trigger.where.amount.min: expected a number, like 100, not '100'",
        ),
    ],
)
def test_campaign_errors(workspace: Workspace, text: str, expected: str) -> None:
    assert problems(workspace, text) == [expected]


def test_provider_must_exist_and_serve_the_channel(workspace: Workspace) -> None:
    text = (
        'channel = "email"\nprovider = "outbx"\ntemplate = "t"\n[trigger]\ntype = "post_purchase"\n'
    )
    assert problems(workspace, text) == [
        "c.toml:2: provider: no [providers.outbx] in the config "
        "(did you mean 'outbox'? configured: outbox)"
    ]


def test_the_provider_must_serve_the_channel(workspace: Workspace) -> None:
    workspace.write(
        "regard.toml",
        (
            workspace.config.read_text()
            + '\n[providers.mail]\ntype = "postmark"\nserver_token = "x"\n'
        ),
    )
    workspace.write("templates/card.j2", CARD)
    text = 'channel = "card"\nprovider = "mail"\ntemplate = "card"\n[trigger]\ntype = "post_purchase"\n'
    assert problems(workspace, text) == [
        "c.toml:1: channel: provider 'mail' (type 'postmark') cannot deliver card; it serves email"
    ]


def test_template_must_exist(workspace: Workspace) -> None:
    text = 'channel = "email"\nprovider = "outbox"\ntemplate = "thanks"\n[trigger]\ntype = "post_purchase"\n'
    assert problems(workspace, text) == [
        f"c.toml:3: template: no template thanks.j2 (or thanks.<locale>.j2) in "
        f"{workspace.root / 'templates'}"
    ]


def test_a_misspelt_template_gets_a_suggestion(workspace: Workspace) -> None:
    workspace.write("templates/thank-you.de.j2", TEMPLATE)
    text = 'channel = "email"\nprovider = "outbox"\ntemplate = "thank-yuo"\n[trigger]\ntype = "post_purchase"\n'
    assert problems(workspace, text) == [
        f"c.toml:3: template: no template thank-yuo.j2 (or thank-yuo.<locale>.j2) in "
        f"{workspace.root / 'templates'} (did you mean 'thank-you'?)"
    ]


def test_a_missing_campaigns_folder_is_reported(workspace: Workspace) -> None:
    import shutil

    shutil.rmtree(workspace.root / "campaigns")
    loaded = load_campaigns(load_config(workspace.config))
    assert loaded.campaigns == []
    assert loaded.errors == [
        f"{workspace.root / 'campaigns'}: no campaigns folder (set `campaigns` in {workspace.config})"
    ]


def test_a_template_in_one_locale_is_enough(workspace: Workspace) -> None:
    workspace.write("templates/karte.de.j2", CARD)
    text = 'channel = "card"\nprovider = "outbox"\ntemplate = "karte"\n[trigger]\ntype = "post_purchase"\n'
    assert problems(workspace, text) == []


def test_audience_and_where_errors(workspace: Workspace) -> None:
    text = (
        BASE + '[trigger]\ntype = "post_purchase"\nwhere = { amount = { mni = 100 } }\n'
        "[audience]\n"
        "order_cuont = 1\n"
        'tags = { min = 1, not = ["b2b"] }\n'
        'country = ["DE", 5]\n'
        "total_spent = { min = true }\n"
        'birthday = { max = "1990-13-01" }\n'
        'vip = { any = "gold" }\n'
        'city = { all = ["Berlin"] }\n'
        "consent_email = { exists = 1 }\n"
        "segment = []\n"
        'email = ""\n'
    )
    assert problems(workspace, text) == [
        "c.toml:6: trigger.where.amount.mni: unknown operator "
        "(did you mean 'min'? one of min, max, not, any, all, exists)",
        "c.toml:8: audience.order_cuont: unknown field (did you mean 'order_count'?)",
        "c.toml:9: audience.tags.min: min needs a number, date, time or text field; "
        "this field is a list",
        'c.toml:10: audience.country: item 2: expected text, like "DE", not 5',
        "c.toml:11: audience.total_spent.min: expected a number, like 100, not true",
        "c.toml:12: audience.birthday.max: '1990-13-01' is not a date (expected YYYY-MM-DD)",
        'c.toml:13: audience.vip.any: any takes a list, like any = ["a", "b"]',
        "c.toml:14: audience.city.all: all needs a list field such as tags",
        "c.toml:15: audience.consent_email.exists: exists is true or false, not 1",
        "c.toml:16: audience.segment: an empty list matches nothing",
        "c.toml:17: audience.email: an empty text never matches; use exists = false "
        "for a missing value",
    ]


def test_one_broken_file_never_hides_another(workspace: Workspace) -> None:
    workspace.write("templates/t.j2", TEMPLATE)
    workspace.write("campaigns/a.toml", BASE + '[trigger]\ntype = "post_purchase"\ndealy = "1d"\n')
    workspace.write("campaigns/b.toml", 'channel = "email"\nprovider = \n')
    workspace.write("campaigns/c.toml", BASE + '[trigger]\ntype = "post_purchase"\n')
    workspace.write("campaigns/d.toml", BASE.replace("outbox", "nope") + "[trigger]\ntyp = 1\n")
    loaded = load_campaigns(load_config(workspace.config))
    assert [c.id for c in loaded.campaigns] == ["c"]
    folder = str(workspace.root / "campaigns")
    assert [e.replace(folder + "/", "") for e in loaded.errors] == [
        "a.toml:6: trigger.dealy: unknown key (did you mean 'delay'?)",
        "b.toml:2: TOML syntax: Invalid value",
        "d.toml:2: provider: no [providers.nope] in the config (configured: outbox)",
        "d.toml:4: trigger.type: required key is missing "
        "(one of: event, post_purchase, inactivity, anniversary, milestone, followup)",
    ]


def test_disabled_campaigns_load_too(workspace: Workspace) -> None:
    assert problems(workspace, BASE + 'enabled = false\n[trigger]\ntype = "post_purchase"\n') == []
    loaded = load_campaigns(load_config(workspace.config))
    assert [c.id for c in loaded.campaigns] == ["c"]
    assert loaded.enabled == []


def test_load_campaign_names_the_problem(workspace: Workspace) -> None:
    problems(workspace, BASE + '[trigger]\ntype = "post_purchase"\n', name="thank-you")
    config = load_config(workspace.config)
    with pytest.raises(
        CampaignError, match=r"no campaign 'thank-yuo' \(did you mean 'thank-you'\?\)"
    ):
        load_campaign(config, "thank-yuo")
    workspace.write("campaigns/thank-you.toml", BASE + "[trigger]\n")
    with pytest.raises(CampaignError, match=r"thank-you.toml:4: trigger.type: required key"):
        load_campaign(config, "thank-you")


def test_shipped_examples_are_valid(workspace: Workspace) -> None:
    import shutil
    from pathlib import Path

    skeleton = Path(__file__).resolve().parent.parent / "src" / "regard" / "skeleton"
    shutil.rmtree(workspace.root / "campaigns")
    shutil.rmtree(workspace.root / "templates")
    shutil.copytree(skeleton / "campaigns", workspace.root / "campaigns")
    shutil.copytree(skeleton / "templates", workspace.root / "templates")
    loaded = load_campaigns(load_config(workspace.config))
    assert loaded.errors == []
    assert sorted(c.id for c in loaded.campaigns) == [
        "anniversary-card", "birthday", "nps-apology", "referral-thanks",
        "thank-you", "thank-you-card", "vip-card", "win-back", "win-back-card",
    ]  # fmt: skip


def test_the_repository_examples_are_the_skeleton() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for folder in ("campaigns", "templates"):
        assert (root / folder).is_symlink()
        assert (root / folder).resolve() == (
            root / "src" / "regard" / "skeleton" / folder
        ).resolve()
