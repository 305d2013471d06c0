"""A reference implementation of the contract's campaign semantics: deliberately simple,
slow and obviously correct.

It reads the store with ``SELECT *`` only, loops over every contact and every event in
Python, finds local times by stepping through the clock in quarter hours, and keeps its own
ledger of decisions. The property tests require the engine to agree with it on every
decision, every ``not_before`` and every state.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from regard.campaigns.audience import event_kind, matches
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.store.contacts import contact_from_row

QUARTER = 900
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class Entry:
    """One recorded decision in the oracle's ledger."""

    campaign: str
    contact_id: str
    occasion: str
    due_at: int
    state: str
    reason: str | None
    created_at: int
    not_before: int | None
    sent_at: int | None = None
    exit_from: int | None = None  # the start the campaign's [exit] counts from
    event_id: str | None = None  # the triggering event (a follow-up: the earlier one's)
    expires_at: int | None = None  # too late after this: never paced (dispatch cancels it)

    def key(self) -> tuple[str, str, str]:
        return (self.campaign, self.contact_id, self.occasion)


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local(t: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t, UTC).astimezone(tz)


def epoch(value: datetime) -> int:
    return int(value.timestamp())


class Oracle:
    def __init__(self, config: Config, campaigns: list[Campaign]) -> None:
        self.config = config
        self.campaigns = campaigns
        self.ledger: dict[tuple[str, str, str], Entry] = {}

    # -- reading the store ------------------------------------------------------------
    def read(self, conn: sqlite3.Connection) -> None:
        self.contacts = [dict(r) for r in conn.execute("SELECT * FROM contacts")]
        self.events = [dict(r) for r in conn.execute("SELECT * FROM events")]
        self.suppressions = [dict(r) for r in conn.execute("SELECT * FROM suppressions")]

    def zone_of(self, contact: dict[str, Any]) -> ZoneInfo:
        try:
            return (
                ZoneInfo(contact["timezone"])
                if contact["timezone"]
                else ZoneInfo(self.config.timezone)
            )
        except Exception:
            return ZoneInfo(self.config.timezone)

    def events_of(self, contact_id: str, at: int) -> list[dict[str, Any]]:
        mine = [
            e
            for e in self.events
            if e["contact_id"] == contact_id
            and e["occurred_at"] <= at
            and (e.get("voided_at") is None or e["voided_at"] > at)
        ]
        return sorted(mine, key=lambda e: (e["occurred_at"], e["id"]))

    def contact_as_of(self, contact: dict[str, Any], at: int) -> dict[str, Any]:
        events = self.events_of(contact["id"], at)
        orders = [e for e in events if e["type"] == "order"]
        row = dict(contact)
        row["order_count"] = len(orders)
        row["total_spent"] = round(sum(e["amount"] or 0 for e in orders), 2)
        row["first_order_at"] = orders[0]["occurred_at"] if orders else None
        row["last_order_at"] = max(e["occurred_at"] for e in orders) if orders else None
        row["last_event_at"] = max(e["occurred_at"] for e in events) if events else None
        return contact_from_row(row)

    # -- what is due ------------------------------------------------------------------
    def occasions(
        self, campaign: Campaign, contact: dict[str, Any], at: int
    ) -> list[tuple[int, str, str | None, int | None]]:
        """Every occasion of the contact as of ``at``: (due, key, event id, the start an
        exit counts from), any due time."""
        found = [
            (due, key, event_id, self.start_of(campaign, event_id))
            for due, key, event_id in self.occasions_of(campaign, contact, at)
        ]
        if campaign.trigger.type == "followup":
            found = self.followups(campaign, contact, at)
        return found

    def start_of(self, campaign: Campaign, event_id: str | None) -> int | None:
        """Event, post_purchase and milestone occasions start at their event's occurred_at."""
        if campaign.trigger.type not in ("event", "post_purchase", "milestone"):
            return None
        return next(e["occurred_at"] for e in self.events if e["id"] == event_id)

    def followups(
        self, campaign: Campaign, contact: dict[str, Any], at: int
    ) -> list[tuple[int, str, str | None, int | None]]:
        """One occasion per sent delivery of the followed campaign to the contact."""
        trigger = campaign.trigger
        return [
            (e.sent_at + secs(trigger.delay), f"after:{self.delivery_id(e)}", e.event_id,
             e.sent_at)
            for e in self.ledger.values()
            if e.campaign == trigger.campaign and e.contact_id == contact["id"]
            and e.state == "sent" and e.sent_at is not None and e.sent_at <= at
        ]  # fmt: skip

    def exited(self, campaign: Campaign, contact_id: str, start: int | None, at: int) -> bool:
        """The contact had the campaign's exit event after ``start`` and by ``at``."""
        if campaign.exit is None or start is None:
            return False
        for e in self.events_of(contact_id, at):  # voided ones do not exist
            if e["type"] != campaign.exit.event:
                continue
            if not start < e["occurred_at"] <= at:
                continue
            if campaign.exit.where and not self.event_matches(campaign.exit.where, e):
                continue
            return True
        return False

    def event_matches(self, where: dict[str, Any], e: dict[str, Any]) -> bool:
        view = dict(json.loads(e["properties"]))
        view.update({k: v for k, v in e.items() if k != "properties"})
        return matches(where, view, kind_of=event_kind, tz=self.config.timezone)

    def occasions_of(
        self, campaign: Campaign, contact: dict[str, Any], at: int
    ) -> list[tuple[int, str, str | None]]:
        """The occasions of the triggers that read events: (due, key, event id)."""
        trigger = campaign.trigger
        events = self.events_of(contact["id"], at)
        found: list[tuple[int, str, str | None]] = []
        if trigger.type in ("event", "post_purchase"):
            kind = trigger.event
            same = [e for e in events if e["type"] == kind]
            for n, e in enumerate(same, start=1):
                if trigger.nth is not None and n != trigger.nth:
                    continue
                if trigger.where and not self.event_matches(trigger.where, e):
                    continue
                found.append((e["occurred_at"] + secs(trigger.delay), e["id"], e["id"]))
        elif trigger.type == "inactivity":
            acts = [e for e in events if e["type"] in trigger.events]
            after = secs(trigger.after)
            if acts and len(acts) >= trigger.min_events:
                last = max(e["occurred_at"] for e in acts)
                event_id = max(e["id"] for e in acts if e["occurred_at"] == last)
                found.append((last + after, f"since:{iso(last)}", event_id))
            elif not acts and trigger.min_events == 0 and contact["signup_at"] is not None:
                signup = contact["signup_at"]
                if signup <= at:
                    found.append((signup + after, f"since:{iso(signup)}", None))
        elif trigger.type == "anniversary":
            tz = self.zone_of(contact)
            d = self.anniversary_date(trigger.field, contact, events, tz, at)
            if d is not None:
                for year in range(d.year + 1, local(at, tz).year + 3):
                    n = year - d.year
                    if trigger.years is not None and n not in trigger.years:
                        continue
                    try:
                        day = d.replace(year=year)
                    except ValueError:
                        day = date(year, 2, 28)
                    wall = datetime(year, day.month, day.day, trigger.at.hour, trigger.at.minute)
                    due = self.wall_to_epoch(wall, tz) + secs(trigger.offset)
                    found.append((due, f"{trigger.field}:{year}", None))
        elif trigger.type == "milestone":
            orders = [e for e in events if e["type"] == "order"]
            running = Decimal(0)
            for n, e in enumerate(orders, start=1):
                running += Decimal(repr(e["amount"] or 0.0))
                metric = Decimal(n) if trigger.metric == "order_count" else running
                if metric >= trigger.threshold:
                    key = f"{trigger.metric}:{format(trigger.threshold.normalize(), 'f')}"
                    found.append((e["occurred_at"] + secs(trigger.delay), key, e["id"]))
                    break
        return found

    def anniversary_date(
        self, field: str, contact: dict[str, Any], events: list[dict[str, Any]], tz: ZoneInfo,
        at: int,
    ) -> date | None:  # fmt: skip
        if field == "birthday":
            return date.fromisoformat(contact["birthday"]) if contact["birthday"] else None
        if field == "signup_at":
            s = contact["signup_at"]
            return local(s, tz).date() if s is not None and s <= at else None
        if field == "first_order_at":
            orders = [e for e in events if e["type"] == "order"]
            return local(orders[0]["occurred_at"], tz).date() if orders else None
        value = json.loads(contact["attributes"]).get(field)
        try:
            return date.fromisoformat(value[:10]) if isinstance(value, str) else None
        except ValueError:
            return None

    @staticmethod
    def wall_to_epoch(wall: datetime, tz: ZoneInfo) -> int:
        """The instant a wall-clock time is read as: the first instant whose local time is
        that wall time; in a gap, the wall time read with the offset before the gap."""
        probe = epoch(wall.replace(tzinfo=UTC)) - 15 * 3600
        for _ in range(30 * 4 * 2):
            if local(probe, tz).replace(tzinfo=None) == wall:
                return probe
            probe += QUARTER
        before = local(epoch(wall.replace(tzinfo=UTC)) - 2 * 86400, tz).utcoffset()
        assert before is not None
        return epoch(wall.replace(tzinfo=UTC)) - int(before.total_seconds())

    # -- a tick ---------------------------------------------------------------------
    def tick(self, at: int) -> list[Entry]:
        made: list[Entry] = []
        order = sorted((c for c in self.campaigns if c.enabled), key=lambda c: (-c.priority, c.id))
        for campaign in order:
            lo, hi = at - secs(campaign.max_lateness), at
            tz = ZoneInfo(self.config.timezone)
            if campaign.starts_at:
                lo = max(lo, epoch(datetime.combine(campaign.starts_at, datetime.min.time(), tz)))
            if campaign.ends_at:
                end = campaign.ends_at + timedelta(days=1)
                hi = min(hi, epoch(datetime.combine(end, datetime.min.time(), tz)) - 1)
            due: list[tuple[int, str, str, dict[str, Any], int | None]] = []
            for contact in self.contacts:
                for when, key, event_id, start in self.occasions(campaign, contact, at):
                    if lo <= when <= hi and (campaign.id, contact["id"], key) not in self.ledger:
                        view = self.contact_as_of(contact, at)
                        if matches(campaign.audience, view, tz=self.config.timezone):
                            due.append((when, contact["id"], key, view, start, event_id))
            for when, contact_id, key, view, start, event_id in sorted(due, key=lambda d: d[:3]):
                if self.exited(campaign, contact_id, start, at):
                    state, reason = "skipped", "exited"  # right after the audience
                else:
                    state, reason = self.decide(campaign, view, at)
                entry = Entry(campaign.id, contact_id, key, when, state, reason, at, None)
                entry.event_id = event_id
                if campaign.exit is not None:
                    entry.exit_from = start
                if state == "pending":
                    entry.not_before = self.next_opening(campaign, at, self.zone_of(view))
                    # max_lateness after it was due, not counting the wait for the window
                    entry.expires_at = when + secs(campaign.max_lateness) + entry.not_before - at
                self.ledger[entry.key()] = entry
                made.append(entry)
        self.release(at)
        return made

    def decide(
        self, campaign: Campaign, contact: dict[str, Any], at: int
    ) -> tuple[str, str | None]:
        channel = campaign.channel
        address = {"email": contact.get("email"), "sms": contact.get("phone")}.get(channel)
        if channel in ("email", "sms") and not address:
            return "skipped", "no_address"
        if channel == "card":
            name = (contact.get("first_name") or "") + (contact.get("last_name") or "")
            if not (name.strip() or (contact.get("company") or "").strip()):
                return "skipped", "no_address"
            for part in ("street", "postal_code", "city", "country"):
                if not (contact.get(part) or "").strip():
                    return "skipped", "no_address"
        for s in self.suppressions:
            bounced = s.get("kind") == "bounced" and s["channel"] == channel
            if bounced and address and s["address"] == address:
                return "skipped", "bounced"
        if campaign.purpose == "marketing":
            flag = contact.get(f"consent_{channel}")
            if isinstance(flag, str):
                flag = {"true": True, "1": True, "yes": True, "false": False, "0": False,
                        "no": False}.get(flag.lower())  # fmt: skip
            rule = getattr(self.config.consent, channel)
            if rule == "existing-customer":
                orders = int(contact.get("order_count") or 0)
                if not (flag is True or (flag is not False and orders >= 1)):
                    return "skipped", "no_consent"
            elif (rule == "opt-in" and flag is not True) or (rule == "opt-out" and flag is False):
                return "skipped", "no_consent"
            for s in self.suppressions:
                if s.get("kind", "unsubscribed") != "unsubscribed":
                    continue
                if s["channel"] not in (channel, "*"):
                    continue
                if s["contact_id"] == contact["id"] or (address and s["address"] == address):
                    return "skipped", "unsubscribed"
        if self.capped(campaign, contact["id"], at):
            return "skipped", "capped"
        digest = hashlib.sha256(f"{campaign.id}:{contact['id']}".encode()).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 < campaign.holdout:
            return "held_out", None
        return "pending", None

    @staticmethod
    def counted_at(e: Entry) -> int:
        if e.state == "sent":
            return e.sent_at if e.sent_at is not None else e.created_at
        return e.not_before if e.not_before is not None else e.created_at

    def capped(self, campaign: Campaign, contact_id: str, at: int) -> bool:
        mine = [
            e
            for e in self.ledger.values()
            if e.contact_id == contact_id
            and e.campaign == campaign.id
            and e.state in ("sent", "sending", "pending")
        ]
        if campaign.once_per_contact and mine:
            return True
        cooldown = secs(campaign.cooldown)
        if cooldown and any(self.counted_at(e) > at - cooldown for e in mine):
            return True
        limit = self.config.limits.contact_max
        if limit:
            window = secs(self.config.limits.contact_window)
            recent = [
                e
                for e in self.ledger.values()
                if e.contact_id == contact_id
                and e.state in ("sent", "sending", "pending")
                and self.counted_at(e) > at - window
            ]
            if len(recent) >= limit:
                return True
        return False

    # -- windows and daily limits -----------------------------------------------------
    @staticmethod
    def in_window(campaign: Campaign, t: int, tz: ZoneInfo) -> bool:
        if campaign.window is None:
            return True
        wall = local(t, tz)
        start, end = campaign.window.hours
        return WEEKDAYS[wall.weekday()] in campaign.window.days and start <= wall.hour < end

    def next_opening(self, campaign: Campaign, t: int, tz: ZoneInfo) -> int:
        if self.in_window(campaign, t, tz):
            return t
        probe = t - t % QUARTER + QUARTER
        while not self.in_window(campaign, probe, tz):
            probe += QUARTER
        return probe

    def release(self, at: int) -> None:
        by_id = {c.id: c for c in self.campaigns}
        contacts = {c["id"]: c for c in self.contacts}
        ready = [
            e
            for e in self.ledger.values()
            if e.state == "pending"
            and (e.not_before if e.not_before is not None else e.due_at) <= at
            and self.stopped_by(e, at) is None  # dispatch cancels it: it takes no room
        ]
        groups: dict[tuple[str, str], list[Entry]] = {}
        for e in ready:
            campaign = by_id.get(e.campaign)
            if campaign is None:
                continue
            tz = self.zone_of(contacts[e.contact_id])
            if not self.in_window(campaign, at, tz):
                e.not_before = self.next_opening(campaign, at, tz)
            elif campaign.daily_limit:
                groups.setdefault((campaign.id, tz.key), []).append(e)
        for (campaign_id, tz_name), group in groups.items():
            campaign, tz = by_id[campaign_id], ZoneInfo(tz_name)
            today = local(at, tz).date()
            used = sum(
                1
                for e in self.ledger.values()
                if e.campaign == campaign_id
                and (
                    e.state == "sending"
                    or (
                        e.state == "sent"
                        and e.sent_at is not None
                        and local(e.sent_at, tz).date() == today
                    )
                )
            )
            group.sort(
                key=lambda e: (
                    -(contacts[e.contact_id]["total_spent"] or 0),
                    e.due_at,
                    e.contact_id,
                    self.delivery_id(e),
                )
            )
            midnight = self.wall_to_epoch(
                datetime.combine(today + timedelta(days=1), datetime.min.time()), tz
            )
            for e in group[max(0, campaign.daily_limit - used) :]:
                e.not_before = self.next_opening(campaign, midnight, tz)

    @staticmethod
    def delivery_id(e: Entry) -> str:
        parts = (e.campaign, e.contact_id, e.occasion)
        key = "".join(f"{len(p.encode())}:{p}," for p in parts).encode()
        return f"d_{e.due_at:010x}" + hashlib.sha256(key).hexdigest()[:22]

    # -- what the harness does between ticks ------------------------------------------
    def stop(self, at: int) -> list[Entry]:
        """Dispatch's send-time rules on due pending deliveries, in their order: its event
        voided → cancelled ``event_voided``; its exit come → cancelled ``exited`` (returned);
        past its lateness → cancelled ``too_late``."""
        by_id = {c.id: c for c in self.campaigns}
        stopped = []
        for e in self.ledger.values():
            due = e.not_before if e.not_before is not None else e.due_at
            campaign = by_id.get(e.campaign)
            if e.state != "pending" or due > at or campaign is None:
                continue
            reason = self.stopped_by(e, at)
            if reason is not None:
                e.state, e.reason = "cancelled", reason
                if reason == "exited":
                    stopped.append(e)
        return stopped

    def stopped_by(self, e: Entry, at: int) -> str | None:
        """The send-time rule that cancels the pending ``e`` at ``at``, in the rules' order:
        its event voided, its journey's exit come, past its lateness; None if none."""
        voided = next((v["voided_at"] for v in self.events if v["id"] == e.event_id), None)
        if voided is not None and voided <= at:
            return "event_voided"
        campaign = next((c for c in self.campaigns if c.id == e.campaign), None)
        if campaign is not None and self.exited(campaign, e.contact_id, e.exit_from, at):
            return "exited"
        if e.expires_at is not None and e.expires_at < at:
            return "too_late"
        return None

    def send(self, key: tuple[str, str, str], at: int) -> None:
        entry = self.ledger[key]
        entry.state, entry.sent_at = "sent", at


def secs(delta: timedelta) -> int:
    return int(delta.total_seconds())
