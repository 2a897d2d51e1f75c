"""AWS answering with errors, as the wire carries them: botocore parses and retries them itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from botocore.awsrequest import AWSResponse

# What Step Functions answers when it throttles or fails inside (awsJson1_0 error bodies).
THROTTLED = (400, "ThrottlingException", "Rate exceeded")
INTERNAL = (500, "InternalFailure", "The request processing has failed because of an unknown error")
UNAVAILABLE = (503, "ServiceUnavailable", "Service Unavailable")


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.read()


@dataclass
class Faults:
    """The answers still to give (status, error code, message); calls sees every request body sent."""

    answers: list[tuple[int, str, str]]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.calls.append(json.loads(request.body or b"{}"))
        if not self.answers:
            return None  # through to the service
        status, code, message = self.answers.pop(0)
        body = json.dumps({"__type": code, "message": message}).encode()
        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))


@contextmanager
def failing(client: Any, operation: str, *answers: tuple[int, str, str]) -> Iterator[Faults]:
    """`client`'s `operation` first answers with `answers`, then reaches the service as usual."""
    faults = Faults(list(answers))
    event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register_first(event, faults)
    try:
        yield faults
    finally:
        client.meta.events.unregister(event, faults)
