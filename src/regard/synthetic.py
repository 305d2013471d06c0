"""A synthetic shop, deterministic from a seed: customers and their events in the import formats.

Used by ``regard demo``, the tests and the benchmarks. German and English customers (umlauts
included), addresses in DE/AT/CH/GB/US, locales, time zones, birthdays, consent flags, tags,
some missing fields, and a long-tail order history: many one-time buyers, a few loyal
regulars, and customers who lapsed. Orders are in EUR; NPS answers and referrals are mixed in.

    >>> shop = generate(seed=7, contacts=1000, start=date(2025, 1, 1), end=date(2026, 1, 1))
    >>> next(iter(shop.contacts()))["id"]
    '10001'
    >>> shop.write_csv(Path("data"))  # data/contacts.csv, data/events.csv

Everything is a generator: any scale (1k to 5M events) streams in constant memory. The same
seed and arguments always give byte-identical files.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

CONTACT_COLUMNS = (
    "id", "email", "phone", "first_name", "last_name", "salutation", "company", "locale",
    "timezone", "country", "street", "postal_code", "city", "birthday", "signup_at",
    "consent_email", "consent_sms", "consent_card", "tags", "source",
)  # fmt: skip
EVENT_COLUMNS = (
    "id",
    "contact_id",
    "type",
    "occurred_at",
    "amount",
    "currency",
    "channel",
    "coupon",
)

_DE_FIRST = (
    ("Jürgen", "m"), ("Jörg", "m"), ("Björn", "m"), ("Sören", "m"), ("Günther", "m"),
    ("Lukas", "m"), ("Maximilian", "m"), ("Felix", "m"), ("Stefan", "m"), ("Thomas", "m"),
    ("Käthe", "f"), ("Jülide", "f"), ("Anna", "f"), ("Lea", "f"), ("Mia", "f"),
    ("Sophie", "f"), ("Hannah", "f"), ("Ursula", "f"), ("Bärbel", "f"), ("Renée", "f"),
)  # fmt: skip
_DE_LAST = (
    "Müller", "Schäfer", "Köhler", "Weiß", "Groß", "Schröder", "Krüger", "Böhm", "Fuchs",
    "Bäcker", "Schmidt", "Schneider", "Fischer", "Wagner", "Hoffmann", "Lößner", "Jäger",
    "Vogt", "Zimmermann", "Özdemir",
)  # fmt: skip
_EN_FIRST = (
    ("Oliver", "m"), ("James", "m"), ("George", "m"), ("Noah", "m"), ("Liam", "m"),
    ("Olivia", "f"), ("Amelia", "f"), ("Emma", "f"), ("Chloë", "f"), ("Zoë", "f"),
)  # fmt: skip
_EN_LAST = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "O'Brien",
    "Davies", "Evans",
)  # fmt: skip
_SALUTATION = {"de": {"m": "Herr", "f": "Frau"}, "en": {"m": "Mr", "f": "Ms"}}

# country, share, locale (share of German speakers), zones, cities, streets, domains
_COUNTRIES: tuple[tuple[str, float, float, tuple[str, ...], tuple[str, ...]], ...] = (
    ("DE", 0.55, 0.97, ("Europe/Berlin",), ("Berlin", "München", "Köln", "Düsseldorf", "Nürnberg", "Lübeck")),
    ("AT", 0.12, 0.95, ("Europe/Vienna",), ("Wien", "Graz", "Linz", "Innsbruck")),
    ("CH", 0.08, 0.75, ("Europe/Zurich",), ("Zürich", "Basel", "Bern", "St. Gallen")),
    ("GB", 0.13, 0.02, ("Europe/London",), ("London", "Manchester", "Bristol", "Leeds")),
    ("US", 0.12, 0.02, ("America/New_York", "America/Chicago", "America/Los_Angeles"), ("New York", "Chicago", "Austin", "Seattle")),
)  # fmt: skip
_STREETS = {
    "de": ("Hauptstraße", "Lindenstraße", "Schloßallee", "Am Mühlbach", "Gartenweg", "Kölner Straße"),
    "en": ("High Street", "Station Road", "Main St", "Church Lane", "Oak Avenue", "Park Road"),
}  # fmt: skip
_DOMAINS = {
    "DE": ("web.de", "gmx.de", "t-online.de", "gmail.com", "posteo.de"),
    "AT": ("gmx.at", "aon.at", "gmail.com"),
    "CH": ("bluewin.ch", "gmx.ch", "gmail.com"),
    "GB": ("gmail.com", "outlook.com", "yahoo.co.uk", "btinternet.com"),
    "US": ("gmail.com", "outlook.com", "icloud.com", "yahoo.com"),
}
# E.164 prefixes of mobile ranges and the range of the digits that follow
_PHONES = {
    "DE": ("+49151", 10**7, 10**8), "AT": ("+43664", 10**6, 10**7),
    "CH": ("+4178", 10**6, 10**7), "GB": ("+447400", 10**5, 10**6),
    "US": ("+1212", 2 * 10**6, 10**7),
}  # fmt: skip
_PRODUCTS = (
    ("ROS-12", "Rosenstrauß „Rosa“", 39.9), ("TUL-20", "Tulpen, 20 Stück", 24.5),
    ("ORC-01", "Orchidee im Topf", 29.0), ("VAS-03", "Glasvase", 19.9),
    ("KAR-01", "Grußkarte", 3.5), ("SUC-06", "Sukkulenten-Set", 34.0),
)  # fmt: skip
_SOURCES = ("google", "instagram", "newsletter", "referral", "market")
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "ë": "e", "'": ""})


@dataclass(frozen=True)
class Customer:
    """One generated customer: the contact row and its events, in the import format."""

    contact: dict[str, Any]
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class Shop:
    """A synthetic shop: ``contacts()`` and ``events()`` yield rows in the import format.

    Rows are dicts keyed by the import field names. Lists (``tags``, ``items``) and the
    ``properties`` object are native values; :meth:`write_csv` flattens them the way a
    shop's CSV export would (``tags`` joined by ``|``, properties as extra columns).
    """

    seed: int
    size: int
    start: date
    end: date

    def customers(self) -> Iterator[Customer]:
        """Every customer with its events, in id order (one pass, constant memory)."""
        rng = random.Random(self.seed)
        start = int(
            datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp()
        )
        end = int(datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC).timestamp())
        for index in range(self.size):
            yield _customer(rng, index, self.size, start, end)

    def contacts(self) -> Iterator[dict[str, Any]]:
        """Contact rows (JSONL form: tags a list, consent flags booleans or None)."""
        for customer in self.customers():
            yield customer.contact

    def events(self) -> Iterator[dict[str, Any]]:
        """Event rows (JSONL form: ``properties`` an object, with ``items`` for orders)."""
        for customer in self.customers():
            yield from customer.events

    def write_csv(self, folder: Path, *, delimiter: str = ",") -> tuple[Path, Path]:
        """Write ``contacts.csv`` and ``events.csv`` into ``folder`` in one streaming pass."""
        folder.mkdir(parents=True, exist_ok=True)
        contacts_path, events_path = folder / "contacts.csv", folder / "events.csv"
        with (
            contacts_path.open("w", encoding="utf-8", newline="") as cf,
            events_path.open("w", encoding="utf-8", newline="") as ef,
        ):
            contacts = csv.writer(cf, delimiter=delimiter, lineterminator="\n")
            events = csv.writer(ef, delimiter=delimiter, lineterminator="\n")
            contacts.writerow(CONTACT_COLUMNS)
            events.writerow(EVENT_COLUMNS)
            for customer in self.customers():
                contacts.writerow([_csv_value(customer.contact.get(k)) for k in CONTACT_COLUMNS])
                events.writerows(_event_csv_row(event) for event in customer.events)
        return contacts_path, events_path

    def write_jsonl(self, folder: Path) -> tuple[Path, Path]:
        """Write ``contacts.jsonl`` and ``events.jsonl`` into ``folder`` in one streaming pass."""
        folder.mkdir(parents=True, exist_ok=True)
        contacts_path, events_path = folder / "contacts.jsonl", folder / "events.jsonl"
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        with (
            contacts_path.open("w", encoding="utf-8") as cf,
            events_path.open("w", encoding="utf-8") as ef,
        ):
            for customer in self.customers():
                cf.write(dumps(customer.contact) + "\n")
                ef.write("".join(dumps(event) + "\n" for event in customer.events))
        return contacts_path, events_path


def generate(
    seed: int,
    contacts: int,
    *,
    start: date = date(2024, 1, 1),
    end: date = date(2026, 1, 1),
) -> Shop:
    """A synthetic shop of ``contacts`` customers whose history lies between start and end.

    About five events per customer on average: a sign-up, orders following a long-tail
    distribution, some NPS answers and referrals. Deterministic in all its arguments.
    """
    if contacts < 0:
        raise ValueError("contacts must be at least 0")
    if end <= start:
        raise ValueError("end must be after start")
    return Shop(seed=seed, size=contacts, start=start, end=end)


def _pick_country(rng: random.Random) -> tuple[str, float, float, tuple[str, ...], tuple[str, ...]]:
    r = rng.random()
    for entry in _COUNTRIES:
        r -= entry[1]
        if r < 0:
            return entry
    return _COUNTRIES[0]


_DAYS: dict[int, str] = {}


def _iso(epoch: int) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ``; the date part is cached (formatting is the hot path)."""
    day, second = divmod(epoch, 86400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = date.fromordinal(719163 + day).isoformat()
    hour, rest = divmod(second, 3600)
    return f"{prefix}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}Z"


def _customer(rng: random.Random, index: int, size: int, start: int, end: int) -> Customer:
    cid = str(10001 + index)
    rand = rng.random
    country, _, german_share, zones, cities = _pick_country(rng)
    locale = "de" if rand() < german_share else "en"
    first, sex = rng.choice(_DE_FIRST if locale == "de" else _EN_FIRST)
    last = rng.choice(_DE_LAST if locale == "de" else _EN_LAST)
    b2b = rand() < 0.05
    span = end - start
    signup = start + int(span * rand() ** 1.3)  # more customers in the early years

    # the long tail: how many orders, and when the customer stops buying (lapsed ones early)
    segment = rand()
    if segment < 0.10:
        orders = 0
    elif segment < 0.58:
        orders = 1
    elif segment < 0.83:
        orders = rng.randint(2, 4)
    elif segment < 0.96:
        orders = rng.randint(5, 14)
    else:
        orders = rng.randint(15, 60)
    active_until = end if rand() < 0.45 else signup + int((end - signup) * rand())

    contact: dict[str, Any] = {"id": cid}
    if rand() < 0.92:
        local = f"{first}.{last}".lower().translate(_TRANSLIT).replace(" ", "")
        contact["email"] = f"{local}{index}@{rng.choice(_DOMAINS[country])}"
    else:
        contact["email"] = None
    prefix, low, high = _PHONES[country]
    contact["phone"] = prefix + str(rng.randrange(low, high)) if rand() < 0.45 else None
    contact["first_name"] = first if rand() < 0.93 else None
    contact["last_name"] = last
    contact["salutation"] = _SALUTATION[locale][sex] if rand() < 0.7 else None
    contact["company"] = f"{last} {'GmbH' if locale == 'de' else 'Ltd'}" if b2b else None
    contact["locale"] = locale
    contact["timezone"] = rng.choice(zones) if rand() < 0.9 else None
    contact["country"] = country
    if rand() < 0.85:
        contact["street"] = f"{rng.choice(_STREETS[locale])} {rng.randint(1, 120)}"
        contact["postal_code"] = _postal_code(rng, country)
        contact["city"] = rng.choice(cities)
    else:
        contact["street"] = contact["postal_code"] = contact["city"] = None
    if rand() < 0.75:
        year = rng.randint(1950, 2005)
        day = rng.randint(1, 365)
        contact["birthday"] = "2000-02-29" if day == 60 and rand() < 0.25 else _birthday(year, day)
    else:
        contact["birthday"] = None
    contact["signup_at"] = _iso(signup)
    r = rand()
    contact["consent_email"] = True if r < 0.65 else (False if r < 0.85 else None)
    r = rand()
    contact["consent_sms"] = True if r < 0.3 else (False if r < 0.7 else None)
    contact["consent_card"] = False if rand() < 0.1 else None
    tags = []
    if orders >= 15:
        tags.append("vip")
    if b2b:
        tags.append("b2b")
    if contact["consent_email"] and rand() < 0.5:
        tags.append("newsletter")
    contact["tags"] = tags
    contact["source"] = rng.choice(_SOURCES)

    events: list[dict[str, Any]] = [
        {"id": f"s{cid}", "contact_id": cid, "type": "signup", "occurred_at": _iso(signup)}
    ]
    last_active = max(active_until, signup + 3600)
    times = sorted(signup + int((last_active - signup) * rand()) for _ in range(orders))
    for n, at in enumerate(times, start=1):
        events.append(_order(rng, cid, n, min(at, end - 1), b2b))
    if times and rand() < 0.25:
        at = min(times[0] + rng.randint(3, 14) * 86400, end - 1)
        score = min(10, max(0, round(rng.gauss(8.0, 2.2))))
        events.append(
            {
                "id": f"n{cid}",
                "contact_id": cid,
                "type": "nps",
                "occurred_at": _iso(at),
                "amount": score,
            }
        )
    if times and size > 1 and rand() < 0.05:
        friend = str(10001 + rng.randrange(size))
        events.append(
            {
                "id": f"r{cid}",
                "contact_id": cid,
                "type": "referral",
                "occurred_at": _iso(min(times[-1] + 86400, end - 1)),
                "properties": {"referred": friend},
            }
        )
    return Customer(contact=contact, events=events)


def _order(rng: random.Random, cid: str, n: int, at: int, b2b: bool) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    total = 0.0
    for _ in range(1 + int(rng.random() ** 2 * 3)):
        sku, name, price = rng.choice(_PRODUCTS)
        quantity = rng.randint(5, 40) if b2b else 1 + int(rng.random() ** 3 * 3)
        items.append({"sku": sku, "name": name, "quantity": quantity, "price": price})
        total += price * quantity
    amount = round(total * math.exp(rng.gauss(0, 0.1)), 2)
    properties: dict[str, Any] = {"channel": "web" if rng.random() < 0.8 else "app", "items": items}
    if rng.random() < 0.1:
        properties["coupon"] = "WELCOME10"
    return {
        "id": f"o{cid}-{n}",
        "contact_id": cid,
        "type": "order",
        "occurred_at": _iso(at),
        "amount": amount,
        "currency": "EUR",
        "properties": properties,
    }


def _postal_code(rng: random.Random, country: str) -> str:
    if country == "DE":
        return f"{rng.randint(1067, 99998):05d}"
    if country in ("AT", "CH"):
        return str(rng.randint(1000, 9999))
    if country == "GB":
        return f"SW{rng.randint(1, 20)} {rng.randint(1, 9)}AA"
    return f"{rng.randint(10001, 99950):05d}"


def _birthday(year: int, day_of_year: int) -> str:
    return date.fromordinal(date(year, 1, 1).toordinal() + day_of_year - 1).isoformat()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, list):
        return "|".join(value)
    return str(value)


def _event_csv_row(event: dict[str, Any]) -> list[str]:
    properties = event.get("properties") or {}
    return [
        event["id"],
        event["contact_id"],
        event["type"],
        event["occurred_at"],
        _csv_value(event.get("amount")),
        event.get("currency") or "",
        properties.get("channel", ""),
        properties.get("coupon", ""),
    ]
