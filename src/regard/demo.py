"""``regard demo``: a whole shop's half-year of campaigns, on this machine, in seconds.

It creates a workspace like ``regard init`` (config, example campaigns and templates, the
file provider), generates a shop of German and English customers with
:mod:`regard.synthetic`, imports it, and then runs a real tick twice a day for the last six
months with :func:`regard.runner.run_once` — the same call ``regard run`` makes — so every
message lands in ``outbox/messages.jsonl``.

The generated customers' history is fixed in advance, so on its own it could not answer
a message. To give the report an effect to find, a customer who gets a message with a goal
places an extra order within two weeks with probability :data:`RESPONSE_RATE` (the planted
effect). Held-out customers get no message and so no such order: the uplift the report
shows is this planted effect, recovered by the same statistics a real shop gets.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from regard.campaigns.loader import load_campaigns
from regard.config import Config
from regard.errors import InputError
from regard.providers.file import outbox_path
from regard.render import address_line
from regard.render.isolation import own_templates
from regard.report import ReportDocument, build_report
from regard.runner import run_once
from regard.store import Store, open_store
from regard.store.importer import import_contacts, import_events
from regard.synthetic import generate
from regard.times import Instant, iso, to_epoch
from regard.workspace import create_workspace, load_config, make_folder

DEFAULT_DIR = Path("regard-demo")
MARKER = ".regard-demo"  # written into a demo workspace: only such a folder is ever replaced
CUSTOMERS = 2000
DAYS = 182
HISTORY_YEARS = 3
SEED = 2026
RESPONSE_RATE = 0.12  # the planted effect: an extra order after a message, within 14 days
# Twice a day, local time of the shop: windows are in each contact's own time zone, and
# 10:00 and 21:00 in Berlin fall inside a 9-to-6 window from London to Los Angeles.
TICK_HOURS = (10, 21)
UMLAUTS = frozenset("äöüÄÖÜß")

Progress = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo did, for the terminal and for ``--json``."""

    folder: Path
    config_path: Path
    outbox: Path
    start: datetime
    end: datetime
    ticks: int
    customers: int
    events: int
    responses: int
    report: ReportDocument
    locale: str = "en"
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "config": str(self.config_path),
            "outbox": str(self.outbox),
            "from": iso(self.start),
            "to": iso(self.end),
            "ticks": self.ticks,
            "customers": self.customers,
            "events": self.events,
            "planted_responses": self.responses,
            "response_rate": RESPONSE_RATE,
            "messages": self.messages,
            "samples": self.samples,
            "report": self.report,
            "seconds": round(self.seconds, 2),
        }


def prepare_folder(folder: Path, *, fresh: bool) -> None:
    """An empty folder for the demo. A previous demo there is replaced only with ``fresh``;
    any other non-empty folder is refused, never touched."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder; pass another DIR")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise InputError(
                f"{folder}: folder is not empty and holds no regard demo; pass another DIR"
            )
        if not fresh:
            raise InputError(
                f"{folder}: a demo is already there (its report: `regard --config "
                f"{folder / 'regard.toml'} report`); run `regard demo --fresh` to start over"
            )
        shutil.rmtree(folder)
    make_folder(folder)


def run_demo(
    folder: Path = DEFAULT_DIR,
    *,
    customers: int = CUSTOMERS,
    days: int = DAYS,
    today: date | None = None,
    fresh: bool = False,
    progress: Progress | None = None,
) -> DemoResult:
    """Create the demo workspace in ``folder`` and run ``days`` days of ticks up to ``today``."""
    say = progress or (lambda _: None)
    started = time.monotonic()
    prepare_folder(folder, fresh=fresh)
    create_workspace(folder)
    (folder / MARKER).write_text("created by `regard demo`\n", encoding="utf-8")
    config = load_config(folder / "regard.toml")
    end_day = today or datetime.now(UTC).date()
    shop = generate(
        SEED,
        customers,
        start=end_day.replace(year=end_day.year - HISTORY_YEARS),
        end=end_day,
    )
    say(f"generating {customers} customers with {HISTORY_YEARS} years of orders")
    contacts_csv, events_csv = shop.write_csv(folder / "data")
    store = open_store(config.store_target)
    try:
        imported = import_contacts(store, config, contacts_csv)
        events = import_events(store, config, events_csv)
        campaigns = load_campaigns(config).campaigns
        goals = {c.id: c.goal for c in campaigns if c.goal is not None}
        first_day = end_day - timedelta(days=days)
        say(f"running {days} days of ticks from {first_day} to {end_day - timedelta(days=1)}")
        responses, ticks = 0, 0
        for n in range(days):
            for at in _tick_times(config, first_day + timedelta(days=n)):
                with own_templates():  # the skeleton's, just written: no worker process
                    run_once(store, config, to_epoch(at))
                responses += _plant_responses(store, config, folder, at, goals)
                ticks += 1
            if n % 30 == 29:
                say(f"  … {at.date()}")
        first = _tick_times(config, first_day)[0]
        report = build_report(store, config, campaigns, since=first, until=at)
        result = DemoResult(
            folder=folder,
            config_path=folder / "regard.toml",
            outbox=_outbox_path(config),
            start=first,
            end=at,
            ticks=ticks,
            customers=imported.rows,
            events=events.rows + responses,
            responses=responses,
            report=report,
            locale=config.locale,
        )
        result.messages = _messages_per_campaign(store, to_epoch(first))
        result.samples = pick_samples(store, result.outbox)
    finally:
        store.close()
    result.seconds = time.monotonic() - started
    return result


def _tick_times(config: Config, day: date) -> list[datetime]:
    return [
        datetime(day.year, day.month, day.day, hour, tzinfo=config.tz).astimezone(UTC)
        for hour in TICK_HOURS
    ]


def _outbox_path(config: Config) -> Path:
    """The outbox of the demo's first file provider (the skeleton config has one)."""
    table = next(t for t in config.providers.values() if t.type == "file")
    return outbox_path(config, table)


