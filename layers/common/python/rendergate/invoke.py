"""Lambda adapter: hand work to another function without waiting for it."""

from __future__ import annotations

import json
from typing import Any

import boto3

from rendergate.config import derived, settings


@derived
def _lambda() -> Any:
    return boto3.client("lambda", region_name=settings().region)


def start(function_name: str, payload: dict[str, Any]) -> None:
    """Invoke `function_name` asynchronously (InvocationType Event) with `payload`."""
    _lambda().invoke(FunctionName=function_name, InvocationType="Event", Payload=json.dumps(payload).encode())
