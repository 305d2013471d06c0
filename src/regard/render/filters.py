"""Filters for people and places, built on babel: money, dates, greetings, first names.

They format for the message being rendered: its locale (the contact's, else the config's),
the contact's time zone and the config's currency, set by :func:`rendering_for`.

    {{ event.amount | money }}              49,90 € (de)   €49.90 (en); in the event's currency
    {{ event.amount | money("CHF") }}
    {{ contact.birthday | date }}           22. November 2026 (de)
    {{ event.occurred_at | datetime }}      22. November 2026, 09:05 (contact's time zone)
    {{ contact | greeting(formal=true) }}   Guten Tag Frau Jäger / Sehr geehrte Damen und Herren
    {{ contact | greeting(formal=false) }}  Hallo Anna / Hallo Frau Jäger / Hallo
    {{ contact | greeting }}                Liebe Frau Schmidt / Hallo Anna / Hallo
    {{ contact.first_name | first_name }}   jürgen → Jürgen, anne-marie → Anne-Marie
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, is_currency
from jinja2 import Undefined, UndefinedError

from regard.render.context import unwrap
from regard.times import from_epoch, parse_instant, zone

_SPACES = str.maketrans({"\xa0": " ", "\u202f": " "})


@dataclass(frozen=True)
class Formatting:
    """How the message being rendered formats: locale, time zone, default currency."""

    locale: Locale
    tz: tzinfo
    currency: str
    money_locale: Locale | None = None  # numbers as written in the contact's country

    @property
    def money(self) -> Locale:
        return self.money_locale or self.locale

    @property
    def language(self) -> str:
        return str(self.locale.language)


_current: ContextVar[Formatting] = ContextVar("formatting")


@functools.lru_cache(maxsize=256)
def babel_locale(name: str | None, fallback: str = "en") -> Locale:
    """The babel Locale for ``de``, ``de-AT`` or ``de_AT``; ``fallback`` when unknown."""
    for candidate in (name, fallback, "en"):
        if candidate:
            try:
                return Locale.parse(candidate.replace("-", "_"))
            except (UnknownLocaleError, ValueError, TypeError):
                continue
    return Locale("en")


@functools.lru_cache(maxsize=256)
def regional_locale(locale: str, country: str | None) -> str:
    """The locale money is written in for someone of ``locale`` in ``country``: a locale
    that names no region takes the country's when babel knows the pair (``de`` in ``CH``
    → ``de_CH``: ``CHF 145.00``, not ``145,00 CHF``; ``de`` in ``AT`` → ``de_AT``); a
    locale with its own region, or a pair babel does not know (``de`` in ``US``), stays."""
    name = locale.replace("-", "_")
    region = (country or "").strip().upper()
    if "_" in name or not re.fullmatch(r"[A-Z]{2}", region):
        return locale
    try:
        Locale.parse(f"{name}_{region}")
    except (UnknownLocaleError, ValueError, TypeError):
        return locale
    return f"{name}_{region}"


@contextmanager
def rendering_for(
    locale: str | None,
    tz: str | tzinfo | None,
    currency: str,
    *,
    fallback: str = "en",
    country: str | None = None,
) -> Iterator[None]:
    """Format with ``locale`` (``fallback`` when babel does not know it), ``tz`` and
    ``currency`` inside the block; money as written in ``country`` (the contact's:
    :func:`regional_locale`)."""
    timezone = tz if isinstance(tz, tzinfo) else _zone_or_utc(tz)
    words = babel_locale(locale, fallback)
    money = babel_locale(regional_locale(str(words), country)) if country else None
    token = _current.set(Formatting(words, timezone, currency, money))
    try:
        yield
    finally:
        _current.reset(token)


def _zone_or_utc(name: str | None) -> tzinfo:
    try:
        return zone(name or "UTC")
    except ValueError:
        return zone("UTC")


def current() -> Formatting:
    """The formatting of the message being rendered (English, UTC, EUR outside one)."""
    formatting = _current.get(None)
    return formatting if formatting is not None else _outside()


@functools.cache
def _outside() -> Formatting:
    return Formatting(Locale("en"), zone("UTC"), "EUR")


def _present(value: Any, what: str) -> Any:
    """The plain value, or an error naming what was empty."""
    if isinstance(value, Undefined):
        raise UndefinedError(value._undefined_message)
    return unwrap(value)


def _text(value: str) -> str:
    return value.translate(_SPACES)


def money(value: Any, currency: str | None = None) -> str:
    """An amount in the locale's format: ``49,90 €`` (de), ``€49.90`` (en), ``CHF 145.00``
    (de for a contact in CH)."""
    raw = _present(value, "money")
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"money needs a number, not {raw!r}") from None
    fmt = current()
    if currency is None:
        # an event's amount carries its own currency; the config's is for the others
        currency = getattr(raw, "currency", None)
    code = str(_present(currency, "currency") if currency is not None else fmt.currency).upper()
    if not _is_currency(code):
        raise ValueError(f"money: {code!r} is not a currency code like EUR")
    return _currency(amount, code, fmt.money)


# A message prints its order's amount and date in the text and again in the HTML, and a
# tick renders many messages for the same days and amounts: babel's formatting is pure, so
# each (value, format, locale) is formatted once.
@functools.lru_cache(maxsize=256)
def _is_currency(code: str) -> bool:
    return bool(is_currency(code))


@functools.lru_cache(maxsize=4096)
def _currency(amount: Decimal, code: str, locale: Locale) -> str:
    return _text(format_currency(amount, code, locale=locale))


@functools.lru_cache(maxsize=4096)
def _day(day: date, format: str, locale: Locale) -> str:
    return _text(format_date(day, format, locale=locale))


def _local(value: Any) -> date | datetime:
    """A date, or an instant in the contact's time zone."""
    raw = _present(value, "date")
    fmt = current()
    if isinstance(raw, datetime):
        return raw.astimezone(fmt.tz) if raw.tzinfo else raw
    if isinstance(raw, date):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return from_epoch(raw).astimezone(fmt.tz)
    if isinstance(raw, str):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw.strip()):
            return date.fromisoformat(raw.strip())
        return parse_instant(raw, fmt.tz).astimezone(fmt.tz)
    raise ValueError(f"not a date or time: {raw!r}")


