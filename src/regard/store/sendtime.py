"""What dispatch re-checks before it sends: the send-time rules.

A tick decides a delivery once; it may wait for days (a window, a daily limit, a retry)
before it is sent, and the world changes meanwhile: the contact unsubscribes, the order is
voided, the customer comes back. Each :class:`SendRule` is one such change, written as a
SQL predicate over the delivery row ``d``; a pending delivery it matches is moved to the
rule's final state, with its reason, and never sent.

The rules run in the same write transaction as the claim that would otherwise take the
delivery (:meth:`regard.store.deliveries.Deliveries.claim`), so nothing that was stopped
before a claim's transaction began is sent, and once at the start of a dispatch over
everything due (so the counts are reported). Adding a rule is adding one entry to
:data:`RULES`; the first rule that matches a delivery decides.

Some rules need to know what only the run knows: the config's consent rules, which
campaigns are enabled, disabled, or have a file that does not load. The run passes that
as a :class:`SendContext`, bound as named parameters every rule may use (``:consent``,
``:campaigns_known``, ``:enabled``, ``:disabled``, ``:broken``, and ``:at``). A rule whose
``target`` is None holds a delivery instead of stopping it: it stays pending, unclaimed,
for as long as the rule matches (a campaign file being edited must not cancel its
deliveries for good).

A rule whose SQL depends on what the pending deliveries carry gives ``build`` instead of
a fixed ``where``: called with the connection at the moment the rules run, it returns
the predicate and its named parameters. The ``[exit]`` of a journey is such a rule: each
delivery carries its campaign's exit (event type, start, ``where`` as JSON, written at
creation), and the distinct ``where`` filters among the pending deliveries are compiled
into the predicate (:func:`_exit_rule`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from regard.store.backends import Dialect, dialect_of
from regard.store.filters import event_condition
from regard.store.lifecycle import DeliveryState, move
from regard.store.suppressions import bounced_sql, unsubscribed_sql
from regard.times import Instant

# SQL and named parameters
Predicate = tuple[str, dict[str, object]]


@dataclass(frozen=True)
class SendRule:
    """Pending deliveries matching ``where`` (SQL over the row ``d``; it may use ``:at``,
    the dispatch's instant, and the parameters of :class:`SendContext`) go to ``target``
    with ``reason``; ``detail`` is their log line. ``target`` None: they are held (stay
    pending, never claimed) while ``where`` holds. ``build``, when given, makes the
    predicate from the store at the moment the rules run (``where`` is then only its
    description)."""

    reason: str
    target: DeliveryState | None
    detail: str
    where: str
    build: Callable[[sqlite3.Connection], Predicate] | None = None
    # the same predicate in PostgreSQL's native SQL (jsonb operators), where ``where``
    # reads JSON; the store's other statements reach PostgreSQL through its translation
    postgresql: str | None = None

    def predicate(self, conn: sqlite3.Connection) -> Predicate:
        """The rule's SQL over ``d`` and its named parameters, now, for the engine behind
        ``conn``."""
        if self.build is not None:
            return self.build(conn)
        if self.postgresql is not None and dialect_of(conn) == "postgresql":
            return self.postgresql, {}
        return self.where, {}


@dataclass(frozen=True)
class SendContext:
    """What the send-time rules know of the run beyond the store.

    ``consent``: the config's rule per channel (``opt-in``, ``opt-out``); a channel not
    named, or a rule the consent check here does not know, stops nothing. ``campaigns``:
    None when the run does not know its campaigns (no campaigns folder), then no campaign
    rule applies; else the campaign ids by what their file is now: ``enabled``,
    ``disabled``, or ``broken`` (a file that does not load). A delivery whose campaign is
    none of them had its file removed."""

    consent: Mapping[str, str] = field(default_factory=dict)
    campaigns: Mapping[str, str] | None = None

    def params(self) -> dict[str, object]:
        """The named parameters the rules' SQL may use (besides ``:at``)."""
        states = dict(self.campaigns or {})

        def having(state: str) -> str:
            return json.dumps(sorted(c for c, s in states.items() if s == state))

        return {
            "consent": json.dumps(dict(self.consent)),
            "campaigns_known": int(self.campaigns is not None),
            "enabled": having("enabled"),
            "disabled": having("disabled"),
            "broken": having("broken"),
        }


NO_CONTEXT = SendContext()


# The JSON the rules read, in each engine's own SQL: SQLite's JSON1 functions, and on
# PostgreSQL its native jsonb operators (the store's json_extract/json_type emulations
# there parse the document once per call and cannot be planned around; these are plain
# expressions). Each rule below is written once, over these fragments.
_JSON: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        # the message's ``to`` when it is a text (an address), else NULL
        "to": "(CASE WHEN json_type(d.message, '$.to') = 'text'"
        " THEN json_extract(d.message, '$.to') END)",
        # the contact's attribute consent_<channel>, as text
        "attribute": "CAST(json_extract(c.attributes, '$.consent_' || d.channel) AS TEXT)",
        # the config's consent rule for the delivery's channel
        "consent": "json_extract(:consent, '$.' || d.channel)",
    },
    "postgresql": {
        "to": "(CASE WHEN jsonb_typeof(CAST(d.message AS jsonb) -> 'to') = 'string'"
        " THEN CAST(d.message AS jsonb) ->> 'to' END)",
        # a JSON true reads 'true' here, 1 on SQLite: both are a yes below
        "attribute": "(CAST(c.attributes AS jsonb) ->> ('consent_' || d.channel))",
        "consent": "(CAST(:consent AS jsonb) ->> d.channel)",
    },
}