def _plant_responses(
    store: Store, config: Config, folder: Path, at: datetime, goals: dict[str, Any]
) -> int:
    """After a tick: some customers who just got a message with a goal answer with an order."""
    if not goals:
        return 0
    orders = []
    for row in store.reports.sent_at(to_epoch(at), goals):
        goal = goals[row["campaign"]]
        rng = random.Random(row["id"])
        if goal.event != "order" or rng.random() >= RESPONSE_RATE:
            continue
        within = min(timedelta(days=14), goal.within - timedelta(hours=1))
        when = at + timedelta(seconds=rng.randint(3600, int(within.total_seconds())))
        orders.append(
            {
                "id": f"demo-{row['id']}",
                "contact_id": row["contact_id"],
                "type": "order",
                "occurred_at": iso(when),
                "amount": round(rng.uniform(19, 129), 2),
                "currency": config.currency,
                "properties": {"source": "demo response"},
            }
        )
    if not orders:
        return 0
    with tempfile.NamedTemporaryFile(
        "w", suffix=".jsonl", dir=folder, encoding="utf-8", delete=False
    ) as handle:
        handle.write("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in orders))
    try:
        import_events(store, config, handle.name)
    finally:
        Path(handle.name).unlink()
    return len(orders)


def _messages_per_campaign(store: Store, since: Instant) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in store.reports.decided_since(since):
        entry = out.setdefault(row["campaign"], {"channel": row["channel"], "total": 0})
        entry[row["state"]] = row["deliveries"]
        entry["total"] += row["deliveries"]
    return out


def pick_samples(store: Store, outbox: Path, count: int = 3) -> list[dict[str, Any]]:
    """Three messages as customers got them, each of another campaign: a German e-mail
    with umlauts first, then an English message, then a card where there is one."""
    if not outbox.is_file():
        return []
    records = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
    locales = store.contacts.locales()
    chosen: list[dict[str, Any]] = []

    def take(test: Callable[[dict[str, Any]], bool]) -> bool:
        if len(chosen) >= count:
            return False
        used = {r["campaign"] for r in chosen}
        for record in records:
            if record not in chosen and record["campaign"] not in used and test(record):
                chosen.append(record)
                return True
        return False

    def german(record: dict[str, Any]) -> bool:
        return _is_german(locales, record) and bool(UMLAUTS & set(_body(record)))

    take(lambda r: german(r) and r["channel"] == "email") or take(german)
    take(lambda r: not _is_german(locales, r))
    take(lambda r: r["channel"] == "card")
    while take(lambda r: True):
        pass
    return [{**r, "locale": locales.get(r["contact_id"])} for r in chosen[:count]]


def _is_german(locales: dict[str, str | None], record: dict[str, Any]) -> bool:
    return (locales.get(record["contact_id"]) or "").startswith("de")


def _body(record: dict[str, Any]) -> str:
    return " ".join(str(record.get(k) or "") for k in ("subject", "text"))


def format_message(record: dict[str, Any]) -> list[str]:
    """One delivery record as its reader sees it."""
    to = record.get("to")
    if isinstance(to, dict):
        to = address_line(to)
    head = f"{record['channel']} to {to} ({record['campaign']}, contact {record['contact_id']})"
    lines = [head, "-" * min(len(head), 78)]
    if record.get("subject"):
        lines.append(f"Subject: {record['subject']}")
        lines.append("")
    lines += str(record.get("text") or "").strip().splitlines()
    return lines
