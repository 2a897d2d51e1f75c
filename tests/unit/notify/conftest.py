from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.deliveries import Clock, Scheduled


@pytest.fixture
def scheduled(aws: None, monkeypatch: pytest.MonkeyPatch) -> Scheduled:
    """Every retry notify schedules, recorded on its way to the (moto) delivery queue."""
    from rendergate import queues

    recorded = Scheduled()
    send = queues.send

    def recording(queue_url: str, body: dict[str, Any], delay_seconds: float = 0) -> None:
        send(queue_url, body, delay_seconds)
        recorded.sent.append((json.dumps(body), delay_seconds))

    monkeypatch.setattr(queues, "send", recording)
    return recorded


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def targets(settings: Callable[..., None]) -> Iterator[Callable[..., None]]:
    """Set the targets document (RENDERGATE_TARGETS) to these targets."""

    def use(*items: dict[str, Any]) -> None:
        settings(TARGETS=json.dumps(list(items)))

    yield use
