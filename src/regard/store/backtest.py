"""``regard simulate``: the scratch copy a backtest replays on, and its summary queries."""

from __future__ import annotations

from regard.store.area import Area


class Backtests(Area):
    """A backtest's scratch store: copied from the real one, replayed, summarised."""
