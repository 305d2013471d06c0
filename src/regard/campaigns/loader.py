"""Reading the campaigns folder: every ``<id>.toml`` into a :class:`Campaign`, or precise errors.

One broken file never hides another's problems: :func:`load_campaigns` returns the valid
campaigns together with every problem of every file as ``FILE:LINE: key.path: reason``.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from regard.campaigns.journeys import parent_of
from regard.campaigns.model import EXIT_TRIGGERS, Campaign
from regard.campaigns.templates import template_files, template_names
from regard.channels import CHANNELS
from regard.errors import CampaignError, ProviderError
from regard.grammar import (
    CONTACT_KINDS,
    EVENT_KINDS,
    Kind,
    contact_kind,
    event_kind,
    validate_filter,
)
from regard.providers import adapter_class
from regard.triggers import trigger_class
from regard.validation import describe, nearest_line, read_toml

if TYPE_CHECKING:
    from regard.config import Config


@dataclass
class CampaignSet:
    """The valid campaigns (enabled and disabled alike, sorted by id) and every problem found."""

    campaigns: list[Campaign] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def get(self, campaign_id: str) -> Campaign | None:
        """The campaign with this id, if it loaded."""
        return next((c for c in self.campaigns if c.id == campaign_id), None)

    @property
    def enabled(self) -> list[Campaign]:
        return [c for c in self.campaigns if c.enabled]


def campaign_files(config: Config) -> list[Path]:
    """The campaign files of the config's campaigns folder, sorted by id."""
    folder = config.campaigns_dir
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.toml") if not p.name.startswith("."))


def load_campaigns(config: Config) -> CampaignSet:
    """Every campaign of the campaigns folder, and every problem of every file."""
    result = CampaignSet()
    folder = config.campaigns_dir
    if not folder.is_dir():
        result.errors.append(
            f"{folder}: no campaigns folder (set `campaigns` in {config.path or 'regard.toml'})"
        )
        return result
    files = campaign_files(config)
    for path in files:
        campaign, problems = read_campaign(config, path)
        result.errors.extend(problems)
        if campaign is not None:
            result.campaigns.append(campaign)
    broken = _chain_problems(result.campaigns, {p.stem for p in files}, folder)
    result.errors.extend(problem for _, problem in broken)
    result.campaigns = [c for c in result.campaigns if c.id not in {b for b, _ in broken}]
    return result


def _chain_problems(
    campaigns: Sequence[Campaign], files: set[str], folder: Path
) -> list[tuple[str, str]]:
    """(campaign id, problem) for every follow-up that follows a campaign with no file, or
    that is part of a cycle (A follows B follows A), at its ``trigger.campaign`` line."""
    parent = {c.id: p for c in campaigns if (p := parent_of(c)) is not None}
    problems: list[tuple[str, str]] = []
    for cid in sorted(parent):
        path = folder / f"{cid}.toml"
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        line = nearest_line(text, ("trigger", "campaign"))
        where = f"{path}:{line}" if line else str(path)
        target = parent[cid]
        if target not in files:
            guess = difflib.get_close_matches(target, sorted(files), n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            problems.append(
                (cid, f"{where}: trigger.campaign: no campaign {target!r} to follow{hint}")
            )
            continue
        seen, step = [cid], target
        while step in parent and step not in seen:
            seen.append(step)
            step = parent[step]
        if step == cid:
            loop = " follows ".join([*seen, cid])
            problems.append((cid, f"{where}: trigger.campaign: a cycle: {loop}"))
    return problems


def load_campaign(config: Config, campaign_id: str) -> Campaign:
    """The campaign ``campaign_id``; raises CampaignError naming every problem of its file."""
    path = config.campaigns_dir / f"{campaign_id}.toml"
    if not path.is_file():
        known = [p.stem for p in campaign_files(config)]
        guess = difflib.get_close_matches(campaign_id, known, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        raise CampaignError(f"{path}: no campaign {campaign_id!r}{hint}")
    campaign, problems = read_campaign(config, path)
    if campaign is None or problems:
        raise CampaignError("\n".join(problems))
    return campaign


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def read_campaign(config: Config, path: Path) -> tuple[Campaign | None, list[str]]:
    """One campaign file: the campaign (None if invalid) and its problems."""
    bad = _CONTROL.search(path.stem)
    if bad is not None:
        # its name is the campaign's id: in delivery ids, the store and every listing, where
        # a newline would start a forged line
        shown = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), path.name)
        return None, [
            f"{path.parent / shown}: the file name contains the control character "
            f"U+{ord(bad.group()):04X}; a campaign's id is its file name: rename the file"
        ]
    try:
        data, text = read_toml(path)
    except ValueError as exc:
        return None, [str(exc)]
    channel = data.get("channel")
    if "provider" not in data and isinstance(channel, str) and channel in config.channels:
        data = {**data, "provider": config.channels[channel]}  # the channel's default
    try:
        campaign: Campaign | None = Campaign.model_validate(data)
    except ValidationError as exc:
        campaign = None
        problems = describe(exc, Campaign, path, text)
    else:
        problems = []
    if "provider" not in data:
        line = nearest_line(text, ("channel",))
        where = f"{path}:{line}" if line else str(path)
        problems = [p for p in problems if ": provider: " not in p] + [
            f"{where}: provider: required key is missing: name a [providers.NAME] here, "
            f"or a default for channel {channel!r} in [channels] of the config"
        ]
    problems += _raw_problems(config, data, path, text)
    problems.sort(key=_line_number)
    if campaign is None or problems:
        return None, problems
    campaign._id = path.stem
    return campaign, []


