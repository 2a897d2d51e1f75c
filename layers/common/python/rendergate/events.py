"""EventBridge adapter: CloudEvents 1.0 envelopes in the `detail` of events on our bus."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3

from rendergate.config import derived, settings
from rendergate.errors import TransientError

SOURCE = "rendergate"
# Every type the pipeline puts on the bus; delivery targets subscribe to these by name.
TYPES = (
    "run.created.v1",
    "render.completed.v1",
    "render.failed.v1",
    "asset.enriched.v1",
    "review.requested.v1",
    "review.reminder.v1",
    "review.escalated.v1",
    "content.publish.approved.v1",
    "content.published.v1",
    "content.publish.failed.v1",
    "content.discarded.v1",
)


@derived
def _events() -> Any:
    return boto3.client("events", region_name=settings().region)


def envelope(event_type: str, subject: str, data: dict[str, Any], correlation_id: str, event_id: str) -> dict[str, Any]:
    """A CloudEvents 1.0 envelope; `correlationid` carries the run id."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"{SOURCE}/{event_type.split('.')[0]}",
        "type": event_type,
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "subject": subject,
        "datacontenttype": "application/json",
        "correlationid": correlation_id,
        "data": data,
    }


def emit(event_type: str, subject: str, data: dict[str, Any], correlation_id: str, event_id: str | None = None) -> str:
    """Put one event on the bus and return its id. Pass a deterministic id where retries may repeat it."""
    event_id = event_id or str(uuid.uuid4())
    detail = envelope(event_type, subject, data, correlation_id, event_id)
    response = _events().put_events(
        Entries=[
            {
                "EventBusName": settings().pipeline.event_bus,
                "Source": SOURCE,
                "DetailType": event_type,
                "Detail": json.dumps(detail, default=str),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise TransientError(f"EventBridge refused {event_type}: {response['Entries']}")
    return event_id
