"""The aggregates of ``regard report``, ``regard status`` and ``regard simulate``."""

from __future__ import annotations

from regard.store.area import Area


class Reports(Area):
    """Set-based counts over deliveries and events."""
