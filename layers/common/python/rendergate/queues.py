"""SQS adapter: messages for the ingest queue (in the shape S3 sends) and for later, e.g. a delivery's next
attempt. The client is created once, lazily."""

from __future__ import annotations

import json
import math
from typing import Any

import boto3

from rendergate.config import derived, settings

MAX_DELAY_SECONDS = 900  # SQS's longest DelaySeconds; a later message is sent on again when it arrives early


@derived
def _sqs() -> Any:
    return boto3.client("sqs", region_name=settings().region)


def send(queue_url: str, body: dict[str, Any], delay_seconds: float = 0) -> None:
    """Put `body` (as JSON) on the queue, visible after `delay_seconds` (rounded up, at most 15 minutes)."""
    delay = min(MAX_DELAY_SECONDS, max(0, math.ceil(delay_seconds)))
    _sqs().send_message(QueueUrl=queue_url, MessageBody=json.dumps(body), DelaySeconds=delay)
