"""What a tick needs to decide and record: caps, cooldowns, what is decided already."""

from __future__ import annotations

from regard.store.area import Area


class Decisions(Area):
    """The tick's questions about earlier deliveries, and the recording of its decisions."""