def _line_number(problem: str) -> int:
    m = re.match(r"[^:]*:(\d+): ", problem)
    return int(m.group(1)) if m else 0


def _raw_problems(config: Config, data: dict[str, Any], path: Path, text: str) -> list[str]:
    """What the model cannot know (providers, templates, filter grammar, date fields),
    checked on the file's data so that they are listed even when the model fails too."""

    def at(loc: Sequence[str], reason: str) -> str:
        line = nearest_line(text, loc)
        return f"{path}:{line}: {'.'.join(loc)}: {reason}" if line else f"{path}: {reason}"

    problems: list[str] = []
    provider, channel, template = data.get("provider"), data.get("channel"), data.get("template")
    table = config.providers.get(provider) if isinstance(provider, str) else None
    if isinstance(provider, str) and table is None:
        known = sorted(config.providers)
        guess = difflib.get_close_matches(provider, known, n=1)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        listing = ", ".join(known) or "none"
        problems.append(
            at(
                ("provider",),
                f"no [providers.{provider}] in the config ({hint}configured: {listing})",
            )
        )
    if table is not None and channel in CHANNELS:
        try:
            channels = adapter_class(table.type).channels
        except ProviderError as exc:
            channels = frozenset()
            problems.append(at(("provider",), str(exc)))
        if channels and channel not in channels:
            problems.append(
                at(
                    ("channel",),
                    f"provider {provider!r} (type {table.type!r}) cannot deliver "
                    f"{channel}; it serves {', '.join(sorted(channels))}",
                )
            )
    if isinstance(template, str) and template.startswith("_"):
        problems.append(
            at(("template",), f"{template} is a layout or partial (its name starts with _), "
               "not a message: name the message template that extends it")
        )  # fmt: skip
    elif isinstance(template, str) and not template_files(config.templates_dir, template):
        known = sorted({name.split(".")[0] for name in template_names(config.templates_dir)})
        guess = difflib.get_close_matches(template, known, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        problems.append(
            at(
                ("template",),
                f"no template {template}.j2 (or {template}.<locale>.j2) in "
                f"{config.templates_dir}{hint}",
            )
        )
    audience = data.get("audience")
    if isinstance(audience, dict):
        problems += _filter_problems(audience, ("audience",), CONTACTS, path, text)
    trigger = data.get("trigger")
    trigger = trigger if isinstance(trigger, dict) else {}
    if isinstance(trigger.get("where"), dict):
        problems += _filter_problems(trigger["where"], ("trigger", "where"), EVENTS, path, text)
    kind = trigger.get("type")
    with contextlib.suppress(KeyError):  # an unknown type is the model's to report
        for loc, reason in trigger_class(str(kind)).problems(trigger):
            problems.append(at(("trigger", *loc), reason))
    if "exit" in data:
        exit_ = data["exit"]
        if isinstance(kind, str) and kind not in EXIT_TRIGGERS:
            problems.append(
                at(
                    ("exit",),
                    f"[exit] is only for {', '.join(EXIT_TRIGGERS)} triggers, not {kind} "
                    "(its occasion has no start an exit could count from)",
                )
            )
        if isinstance(exit_, dict) and isinstance(exit_.get("where"), dict):
            problems += _filter_problems(exit_["where"], ("exit", "where"), EVENTS, path, text)
    if channel in CHANNELS and channel != "card" and "card" in data:
        problems.append(at(("card",), f"[card] is only for channel card, not {channel}"))
    return problems


Fields = tuple[Callable[[str], Kind], list[str]]
CONTACTS: Fields = (contact_kind, list(CONTACT_KINDS))
EVENTS: Fields = (event_kind, list(EVENT_KINDS))


def _filter_problems(
    filter: Any, prefix: tuple[str, ...], fields: Fields, path: Path, text: str
) -> list[str]:
    kind_of, known = fields
    out = []
    for loc, reason in validate_filter(filter, kind_of, known=known):
        full = (*prefix, *loc)
        line = nearest_line(text, full)
        where = f"{path}:{line}" if line else str(path)
        out.append(f"{where}: {'.'.join(full)}: {reason}")
    return out
