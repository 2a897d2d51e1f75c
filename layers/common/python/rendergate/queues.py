"""SQS adapter: messages for the ingest queue, where S3 puts its notifications. The client is created once."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import boto3

from rendergate.config import settings


@cache
def _sqs() -> Any:
    return boto3.client("sqs", region_name=settings().region)


def send_to_ingest(message: dict[str, Any]) -> None:
    """Queue a notification for ingest, in the shape S3 sends (`{"Records": [...]}`)."""
    _sqs().send_message(QueueUrl=settings().ingest_queue_url, MessageBody=json.dumps(message))
