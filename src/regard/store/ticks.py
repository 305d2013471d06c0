"""Tick records (one row per run, daemon tick and simulation) and the daemon's record."""

from __future__ import annotations

from regard.store.area import Area


class Ticks(Area):
    """The ``ticks`` table and the daemon's row of ``meta``."""
