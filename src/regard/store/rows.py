"""One import row → the columns it sets and their stored values, or the list of what is wrong.

A row sets only the columns it has: a CSV column that is absent keeps the stored value, a
present-but-empty one sets NULL. Columns regard does not know become attributes (contacts)
or properties (events), merged key by key into the stored ones (an empty value removes
that key).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

from regard.store import fields
from regard.store.contacts import DERIVED_FACTS
from regard.store.fields import FieldError
from regard.times import EARLIEST_EPOCH, LATEST_EPOCH

CONTACT_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "email": fields.email,
    "first_name": fields.text,
    "last_name": fields.text,
    "salutation": fields.text,
    "company": fields.text,
    "locale": fields.locale,
    "timezone": fields.time_zone,
    "country": fields.country,
    "street": fields.text,
    "address2": fields.text,  # a second address line (c/o, floor, building)
    "postal_code": fields.text,
    "city": fields.text,
    "birthday": fields.calendar_date,
    "consent_email": fields.boolean,
    "consent_sms": fields.boolean,
    "consent_card": fields.boolean,
}
COMPUTED = frozenset({*DERIVED_FACTS, "created_at", "updated_at", "imported_at"})
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def merge_patch(target: str | None, patch: str | None) -> str | None:
    """``target`` (a JSON object's text, or NULL) with the JSON merge patch ``patch`` applied
    (RFC 7386: a null removes the key, an object merges into the object it meets), as the
    same compact text the importer stores. One pass over each object: SQLite's own
    ``json_patch`` finds every key of the patch by scanning the target, which made one row
    of 100,000 attributes take 48.7 s. The store registers it as the SQL function
    ``merge_patch``, which the import's upserts call for a wide patch."""
    if patch is None:
        return target
    changes = json.loads(patch)
    if not isinstance(changes, dict):
        return patch
    current = json.loads(target) if target else {}
    return _dumps(_merged(current if isinstance(current, dict) else {}, changes))


def _merged(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            inner = target.get(key)
            target[key] = _merged(inner if isinstance(inner, dict) else {}, value)
        else:
            target[key] = value
    return target


class ParsedRow(NamedTuple):
    """The columns a row sets (``key``, in order) and their values; ``attributes`` /
    ``properties`` in ``key`` carry a JSON merge patch. (A NamedTuple: one is made per
    imported row, and it is the cheapest record to make.)"""

    id: str
    key: tuple[str, ...]
    values: tuple[Any, ...]
    contact_id: str | None = None
    # the JSON patch column as a new row stores it (its nulls left out), when the parser
    # knows it cheaply; None: the store computes it (``upserts._patched``)
    fresh: str | None = None


class BadRow(Exception):
    """Every problem of one row. ``salvaged`` is the row without its bad fields when only
    optional ones are bad (what ``--skip-invalid`` imports), else None."""

    def __init__(self, problems: list[FieldError], salvaged: ParsedRow | None = None) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems
        self.salvaged = salvaged


# fields without which a row cannot be imported; any other bad field can be dropped alone
CONTACT_REQUIRED = frozenset({"id"})
EVENT_REQUIRED = frozenset({"id", "contact_id", "type", "occurred_at"})


@dataclass(frozen=True)
class RowContext:
    """What a row is read against: the config's time zone for naive times, the region
    for phone numbers written without a country code when the row has no country, and
    the file's notation of amounts."""

    timezone: tzinfo
    default_region: str | None
    # a ;-separated CSV file: amounts in German notation (fields.german_decimal)
    decimal_comma: bool = False

    @property
    def amount(self) -> Callable[[str, Any], float | None]:
        """How this file's amounts are read."""
        return fields.german_decimal if self.decimal_comma else fields.decimal


def parse_contact(row: dict[str, Any], ctx: RowContext) -> ParsedRow:
    """Validate one contact row. Raises BadRow listing every bad field."""
    problems: list[FieldError] = []
    key: list[str] = []
    values: list[Any] = []
    attributes: dict[str, Any] = {}
    contact_id = _take(problems, fields.required, "id", row.get("id"))
    for name, value in row.items():
        parser = CONTACT_PARSERS.get(name)
        if parser is not None:
            key.append(name)
            values.append(_take(problems, parser, name, value))
        elif name in ("id", "phone"):
            continue
        elif name == "signup_at":
            key.append(name)
            values.append(_take(problems, fields.instant, name, value, ctx.timezone))
        elif name == "tags":
            key.append(name)
            values.append(_dumps(_take(problems, fields.tags, name, value) or []))
        elif name == "attributes":
            _merge_object(problems, name, value, attributes)
        elif name in COMPUTED:
            problems.append(FieldError(name, "is computed by regard and cannot be imported"))
        else:
            attributes[name] = _extra(value)
    if "phone" in row:
        region = ctx.default_region
        if "country" in row and isinstance(row["country"], str) and row["country"].strip():
            region = row["country"].strip().upper()
        key.append("phone")
        values.append(_take(problems, fields.phone, "phone", row["phone"], region))
    return _finish(contact_id, key, values, "attributes", attributes, problems, CONTACT_REQUIRED)


def parse_event(row: dict[str, Any], ctx: RowContext) -> ParsedRow:
    """Validate one event row. Raises BadRow listing every bad field."""
    problems: list[FieldError] = []
    event_id = _take(problems, fields.required, "id", row.get("id"))
    contact_id = _take(problems, fields.required, "contact_id", row.get("contact_id"))
    kind = _take(problems, fields.text, "type", row.get("type")) or "order"
    occurred_at = _take(
        problems, fields.instant, "occurred_at", row.get("occurred_at"), ctx.timezone
    )
    if occurred_at is None and not any(p.field == "occurred_at" for p in problems):
        problems.append(FieldError("occurred_at", "is required"))
    key = ["contact_id", "type", "occurred_at"]
    values: list[Any] = [contact_id, kind, occurred_at]
    properties: dict[str, Any] = {}
    for name, value in row.items():
        if name in ("id", "contact_id", "type", "occurred_at"):
            continue
        if name == "amount":
            amount = _take(problems, ctx.amount, name, value)
            key.append(name)
            values.append(amount)
        elif name == "currency":
            key.append(name)
            values.append(_take(problems, fields.currency, name, value))
        elif name == "voided_at":
            key.append(name)
            values.append(_take(problems, fields.instant, name, value, ctx.timezone))
        elif name == "properties":
            _merge_object(problems, name, value, properties)
        elif name == "items":
            properties["items"] = _take(problems, fields.items, name, value)
        elif name in COMPUTED:
            problems.append(FieldError(name, "is computed by regard and cannot be imported"))
        else:
            properties[name] = _extra(value)
    if kind == "nps":
        score = values[key.index("amount")] if "amount" in key else None
        if score is None and not any(p.field == "amount" for p in problems):
            problems.append(FieldError("amount", "an NPS answer needs its score from 0 to 10"))
        elif score is not None and not 0 <= score <= 10:
            problems.append(FieldError("amount", f"an NPS score is from 0 to 10, not {score:g}"))
    required = EVENT_REQUIRED | {"amount"} if kind == "nps" else EVENT_REQUIRED
    return _finish(event_id, key, values, "properties", properties, problems, required, contact_id)


def _finish(
    row_id: str | None,
    key: list[str],
    values: list[Any],
    patch_name: str,
    patch: dict[str, Any],
    problems: list[FieldError],
    required: frozenset[str],
    contact_id: str | None = None,
) -> ParsedRow:
    """The row, its JSON patch column last; with problems, BadRow carrying the row without
    its bad fields, or nothing when a required one is bad."""
    bad = {p.field for p in problems}
    if bad & required:
        raise BadRow(problems)
    if bad:
        kept = [(k, v) for k, v in zip(key, values, strict=True) if k not in bad]
        key, values = [k for k, _ in kept], [v for _, v in kept]
        patch = {k: v for k, v in patch.items() if k not in bad}
    if patch:
        key.append(patch_name)
        values.append(_dumps(patch))
    assert row_id is not None
    parsed = ParsedRow(row_id, tuple(key), tuple(values), contact_id)
    if problems:
        raise BadRow(problems, parsed)
    return parsed


def _take(problems: list[FieldError], parser: Callable[..., Any], *args: Any) -> Any:
    try:
        return parser(*args)
    except FieldError as exc:
        problems.append(exc)
        return None


def _extra(value: Any) -> Any:
    """An attribute or property value: CSV text as written (empty → removed), JSON as is."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _merge_object(problems: list[FieldError], name: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except ValueError:
            value = None
        except RecursionError:
            problems.append(FieldError(name, fields.TOO_DEEP))
            return
    elif isinstance(value, str) or value is None:
        return
    if not isinstance(value, dict):
        problems.append(FieldError(name, "must be a JSON object"))
        return
    if fields.too_deep(value):
        problems.append(FieldError(name, fields.TOO_DEEP))
        return
    for k, v in value.items():
        into.setdefault(k, v)


# -- the fast path: one parser per column layout ---------------------------------------------

_MISSING = object()
_CACHE_LIMIT = 50_000


def event_parser(
    columns: tuple[str, ...], ctx: RowContext
) -> Callable[[dict[str, Any]], ParsedRow]:
    """A parser for event rows with exactly these ``columns`` (a CSV file's header): the
    same ParsedRow :func:`parse_event` gives, computed with the work per column done once
    (which columns go where, how a property's name is written in JSON) and the values
    that repeat (types, currencies, amounts, property values) validated once each. Any row
    off the common path (a value that is not plain text, a bad value, an NPS answer without
    its score) is
    handed to :func:`parse_event`, so a problem is reported exactly as there."""

    def generic(row: dict[str, Any]) -> ParsedRow:
        return parse_event(row, ctx)

    if not {"id", "contact_id", "occurred_at"} <= set(columns):
        return generic
    typed: list[str] = []
    props: list[str] = []
    for name in columns:
        if name in ("id", "contact_id", "type", "occurred_at"):
            continue
        if name in ("amount", "currency", "voided_at"):
            typed.append(name)
        elif name in ("properties", "items") or name in COMPUTED:
            return generic
        else:
            props.append(name)
    key = ("contact_id", "type", "occurred_at", *typed, *(("properties",) if props else ()))
    prefixes = [_dumps(name) + ":" for name in props]
    named_props = list(zip(prefixes, props, strict=True))
    has_type = "type" in columns
    amount_at = 3 + typed.index("amount") if "amount" in typed else 0
    tz = ctx.timezone
    amount = ctx.amount
    checks: dict[str, Callable[[Any], Any]] = {
        "amount": lambda v: amount("amount", v),
        "currency": lambda v: fields.currency("currency", v),
        "voided_at": lambda v: fields.instant("voided_at", v, tz),
    }
    cache: dict[tuple[str, str], Any] = {}
    encoded: dict[str, str] = {}
    fromiso = datetime.fromisoformat

    def parse(row: dict[str, Any]) -> ParsedRow:
        event_id, contact_id = row["id"], row["contact_id"]
        if type(event_id) is not str or type(contact_id) is not str:
            return parse_event(row, ctx)
        event_id, contact_id = event_id.strip(), contact_id.strip()
        if fields.has_control(event_id) or fields.has_control(contact_id):
            return parse_event(row, ctx)  # refused there, naming the field
        kind = row["type"] if has_type else ""
        if not event_id or not contact_id or type(kind) is not str:
            return parse_event(row, ctx)
        kind = kind.strip() or "order"
        raw = row["occurred_at"]
        if type(raw) is not str:
            return parse_event(row, ctx)
        try:
            when = fromiso(raw.strip())
        except ValueError:
            return parse_event(row, ctx)
        if when.tzinfo is None:
            when = when.replace(tzinfo=tz)
        seconds = int(when.timestamp() // 1)
        if not EARLIEST_EPOCH <= seconds < LATEST_EPOCH:
            return parse_event(row, ctx)
        values: list[Any] = [contact_id, kind, seconds]
        for name in typed:
            value = row[name]
            if type(value) is not str:
                return parse_event(row, ctx)
            found = cache.get((name, value), _MISSING)
            if found is _MISSING:
                try:
                    found = checks[name](value)
                except FieldError:
                    return parse_event(row, ctx)
                if len(cache) > _CACHE_LIMIT:
                    cache.clear()
                cache[(name, value)] = found
            values.append(found)
        if kind == "nps":  # an answer needs its score, from 0 to 10 (parse_event says so)
            score = values[amount_at] if amount_at else None
            if score is None or not 0 <= score <= 10:
                return parse_event(row, ctx)
        fresh = None
        if named_props:
            parts = []
            kept = []
            for prefix, name in named_props:
                value = row[name]
                if type(value) is not str:
                    return parse_event(row, ctx)
                text = encoded.get(value)
                if text is None:
                    stripped = value.strip()
                    text = _dumps(stripped) if stripped else "null"
                    if len(encoded) > _CACHE_LIMIT:
                        encoded.clear()
                    encoded[value] = text
                part = prefix + text
                parts.append(part)
                if text != "null":
                    kept.append(part)
            values.append("{" + ",".join(parts) + "}")
            fresh = "{" + ",".join(kept) + "}"
        return ParsedRow(event_id, key, tuple(values), contact_id, fresh)

    return parse
