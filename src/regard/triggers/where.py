"""``[trigger] where``: the audience grammar applied to the triggering event (its
``amount``, ``currency`` and properties), compiled to SQL on events ``alias``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def event_filter(where: Mapping[str, Any], alias: str, tz: str) -> tuple[str, list[Any]]:
    """An SQL condition on the event row ``alias`` and its parameters."""
    from regard.campaigns.audience import compile_filter, event_column

    condition: tuple[str, list[Any]] = compile_filter(
        where, lambda name: event_column(name, alias), tz=tz
    )
    return condition
