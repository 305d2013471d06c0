"""The compiled event parser gives exactly what the generic one gives, bad rows included."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from regard.store.rows import BadRow, RowContext, event_parser, parse_event
from regard.times import zone

CTX = RowContext(zone("Europe/Berlin"), "DE")
texts = st.one_of(
    st.sampled_from(["", " ", "x", " o1 ", "ÄÖü", "2026-03-01", "2026-03-01T10:00:00Z"]),
    st.text(max_size=6),
)
values: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(texts, st.integers(0, 5)),
    "contact_id": texts,
    "type": st.sampled_from(["", "order", "nps", "signup", " order "]),
    "occurred_at": st.one_of(
        texts,
        st.sampled_from(
            ["2026-03-01T10:00:00", "2026-03-01 10:00:00+01:00", "1800-01-01", "2026-13-01"]
        ),
    ),
    "amount": st.one_of(texts, st.sampled_from(["49.90", "49,90", "7", "1e3", "-0.5"])),
    "currency": st.sampled_from(["", "EUR", "eur", "XXQ", "CHF"]),
    "voided_at": st.sampled_from(["", "2026-03-02T00:00:00Z", "nie"]),
    "channel": texts,
    "coupon": st.one_of(texts, st.none(), st.integers()),
}


def outcome(parse: Any, row: dict[str, Any]) -> Any:
    """What a parser makes of ``row``; ``fresh`` left out: it is what a parser may add when
    it knows it cheaply (None: the store computes the same)."""
    try:
        return parse(dict(row))._replace(fresh=None)
    except BadRow as bad:
        return ("bad", [(p.field, p.reason) for p in bad.problems], bad.salvaged)


@given(
    st.lists(st.sampled_from(sorted(values)), unique=True, min_size=3).flatmap(
        lambda names: st.fixed_dictionaries({n: values[n] for n in names})
    )
)
def test_the_fast_parser_agrees_with_parse_event(row: dict[str, Any]) -> None:
    fast = event_parser(tuple(row), CTX)
    assert outcome(fast, row) == outcome(lambda r: parse_event(r, CTX), row)
