"""``[trigger] where``: the audience grammar applied to the triggering event (its
``amount``, ``currency`` and properties), compiled to SQL on events ``alias``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regard.store.filters import event_condition


def event_filter(where: Mapping[str, Any], alias: str, tz: str) -> tuple[str, list[Any]]:
    """An SQL condition on the event row ``alias`` and its parameters."""
    return event_condition(where, alias, tz)
