"""Sample events generated with `sam local generate-event`, loaded through one helper."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))


def s3_put(bucket: str, raw_key: str, size: int = 1024) -> dict[str, Any]:
    """An S3 ObjectCreated notification for `raw_key`, which must already be encoded as S3 encodes keys."""
    event = load_event("s3_put")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"]["key"] = raw_key
    record["s3"]["object"]["size"] = size
    return event


def sqs_batch(*bodies: str) -> dict[str, Any]:
    """An SQS event source batch carrying `bodies`, one record each, with distinct message ids."""
    template = load_event("sqs_receive_message")["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"message-{index}"
        record["body"] = body
        records.append(record)
    return {"Records": records}


def http_request(
    method: str,
    path: str,
    body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (2.0) event for one request; a `bytes` body arrives base64-encoded, as API
    Gateway sends a body that is not text."""
    event = load_event("http_api_proxy")
    event.pop("cookies", None)
    event.pop("pathParameters", None)
    event.pop("stageVariables", None)
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"] = {k.lower(): v for k, v in (headers or {}).items()}
    if "cookie" in event["headers"]:  # API Gateway hands cookies over as their own list
        event["cookies"] = [c.strip() for c in event["headers"]["cookie"].split(";")]
    event["queryStringParameters"] = query or {}
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    event["isBase64Encoded"] = isinstance(body, bytes)
    event["body"] = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    return event


def minio_notification(
    bucket: str, key: str, event_name: str = "s3:ObjectCreated:Put", version_id: str | None = None, size: int = 1024
) -> str:
    """The body MinIO's webhook target POSTs for one event, as MinIO writes it: `Key` is the bucket and the
    unescaped key, the record's key is Go's url.QueryEscape of it ('/' as %2F, space as '+'), and Go's JSON
    encoder escapes <, > and & inside strings."""
    event = load_event("minio_put")
    event["EventName"] = event_name
    event["Key"] = f"{bucket}/{key}"
    record = event["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    stored = record["s3"]["object"]
    stored["key"] = quote_plus(key, safe="")  # Go's QueryEscape keeps only A-Z a-z 0-9 - _ . ~
    stored["size"] = size
    if version_id:
        stored["versionId"] = version_id
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
