"""Standard Webhooks targets (n8n, any listener): the CloudEvent as the JSON body, signed with the target's
`whsec_` secret. `webhook-id` is the event id, the same on every retry, so a receiver dedupes by it;
`webhook-timestamp` is the attempt's time, so retries are signed afresh."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from rendergate import signing
from rendergate.targets.http import Answer, Outgoing, Verdict, retry_after

if TYPE_CHECKING:
    from rendergate.targets import Target

DEFAULT_EVENTS = (
    "content.publish.approved.v1",
    "content.published.v1",
    "content.publish.failed.v1",
    "render.failed.v1",
)


def request(target: Target, event: dict[str, Any]) -> Outgoing:
    body = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    signed = signing.standard_webhook_headers(target.secret, str(event["id"]), int(time.time()), body)
    return Outgoing(target.url, {"Content-Type": "application/json", **signed}, body=body.encode())


def outcome(answer: Answer) -> Verdict:
    """2xx delivered; 410 Gone disables the target; anything else is retried, as Standard Webhooks says."""
    if answer.ok:
        return Verdict("delivered")
    if answer.status == 410:
        return Verdict("disabled", "HTTP 410: the receiver wants no more webhooks")
    wait = retry_after(answer)
    if answer.status == 429:
        return Verdict("retry", "HTTP 429: rate limited", retry_after=wait, rate_limited=True)
    return Verdict("retry", f"HTTP {answer.status}", retry_after=wait)