def format_day(value: Any, format: str = "long") -> str:
    """A date: ``22. November 2026`` (de, long), ``22.11.26`` (de, short), or a babel pattern."""
    local = _local(value)
    day = local.date() if isinstance(local, datetime) else local
    return _day(day, format, current().locale)


def format_moment(value: Any, format: str | None = None) -> str:
    """Date and time in the contact's zone: ``22. November 2026, 09:05`` (de)."""
    local = _local(value)
    if not isinstance(local, datetime):
        return format_day(local)
    loc = current().locale
    if format is None:
        day = format_date(local, "long", locale=loc)
        clock = format_time(local, "short", tzinfo=local.tzinfo, locale=loc)
        return _text(f"{day}, {clock}")
    return _text(format_datetime(local, format, tzinfo=local.tzinfo, locale=loc))


def format_clock(value: Any, format: str = "short") -> str:
    """The time of day in the contact's zone: ``09:05`` (de), ``9:05 AM`` (en)."""
    local = _local(value)
    if not isinstance(local, datetime):
        raise ValueError("time needs a date and time, not a date")
    return _text(format_time(local, format, tzinfo=local.tzinfo, locale=current().locale))


def first_name(value: Any) -> str:
    """A first name as it is written: ``jürgen`` → ``Jürgen``, ``ANNE-MARIE`` → ``Anne-Marie``.

    Names already in mixed case (``McKenzie``, ``DeShawn``) are left as they are.
    """
    raw = _present(value, "first name")
    if isinstance(raw, Mapping):
        raw = raw.get("first_name")
        if not raw:
            raise UndefinedError("contact.first_name is empty here (use greeting for a salutation)")
    return capitalise_name(str(raw))


def capitalise_name(name: str) -> str:
    """Capitalise each part of a name written all in lower or all in upper case."""
    name = " ".join(name.split())
    if name != name.lower() and name != name.upper():
        return name
    return re.sub(r"(^|[\s\-'’])(\w)", lambda m: m.group(1) + m.group(2).upper(), name.lower())


_FEMALE = frozenset(
    {"frau", "fr", "ms", "mrs", "miss", "f", "female", "w", "weiblich", "madame", "mme"}
)
_MALE = frozenset({"herr", "hr", "mr", "m", "male", "männlich", "monsieur"})

