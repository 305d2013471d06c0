"""``regard.collecting.fewer_collections``: the cycle collector's first threshold raised
while a tick runs, and what it was restored afterwards, also when nested or raising."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from regard.collecting import TICK_THRESHOLD, fewer_collections
from regard.config import Config
from regard.store import Store
from regard.times import Instant


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_threshold_is_raised_within_and_restored_after() -> None:
    with fewer_collections():
        assert gc.get_threshold() == (TICK_THRESHOLD, 10, 10)
        with fewer_collections():
            assert gc.get_threshold() == (TICK_THRESHOLD, 10, 10)
        assert gc.get_threshold() == (TICK_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_the_tick_raises() -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("tick failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_is_never_lowered() -> None:
    gc.set_threshold(TICK_THRESHOLD * 2, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (TICK_THRESHOLD * 2, 10, 10)
    assert gc.get_threshold() == (TICK_THRESHOLD * 2, 10, 10)


def test_a_tick_runs_with_the_threshold_raised(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_tick itself is wrapped: what it calls sees the raised threshold."""
    import importlib

    tick_module = importlib.import_module("regard.engine.tick")

    seen: list[int] = []

    def spy(*args: object, **kwargs: object) -> None:
        seen.append(gc.get_threshold()[0])
        raise RuntimeError("stop here")

    monkeypatch.setattr(tick_module, "in_priority_order", spy)
    with pytest.raises(RuntimeError):
        tick_module.run_tick(store, Config(), [], Instant(0))
    assert seen == [TICK_THRESHOLD]
    assert gc.get_threshold() == (700, 10, 10)
