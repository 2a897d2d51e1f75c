from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.devstack import DevStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def bus_events(devstack: DevStack) -> Callable[[], list[dict[str, Any]]]:
    """Everything put on the stack's event bus, captured by a rule into a queue, as a consumer would."""
    sqs, events = devstack.aws("sqs"), devstack.aws("events")
    queue_url = sqs.create_queue(QueueName="bus-capture")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = devstack.state["event_bus"]
    events.put_rule(Name="capture", EventBusName=bus, EventPattern=json.dumps({"source": ["rendergate"]}))
    events.put_targets(Rule="capture", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    seen: list[dict[str, Any]] = []

    def drain() -> list[dict[str, Any]]:
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return seen
            for message in messages:
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return drain


@pytest.fixture
def awaiting_review(devstack: DevStack) -> Iterator[Callable[..., dict[str, Any]]]:
    """Upload an image and return the run once it waits for review."""
    from support.images import png

    counter = iter(range(1000, 10_000))

    def make(**fields: Any) -> dict[str, Any]:
        run_id = devstack.upload(png(next(counter)), "picture.png", **fields)
        run = devstack.wait_for(run_id, "awaiting_review")
        assert run["status"] == "awaiting_review", run
        return run

    yield make
