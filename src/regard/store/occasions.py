"""What the triggers find due, and the due occasions' contacts as of an instant."""

from __future__ import annotations

from regard.store.area import Area


class Occasions(Area):
    """The trigger queries: set-based and indexed, their cost following what is due."""
