"""The import's fast paths give exactly what the reference libraries give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from email_validator import validate_email
from hypothesis import given
from hypothesis import strategies as st

from regard.store import fields
from regard.times import parse_instant, to_epoch

BERLIN = ZoneInfo("Europe/Berlin")


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(
        [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
    st.sampled_from(["T", " "]),
)
def test_instants_match_parse_instant(value: datetime, tz: timezone | None, sep: str) -> None:
    text = value.replace(tzinfo=tz).isoformat(sep=sep)
    assert fields.instant("t", text, BERLIN) == to_epoch(parse_instant(text, BERLIN))


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-29T02:30:00",
        "2026-10-25T02:30:00",
        "2026-01-01",
        "2026-01-01T10:00:00Z",
        "2026-01-01T10:00:00.9+01:00",
    ],
)
def test_instants_in_gaps_folds_and_fractions(text: str) -> None:
    assert fields.instant("t", text, BERLIN) == to_epoch(parse_instant(text, BERLIN))


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=3, allow_nan=False), st.booleans())
def test_decimals_with_point_or_comma(value: Decimal, comma: bool) -> None:
    text = f"{value:f}"
    if comma:
        text = text.replace(".", ",")
    assert fields.decimal("amount", text) == float(value)


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("+4915112345678", "DE"), ("+4915112345678", None), ("+4915112345678", "US"),
        ("+12125550123", "US"), ("+12042345678", None), ("+390612345678", "IT"),
        ("+447400123456", "GB"), ("+41781234567", "CH"), ("+43664123456", "AT"),
        ("+4930 1234567", None), ("0171 2345678", "DE"), ("+44 7400 123456", "DE"),
    ],
)  # fmt: skip
def test_phones_match_the_phonenumbers_library(text: str, region: str | None) -> None:
    number = phonenumbers.parse(text, region)
    assert phonenumbers.is_valid_number(number)
    expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert fields.phone("phone", text, region) == expected


@pytest.mark.parametrize("text", ["+4900000", "+999123456789", "+1000000000"])
def test_invalid_phones_are_refused(text: str) -> None:
    with pytest.raises(fields.FieldError, match="is not a valid phone number"):
        fields.phone("phone", text, "DE")


@pytest.mark.parametrize(
    "text",
    ["Jo.Doe@Web.DE", "a+tag@sub.example.co.uk", "jürgen@müller.de", "x@EXAMPLE.com"],
)
def test_emails_match_email_validator(text: str) -> None:
    expected = validate_email(text, check_deliverability=False).normalized
    assert fields.email("email", text) == expected


@pytest.mark.parametrize(
    "text", ["a..b@example.com", ".a@example.com", "a@-example.com", "a@example", "a@b.test"]
)
def test_bad_emails_are_refused(text: str) -> None:
    with pytest.raises(fields.FieldError, match="is not a valid e-mail address"):
        fields.email("email", text)
