"""Deliveries: the tick's decisions, caps, claims and outcomes, pacing, listings."""

from __future__ import annotations

from regard.store.area import Area


class Deliveries(Area):
    """The ``deliveries`` table; every state change goes through :mod:`regard.store.lifecycle`."""
