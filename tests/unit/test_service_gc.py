"""The collector settings a service runs with (``stormwatch_shared.service.serve``)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from stormwatch_shared import service


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restore_gc")
def test_services_collect_less_often_than_the_default() -> None:
    gc.set_threshold(700, 10, 10)
    service.tune_gc()
    assert gc.get_threshold() == service.GC_THRESHOLDS
    assert service.GC_THRESHOLDS[0] > 700


@pytest.mark.usefixtures("restore_gc")
def test_objects_alive_after_startup_leave_the_collected_generations() -> None:
    gc.unfreeze()
    model = [{"weights": [float(i)]} for i in range(1000)]  # stands in for a loaded model
    asyncio.run(service._freeze_startup_objects())
    assert gc.get_freeze_count() >= len(model)
    assert not any(model is o for o in gc.get_objects(generation=2))


class _App:
    def __init__(self) -> None:
        self.hooks: list[object] = []

    def after_startup(self, hook: object) -> object:
        self.hooks.append(hook)
        return hook


@pytest.mark.usefixtures("restore_gc")
def test_serve_tunes_the_collector_and_freezes_after_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _App()
    monkeypatch.setattr(service.asyncio, "run", lambda coro: coro.close())
    service.serve(app, None, "test")  # type: ignore[arg-type]
    assert gc.get_threshold() == service.GC_THRESHOLDS
    assert app.hooks == [service._freeze_startup_objects]
