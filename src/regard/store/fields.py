"""Validation of single import values: each function takes what the file holds (a CSV string
or a JSON value) and returns what the store keeps, or raises :class:`FieldError` with a reason
a shop owner can act on. Empty strings and JSON nulls mean "no value" (None).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies
from email_validator import EmailNotValidError, validate_email

from regard.times import EARLIEST_EPOCH, LATEST_EPOCH, parse_date, parse_instant, to_epoch, zone


class FieldError(ValueError):
    """One bad value: ``field`` names the column, the message says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def text(field: str, value: Any) -> str | None:
    """A text value, stripped; numbers are taken as their text (ids, postal codes)."""
    if type(value) is str:  # the common case first: every CSV value is one
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FieldError(field, f"must be text, not {json.dumps(value, ensure_ascii=False)}")
    value = str(value).strip()
    return value or None


def required(field: str, value: Any) -> str:
    """A text value that must be there (``id``, ``contact_id``): an id, so printable: a
    control character (a tab, a newline, U+001F …) is refused."""
    result = text(field, value)
    if result is None:
        raise FieldError(field, "is required")
    bad = _CONTROL.search(result)
    if bad is not None:
        raise FieldError(
            field,
            f"contains the control character U+{ord(bad.group()):04X}; ids are printable text",
        )
    return result


# Unicode category Cc: C0 controls, DEL and C1 controls
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def has_control(value: str) -> bool:
    """Whether ``value`` holds a control character (refused in ids, see :func:`required`)."""
    return _CONTROL.search(value) is not None


_BOOLEANS = {"true": 1, "yes": 1, "1": 1, "false": 0, "no": 0, "0": 0}


def boolean(field: str, value: Any) -> int | None:
    """true/false, yes/no, 1/0 (any case) → 1/0; empty → None (not given)."""
    if value is None or isinstance(value, bool):
        return None if value is None else int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        if not key:
            return None
        if key in _BOOLEANS:
            return _BOOLEANS[key]
    raise FieldError(field, f"{_show(value)} is not a boolean (true/false, yes/no, 1/0, or empty)")


_DECIMAL = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


def decimal(field: str, value: Any) -> float | None:
    """A decimal with ``.`` or ``,`` as the separator (``49.90``, ``49,90``); no thousands."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        number = float(value)
    elif isinstance(value, str) and _DECIMAL.match(value.strip()):
        # float() of the decimal text is its nearest double, as float(Decimal(...)) would be
        number = float(value.strip().replace(",", "."))
    if number is None:
        raise FieldError(field, f"{_show(value)} is not a decimal number (like 49.90 or 49,90)")
    if abs(number) >= LARGEST_AMOUNT:
        # beyond this, cents are no longer exact and sums in reports overflow
        raise FieldError(field, f"{_show(value)} is too large (at most 13 digits before the point)")
    return number


LARGEST_AMOUNT = 1e13

# German notation: ``,`` the decimal mark, ``.`` between groups of three digits
_GERMAN = re.compile(r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$")
_THOUSANDS_ONLY = re.compile(r"^[+-]?\d{1,3}(?:\.\d{3})+$")


def german_decimal(field: str, value: Any) -> float | None:
    """A decimal in a ``;``-separated CSV file (what Excel writes in a German locale):
    ``,`` is the decimal mark and ``.`` a thousands separator between groups of three
    digits (``1.234,50``, ``1234,5``, ``-0,99``, ``1.234.567,00``). A ``.`` that cannot be a
    thousands separator is a decimal point (``49.90``). ``1.234`` alone (a thousands
    separator, or a decimal point?) is ambiguous: refused, with how to write either."""
    if not isinstance(value, str):
        return decimal(field, value)
    raw = value.strip()
    if _THOUSANDS_ONLY.match(raw):
        whole = raw.replace(".", "")
        raise FieldError(
            field,
            f"{raw!r} is ambiguous in a ;-separated file: write {whole} or {raw},00 if it "
            f"means {whole}, {raw.replace('.', ',')} if it means {raw}",
        )
    if _GERMAN.match(raw):
        return decimal(field, raw.replace(".", ""))
    if "," in raw and "." in raw:
        raise FieldError(
            field,
            f"{raw!r} is not a decimal number in a ;-separated file (German notation, "
            "like 1.234,50 or 49,90)",
        )
    return decimal(field, value)


def instant(field: str, value: Any, default_tz: tzinfo) -> int | None:
    """An ISO 8601 time (or date) → epoch seconds UTC; naive values are in ``default_tz``."""
    raw = text(field, value)
    if raw is None:
        return None
    try:
        # the common case first (Python 3.11 reads "Z" and bare dates); parse_instant
        # gives the same answer, and the readable error when there is one
        parsed = datetime.fromisoformat(raw)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=default_tz)
        seconds = int(parsed.timestamp() // 1)
        if EARLIEST_EPOCH <= seconds < LATEST_EPOCH:
            return seconds
    except (ValueError, OverflowError):
        pass
    try:
        return to_epoch(parse_instant(raw, default_tz))
    except (ValueError, OverflowError) as exc:
        raise FieldError(field, str(exc)) from None


def calendar_date(field: str, value: Any) -> str | None:
    """An ISO date ``YYYY-MM-DD``, kept as that text."""
    raw = text(field, value)
    if raw is None:
        return None
    try:
        return parse_date(raw).isoformat()
    except ValueError as exc:
        raise FieldError(field, str(exc)) from None


def time_zone(field: str, value: Any) -> str | None:
    """An IANA time zone name like ``Europe/Berlin``."""
    raw = text(field, value)
    if raw is None:
        return None
    if not _known_zone(raw):
        raise FieldError(
            field, f"unknown time zone {raw!r} (expected an IANA name like Europe/Berlin)"
        )
    return raw


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        zone(name)
    except ValueError:
        return False
    return True


def locale(field: str, value: Any) -> str | None:
    """A locale babel knows (``de``, ``de_AT``, ``en-GB``), kept as written."""
    raw = text(field, value)
    if raw is None:
        return None
    if not _known_locale(raw):
        raise FieldError(field, f"unknown locale {raw!r} (expected a code like de or en_GB)")
    return raw


@lru_cache(maxsize=1024)
def _known_locale(name: str) -> bool:
    try:
        Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True


# babel's territories include CLDR's own regions; these are not ISO 3166-1 countries
_NOT_COUNTRIES = frozenset({"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "ZZ"})


@lru_cache(maxsize=1)
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes (from babel's CLDR territory list)."""
    codes = [str(c) for c in Locale("en").territories]
    return frozenset(c for c in codes if len(c) == 2 and c.isalpha()) - _NOT_COUNTRIES