# language → (female formal, male formal, informal with name, without a name): the default
GREETINGS: dict[str, tuple[str, str, str, str]] = {
    "de": ("Liebe Frau {last}", "Lieber Herr {last}", "Hallo {first}", "Hallo"),
    "en": ("Dear Ms {last}", "Dear Mr {last}", "Hi {first}", "Hello"),
}


@dataclass(frozen=True)
class Register:
    """The greetings of one register (formal: "Sie"; informal: "du") in one language."""

    female: str  # with the last name
    male: str
    person: str  # first and last name, no (or a neutral) salutation
    first: str  # the first name only
    company: str  # a company without a person
    bare: str  # nothing known


# language → (formal, informal). Formal German follows business usage (DIN 5008): "Guten
# Tag Frau Jäger"; a company without a contact person is "Sehr geehrte Damen und Herren".
REGISTERS: dict[str, tuple[Register, Register]] = {
    "de": (
        Register(
            "Guten Tag Frau {last}",
            "Guten Tag Herr {last}",
            "Guten Tag {first} {last}",
            "Guten Tag {first}",
            "Sehr geehrte Damen und Herren",
            "Guten Tag",
        ),
        Register(
            "Hallo Frau {last}",
            "Hallo Herr {last}",
            "Hallo {first}",
            "Hallo {first}",
            "Hallo zusammen",
            "Hallo",
        ),
    ),
    "en": (
        Register(
            "Dear Ms {last}",
            "Dear Mr {last}",
            "Dear {first} {last}",
            "Dear {first}",
            "Dear Sir or Madam",
            "Hello",
        ),
        Register("Hi Ms {last}", "Hi Mr {last}", "Hi {first}", "Hi {first}", "Hi there", "Hello"),
    ),
}


def greeting(contact: Any, formal: bool | None = None) -> str:
    """A salutation that works with whatever the contact has.

    ``formal=true`` (the "Sie" register): ``Guten Tag Frau Jäger`` / ``Guten Tag Herr Dr.
    Weber`` (an academic title after the salutation is kept), ``Guten Tag Anna Jäger``
    (no salutation), ``Sehr geehrte Damen und Herren`` (a company, no person), ``Guten
    Tag``; in English ``Dear Ms Smith`` … ``Dear Sir or Madam``. ``formal=false`` (the "du"
    register): ``Hallo Anna``, else ``Hallo Frau Jäger``, else ``Hallo``; ``Hi Anna``.
    Without ``formal``: ``Liebe Frau Schmidt`` with a salutation, ``Hallo Anna``, ``Hallo``.
    """
    data = _present(contact, "contact")
    if not isinstance(data, Mapping):
        raise ValueError("greeting is a filter on the contact: {{ contact | greeting }}")
    words = str(data.get("salutation") or "").split()
    form = words[0].lower().rstrip(".") if words else ""
    last = capitalise_name(str(data.get("last_name") or "").strip())
    if words[1:] and last:
        last = f"{' '.join(words[1:])} {last}"  # a title written after the salutation: Dr.
    first = capitalise_name(str(data.get("first_name") or "").strip())
    gender = "female" if form in _FEMALE else "male" if form in _MALE else ""
    if formal is None:
        female, male, informal, bare = GREETINGS.get(current().language, GREETINGS["en"])
        if last and gender == "female":
            return female.format(last=last)
        if last and gender == "male":
            return male.format(last=last)
        if first:
            return informal.format(first=first)
        return bare
    registers = REGISTERS.get(current().language, REGISTERS["en"])
    register = registers[0] if formal else registers[1]
    if formal:
        if last and gender:
            return (register.female if gender == "female" else register.male).format(last=last)
        if first and last:
            return register.person.format(first=first, last=last)
        if first:
            return register.first.format(first=first)
        if str(data.get("company") or "").strip():
            return register.company
        return register.bare
    if first:
        return register.first.format(first=first)
    if last and gender:
        return (register.female if gender == "female" else register.male).format(last=last)
    if str(data.get("company") or "").strip():
        return register.company
    return register.bare


FILTERS: dict[str, Callable[..., Any]] = {
    "money": money,
    "date": format_day,
    "datetime": format_moment,
    "time": format_clock,
    "greeting": greeting,
    "first_name": first_name,
}
