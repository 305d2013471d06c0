"""The filter grammar, as :mod:`regard.campaigns.loader` imports it (it lives in
:mod:`regard.grammar`, below the store that compiles it to SQL)."""

from regard.grammar import (
    CONTACT_KINDS,
    EVENT_KINDS,
    Kind,
    contact_kind,
    event_kind,
    validate_filter,
)

__all__ = ["CONTACT_KINDS", "EVENT_KINDS", "Kind", "contact_kind", "event_kind", "validate_filter"]
