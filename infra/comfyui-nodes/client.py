"""Talking to rendergate's HTTP API: presigned uploads (`POST /uploads`) and the completion webhook
(`POST /webhooks/comfy`), signed per Standard Webhooks with a few lines of HMAC. Every failure is a
NodeError whose message a ComfyUI user can act on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import time
from typing import Any

import requests

TIMEOUT = (5, 30)  # connect, read
ATTEMPTS = 5
BACKOFF_SECONDS = 1.0  # doubled per retry, with full jitter
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NodeError(RuntimeError):
    """A failure the node reports to ComfyUI (which shows the message on the node)."""


def secret_from(env_name: str, what: str) -> str:
    """A secret from the environment variable the node names. Secrets are never node inputs: ComfyUI saves every
    input into the workflow JSON and into the metadata of each image it saves."""
    name = (env_name or "").strip()
    if not ENV_NAME.match(name):
        raise NodeError(
            f"rendergate: the {what} input names an environment variable (like RENDERGATE_API_KEY), it is not the "
            f"secret itself; remove the value from the workflow, set the variable and restart ComfyUI"
        )
    value = os.environ.get(name, "").strip()
    if not value:
        raise NodeError(f"rendergate: set the environment variable {name} (the {what}) before starting ComfyUI")
    return value


def presign(api_url: str, api_key: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    """`POST /uploads` for a batch that waits for its completion webhook (`hold`): one run, a presigned PUT per
    file."""
    body = {"files": files, "method": "PUT", "hold": True}
    headers = {"Authorization": f"Bearer {api_key}"}
    answer = _send("POST", f"{_base(api_url)}/uploads", "asking for upload URLs", json=body, headers=headers)
    return dict(answer.json())


def put(target: dict[str, Any], data: bytes) -> None:
    """Upload one file to its presigned PUT, with the headers the signature covers."""
    _send("PUT", target["url"], f"uploading {target['filename']}", data=data, headers=target["headers"])


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """Standard Webhooks: `v1,` + base64 HMAC-SHA256, keyed by the base64 after `whsec_`, of `id.timestamp.body`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def post_completion(api_url: str, secret: str, completion: dict[str, Any]) -> dict[str, Any]:
    """`POST /webhooks/comfy`, signed. 5xx answers, timeouts and refused connections are retried with backoff
    under the same `webhook-id` (re-signed with each attempt's time), so rendergate acts once."""
    body = json.dumps(completion, sort_keys=True, separators=(",", ":"))
    message_id = "msg_" + hashlib.sha256(body.encode()).hexdigest()[:32]  # the same completion, the same id
    url = f"{_base(api_url)}/webhooks/comfy"

    def signed() -> dict[str, str]:
        timestamp = int(time.time())
        return {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, message_id, timestamp, body),
        }

    answer = _send("POST", url, "sending the completion", data=body.encode(), headers=signed)
    return dict(answer.json())


def _send(method: str, url: str, doing: str, headers: Any, **kwargs: Any) -> requests.Response:
    """One request, retried on 5xx, timeouts and connection failures; 4xx and exhaustion are NodeErrors.
    `headers` may be a function, called for each attempt."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = requests.request(
                method, url, headers=headers() if callable(headers) else headers, timeout=TIMEOUT, **kwargs
            )
        except requests.RequestException as error:
            failure = f"{_where(url)} is not reachable ({type(error).__name__})"
        else:
            if response.status_code < 400:
                return response
            if response.status_code < 500 and response.status_code != 429:
                raise NodeError(f"rendergate refused {doing}: {response.status_code} {_message(response)}")
            failure = f"{_where(url)} answered {response.status_code} {_message(response)}"
        if attempt < ATTEMPTS:
            time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** (attempt - 1)))
    raise NodeError(f"rendergate: {doing} failed after {ATTEMPTS} attempts: {failure}")


def _message(response: requests.Response) -> str:
    """rendergate's `{error, message}` (or the start of whatever else came back)."""
    try:
        answer = response.json()
        return f"{answer.get('error', '')}: {answer.get('message', '')}".strip(": ")
    except ValueError:
        return response.text[:200]


def _where(url: str) -> str:
    return url.split("?", 1)[0]  # a presigned URL's query is its signature


def _base(api_url: str) -> str:
    url = (api_url or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise NodeError(f"rendergate: api_url must be the API's http(s) address, not {api_url!r}")
    return url
