"""Driving the notify function on in-process moto: events as EventBridge puts them in the delivery queue,
the retries it schedules, and a clock the tests move forward instead of waiting."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from support.events import sqs_batch
from support.functions import load_function
from support.handlers import Context

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw4h6vOaTvMxw="


def envelope(event_type: str, data: dict[str, Any], run_id: str = "run-1") -> dict[str, Any]:
    """A CloudEvent as the pipeline emits it, with a fresh id."""
    from rendergate import events

    return events.envelope(event_type, "asset-1", data, run_id, str(uuid.uuid4()))


def published(run_id: str = "run-1", namespace: str = "library", **data: Any) -> dict[str, Any]:
    """A `content.published.v1` for one library object."""
    fields = {
        "run_id": run_id,
        "namespace": namespace,
        "title": "Sunset",
        "library_bucket": "library-bucket",
        "library_key": f"{namespace}/sunset/x.png",
        "public_url": None,
        "tags": ["sky"],
        "reviewer": "Alice",
    }
    return envelope("content.published.v1", {**fields, **data}, run_id)


def bus_message(detail: dict[str, Any]) -> str:
    """The body EventBridge writes to an SQS target for an event of ours."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail["type"],
            "source": "rendergate",
            "account": "123456789012",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def handle(*bodies: str, remaining_ms: int = 60_000) -> dict[str, Any]:
    """The notify function's answer to one batch of these message bodies."""
    answer: dict[str, Any] = load_function("notify").handler(sqs_batch(*bodies), Context(remaining_ms))
    return answer


@dataclass
class Scheduled:
    """The retries notify put on the delivery queue: (message body, delay in seconds)."""

    sent: list[tuple[str, float]] = field(default_factory=list)

    def take(self) -> list[str]:
        """The bodies sent so far, forgetting them."""
        bodies = [body for body, _ in self.sent]
        self.sent.clear()
        return bodies


class Clock:
    """The deliveries module's clock, moved forward by the test instead of waited for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import time

        from rendergate.notify import deliveries

        self.now = time.time()
        monkeypatch.setattr(deliveries, "clock", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def once(item: dict[str, Any], event: dict[str, Any]) -> Any:
    """One attempt of `event` to the target `item` describes, through its adapter and the HTTP client: the
    Verdict (NoAnswer propagates)."""
    from rendergate.targets import parse
    from rendergate.targets.http import send

    [target] = parse(json.dumps([item]))
    return target.adapter.outcome(send(target.adapter.request(target, event)))
