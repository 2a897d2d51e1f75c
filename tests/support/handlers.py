"""Calling a function's handler as Lambda would, with an API Gateway (2.0) event and a context."""

from __future__ import annotations

import json
from typing import Any

from support import gateway
from support.events import http_request
from support.functions import load_function

AUTH = {"Authorization": "Bearer unit-test-api-key"}


class Context:
    function_name = "test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "request"

    def __init__(self, remaining_ms: int = 1000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def call(
    function: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, Any]:
    """One HTTP request to a function's handler: (status code, decoded JSON body)."""
    status, answer, _ = call_with_headers(function, method, path, body, headers, **kw)
    return status, answer


def call_with_headers(
    function: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, Any, dict[str, str]]:
    response = respond(function, method, path, body, headers, **kw)
    return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


def respond(
    function: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
) -> dict[str, Any]:
    """The response to one request through API Gateway (statusCode, headers, body): the template's route, its
    authoriser, then the handler. A str or bytes body is sent as it is (bytes base64-encoded, as API Gateway
    sends binary bodies); anything else as JSON."""
    raw = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    event = http_request(method, path, raw, headers, **kw)
    refused = gateway.admit(function, event)
    if refused is not None:
        return refused
    response: dict[str, Any] = load_function(function).handler(event, Context())
    return response