def country(field: str, value: Any) -> str | None:
    """An ISO 3166-1 alpha-2 code, upper-cased (``de`` → ``DE``)."""
    raw = text(field, value)
    if raw is None:
        return None
    code = raw.upper()
    if code not in countries():
        raise FieldError(field, f"{raw!r} is not an ISO 3166-1 alpha-2 country code (like DE)")
    return code


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def currency(field: str, value: Any) -> str | None:
    """An ISO 4217 code, upper-cased."""
    raw = text(field, value)
    if raw is None:
        return None
    code = raw.upper()
    if code not in _currencies():
        raise FieldError(field, f"{raw!r} is not an ISO 4217 currency code (like EUR)")
    return code


# the common shape of an address: ASCII dot-atom local part; its domain is checked (and
# lower-cased) once per domain by email-validator, which sees every other shape in full
_SIMPLE_EMAIL = re.compile(
    r"^([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@([A-Za-z0-9.-]+)$"
)


def email(field: str, value: Any) -> str | None:
    """An e-mail address, syntax only (no DNS); the domain is lower-cased."""
    raw = text(field, value)
    if raw is None:
        return None
    m = _SIMPLE_EMAIL.match(raw)
    if m and len(m.group(1)) <= 64 and len(raw) <= 254:
        domain = _email_domain(m.group(2))
        if domain is not None:
            return f"{m.group(1)}@{domain}"
    try:
        return str(validate_email(raw, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise FieldError(field, f"{raw!r} is not a valid e-mail address: {exc}") from None


@lru_cache(maxsize=4096)
def _email_domain(domain: str) -> str | None:
    try:
        return str(validate_email(f"x@{domain}", check_deliverability=False).domain)
    except EmailNotValidError:
        return None


def phone(field: str, value: Any, region: str | None) -> str | None:
    """A phone number → E.164 (``+4930123456``). ``region`` (an ISO country) is how numbers
    without a ``+`` country code are read."""
    raw = text(field, value)
    if raw is None:
        return None
    m = _E164.match(raw)
    if m:
        number = _e164_number(m.group(1))
        if number is not None and (
            (region and phonenumbers.is_valid_number_for_region(number, region))
            or phonenumbers.is_valid_number(number)
        ):
            return raw  # already E.164: what format_number would give
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        hint = (
            ""
            if region or raw.startswith("+")
            else " (write it with the country code, like +49 30 1234567)"
        )
        raise FieldError(field, f"{raw!r} is not a valid phone number{hint}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_E164 = re.compile(r"^\+([1-9]\d{6,14})$")


def _e164_number(digits: str) -> phonenumbers.PhoneNumber | None:
    """``+<digits>`` split into country code and national number without the full parser
    (the common case of a shop export, several times faster). None where a leading zero
    in the national number needs the parser's care."""
    for length in (1, 2, 3):
        code = int(digits[:length])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[length:]
            if not national or national.startswith("0"):
                return None
            return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return None


_TAG_SEPARATORS = re.compile(r"[|,]")


MAX_JSON_DEPTH = 32  # levels of [ and { in one row; an order's items need three
MAX_COLUMNS = 1_000  # fields of one row: a CSV header's columns, a JSON row's keys and those
# of its attributes (or properties) object
MAX_FIELD_CHARS = 131_072  # one value (the csv module's own limit for a CSV field)
MAX_ROW_CHARS = 1 << 20  # the text of one JSONL line or one object of a JSON array
TOO_DEEP = f"nested too deeply (more than {MAX_JSON_DEPTH} levels of [ and {{)"
TOO_LONG = f"the row is longer than {MAX_ROW_CHARS} characters (see docs/import.md, Limits)"
_OBJECTS = ("attributes", "properties")


def row_problem(row: dict[str, Any]) -> str | None:
    """What makes a decoded JSON row too large to import, None if nothing: more than
    MAX_COLUMNS fields, a text longer than MAX_FIELD_CHARS, or more than MAX_JSON_DEPTH
    levels (a value that deep cannot be stored, read back and rendered without running out
    of stack). One pass over the row."""
    width = len(row) + sum(len(v) for k, v in row.items() if k in _OBJECTS and isinstance(v, dict))
    if width > MAX_COLUMNS:
        return f"{width} fields; a row may have at most {MAX_COLUMNS} (see docs/import.md, Limits)"
    for key, value in row.items():
        if isinstance(value, str):
            if len(value) > MAX_FIELD_CHARS:
                return f"{key}: {len(value)} characters; a value may have at most {MAX_FIELD_CHARS}"
            continue
        level: list[Any] = [value]
        for _ in range(MAX_JSON_DEPTH + 1):
            nested: list[Any] = []
            for item in level:
                if isinstance(item, str):
                    if len(item) > MAX_FIELD_CHARS:
                        return (
                            f"{key}: holds a text of {len(item)} characters; a value may have "
                            f"at most {MAX_FIELD_CHARS}"
                        )
                elif isinstance(item, dict):
                    nested.extend(item.values())
                elif isinstance(item, list):
                    nested.extend(item)
            level = [v for v in nested if isinstance(v, str | dict | list)]
            if not level:
                break
        else:
            return TOO_DEEP
    return None


def too_deep(value: Any) -> bool:
    """Whether ``value`` (decoded JSON, a field of a CSV row) nests more than
    MAX_JSON_DEPTH levels."""
    level: list[Any] = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def tags(field: str, value: Any) -> list[str]:
    """``vip|b2b`` or ``B2B, Großkunde`` in CSV (``|`` or ``,``), a list of strings in JSON;
    empty → no tags. Tags are kept lower-cased: audiences compare them case-insensitively."""
    if value is None:
        return []
    if isinstance(value, str):
        parts: list[str] = _TAG_SEPARATORS.split(value)
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        parts = value
    else:
        raise FieldError(field, "must be a list of strings (in CSV: tags separated by | or ,)")
    return list(dict.fromkeys(t.strip().lower() for t in parts if t.strip()))


def items(field: str, value: Any) -> list[dict[str, Any]] | None:
    """An order's items: a list of objects {sku, name, quantity, price} (JSON text in CSV)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise FieldError(field, "is not valid JSON (expected a list of items)") from None
        except RecursionError:
            raise FieldError(field, TOO_DEEP) from None
    if too_deep(value):
        raise FieldError(field, TOO_DEEP)
    if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
        raise FieldError(field, "must be a list of objects like {sku, name, quantity, price}")
    for n, item in enumerate(value, start=1):
        for key in ("quantity", "price"):
            amount = item.get(key)
            if isinstance(amount, str) and _DECIMAL.match(amount.strip()):
                # the shops send prices as decimal strings ("49.90"); stored as numbers
                item = value[n - 1] = {**item, key: float(amount.strip().replace(",", "."))}
                amount = item[key]
            if amount is not None and (
                isinstance(amount, bool)
                or not isinstance(amount, int | float)
                or not math.isfinite(amount)
            ):
                raise FieldError(field, f"item {n}: {key} must be a number or a decimal string")
            if amount is not None and abs(amount) >= LARGEST_AMOUNT:
                raise FieldError(field, f"item {n}: {key} {amount!r} is too large")
    return value


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