def _suppressed(frag: Mapping[str, str]) -> tuple[str, str]:
    """The bounced and unsubscribed rules over the message's ``to`` when it is an address;
    an unsubscribe stops marketing only (the purpose the delivery was made for)."""
    to = frag["to"]
    return bounced_sql("d.contact_id", "d.channel", to), (
        f"d.purpose = 'marketing' AND {unsubscribed_sql('d.contact_id', 'd.channel', to)}"
    )


def _no_consent(frag: Mapping[str, str]) -> str:
    """Marketing whose consent was withdrawn since the tick (an import set
    consent_<channel> false, or no longer true); service messages need none. The
    contact's flag for the delivery's channel is its column, or for a channel without one
    (webhook) an attribute consent_<channel>, read as import reads a boolean."""
    flag = f"""(CASE d.channel
    WHEN 'email' THEN c.consent_email WHEN 'sms' THEN c.consent_sms
    WHEN 'card' THEN c.consent_card
    ELSE (SELECT CASE WHEN v IN ('1', 'true', 'yes', 'y', 'on') THEN 1
                      WHEN v IN ('0', 'false', 'no', 'n', 'off') THEN 0 END
          FROM (SELECT lower(trim({frag["attribute"]})) AS v) AS flag)
    END)"""
    return f"""d.purpose = 'marketing' AND EXISTS (
    SELECT 1 FROM contacts c WHERE c.id = d.contact_id
      AND CASE {frag["consent"]}
            WHEN 'opt-in' THEN coalesce({flag}, 0) != 1
            WHEN 'opt-out' THEN coalesce({flag}, 1) = 0
            WHEN 'existing-customer' THEN coalesce({flag}, 1) = 0
            ELSE 1 = 0 END)"""


_BOUNCED, _UNSUBSCRIBED = _suppressed(_JSON["sqlite"])
_NO_CONSENT = _no_consent(_JSON["sqlite"])
_NATIVE_BOUNCED, _NATIVE_UNSUBSCRIBED = _suppressed(_JSON["postgresql"])
_NATIVE_NO_CONSENT = _no_consent(_JSON["postgresql"])

# the triggering event (a cancelled or refunded order) was voided by the dispatch's instant
_EVENT_VOIDED = """d.event_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM events v WHERE v.id = d.event_id AND v.voided_at IS NOT NULL
      AND v.voided_at <= :at)"""


def _exit_rule(conn: sqlite3.Connection) -> Predicate:
    """A pending delivery whose campaign's ``[exit]`` has come: an event of the contact of
    its ``exit_event`` type after ``exit_from`` and at or before the dispatch's instant,
    passing its ``exit_where`` (index: contact, type, time). The filters are those the
    pending deliveries carry, each compiled once (partial index on pending exits)."""
    params: dict[str, object] = {}
    wheres: list[str] = []
    rows = conn.execute(
        "SELECT DISTINCT exit_where FROM deliveries INDEXED BY deliveries_pending_exit"
        " WHERE state = 'pending' AND exit_event IS NOT NULL AND exit_where IS NOT NULL"
    ).fetchall()
    for i, (stored,) in enumerate(rows):
        try:
            spec = json.loads(stored)
            sql, values = event_condition(spec["where"], "x", spec.get("tz") or "UTC")
        except (ValueError, KeyError, TypeError):
            continue  # written by the tick from a valid campaign; never expected
        pieces = sql.split("?")  # compiled filters bind every value: each ? is a placeholder
        named = pieces[0] + "".join(f":exit_{i}_{j}{piece}" for j, piece in enumerate(pieces[1:]))
        params[f"exit_{i}"] = stored
        params.update({f"exit_{i}_{j}": v for j, v in enumerate(values)})
        wheres.append(f"(d.exit_where = :exit_{i} AND ({named}))")
    matching = " OR ".join(["d.exit_where IS NULL", *wheres])
    sql = f"""d.exit_event IS NOT NULL AND EXISTS (
        SELECT 1 FROM events x WHERE x.contact_id = d.contact_id AND x.type = d.exit_event
          AND x.occurred_at > d.exit_from AND x.occurred_at <= :at
          AND (x.voided_at IS NULL OR x.voided_at > :at) AND ({matching}))"""
    return sql, params


def _campaign_in(which: str) -> str:
    return f"d.campaign IN (SELECT value FROM json_each(:{which}))"


_CAMPAIGN_DISABLED = f":campaigns_known = 1 AND {_campaign_in('disabled')}"
_CAMPAIGN_REMOVED = (
    f":campaigns_known = 1 AND NOT {_campaign_in('enabled')} AND NOT {_campaign_in('disabled')}"
    f" AND NOT {_campaign_in('broken')}"
)
_CAMPAIGN_BROKEN = f":campaigns_known = 1 AND {_campaign_in('broken')}"
# past the occasion's lateness (stored when the tick decided it)
_TOO_LATE = "d.expires_at IS NOT NULL AND d.expires_at < :at"

_SKIPPED, _CANCELLED = DeliveryState.SKIPPED, DeliveryState.CANCELLED
RULES: tuple[SendRule, ...] = (
    SendRule(
        "bounced",
        _SKIPPED,
        "the address bounced before it was sent",
        _BOUNCED,
        postgresql=_NATIVE_BOUNCED,
    ),
    SendRule(
        "unsubscribed",
        _SKIPPED,
        "unsubscribed before it was sent",
        _UNSUBSCRIBED,
        postgresql=_NATIVE_UNSUBSCRIBED,
    ),
    SendRule(
        "no_consent",
        _CANCELLED,
        "consent withdrawn before it was sent",
        _NO_CONSENT,
        postgresql=_NATIVE_NO_CONSENT,
    ),
    SendRule(
        "event_voided",
        _CANCELLED,
        "its event was voided (cancelled or refunded) before it was sent",
        _EVENT_VOIDED,
    ),
    SendRule(
        "exited",
        _CANCELLED,
        "the journey's exit came before it was sent",
        "the campaign's [exit] event after the occasion's start",
        build=_exit_rule,
    ),
    SendRule(
        "campaign_disabled",
        _CANCELLED,
        "its campaign was disabled before it was sent",
        _CAMPAIGN_DISABLED,
    ),
    SendRule(
        "campaign_removed",
        _CANCELLED,
        "its campaign file was removed before it was sent",
        _CAMPAIGN_REMOVED,
    ),
    SendRule("too_late", _CANCELLED, "too late: past its campaign's max_lateness", _TOO_LATE),
    SendRule("campaign_broken", None, "held: its campaign file does not load", _CAMPAIGN_BROKEN),
)


def held_sql() -> str:
    """SQL over ``d``: the delivery is held by a rule (stays pending, is not claimed)."""
    held = [f"({rule.where})" for rule in RULES if rule.target is None and rule.build is None]
    return " OR ".join(held) or "1 = 0"


def stopped(conn: sqlite3.Connection) -> Predicate:
    """A predicate over ``d``: some rule would stop or hold it (for listings of what is
    due), with its named parameters (besides those of :class:`SendContext` and ``:at``)."""
    parts, params = [], {}
    for rule in RULES:
        sql, extra = rule.predicate(conn)
        parts.append(f"({sql})")
        params.update(extra)
    return " OR ".join(parts) or "1 = 0", params


def stop(
    conn: sqlite3.Connection,
    candidates: str,
    params: dict[str, object],
    *,
    at: Instant,
    now: Instant,
    context: SendContext = NO_CONTEXT,
) -> dict[str, list[str]]:
    """In the caller's write transaction: apply every rule to the pending deliveries
    ``d`` that ``candidates`` (a SQL predicate over ``d`` using ``params``) selects, in
    the order of :data:`RULES` (the first that matches decides). Returns the ids stopped
    or held, by reason (reasons with none are left out); held ones are not moved."""
    predicates = [rule.predicate(conn) for rule in RULES]
    bound: dict[str, object] = {**params, **context.params(), "at": at}
    for _, extra in predicates:
        bound.update(extra)
    # one look for all rules: each delivery gets the first rule that matches it
    cases = " ".join(f"WHEN ({sql}) THEN {i}" for i, (sql, _) in enumerate(predicates))
    matched: dict[int, list[str]] = {}
    for delivery_id, rule_index in conn.execute(
        f"SELECT id, rule FROM (SELECT d.id AS id, CASE {cases} END AS rule FROM deliveries d"
        f" WHERE d.state = 'pending' AND ({candidates})) AS m WHERE rule IS NOT NULL",
        bound,
    ):
        matched.setdefault(int(rule_index), []).append(str(delivery_id))
    stopped: dict[str, list[str]] = {}
    for rule_index, ids in sorted(matched.items()):
        rule = RULES[rule_index]
        if rule.target is None:
            stopped[rule.reason] = ids  # held: left pending
            continue
        moved = move(
            conn, ids, DeliveryState.PENDING, rule.target, at=at, now=now,
            detail=rule.detail, reason=rule.reason,
        )  # fmt: skip
        if moved:
            stopped[rule.reason] = moved
    return stopped


def among(ids: Sequence[str]) -> tuple[str, dict[str, object]]:
    """A ``candidates`` predicate for :func:`stop`: the deliveries ``ids``."""
    return "d.id IN (SELECT value FROM json_each(:stop_ids))", {"stop_ids": json.dumps(list(ids))}
