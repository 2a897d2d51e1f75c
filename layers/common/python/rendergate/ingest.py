"""Ingest: presigned uploads in, S3 ObjectCreated notifications to exactly one execution per object."""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from rendergate import executions, runs, storage
from rendergate.config import settings
from rendergate.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, unknown_fields
from rendergate.observability import logger
from rendergate.publish import DISCARD_TAG
from rendergate.tables import Run

INCOMING_PREFIX = "incoming/"
CONTENT_TYPES = ("image/png", "image/jpeg", "image/webp")
UPLOAD_FIELDS = frozenset(
    {
        "filename",
        "content_type",
        "size",
        "namespace",
        "title",
        "tags",
        "method",
        "auto_approve",
        "asset_type",
        "language",
    }
)
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
OBJECT_NAMESPACE = uuid.UUID("6f1c2b9e-3d4a-5b6c-8d7e-9f0a1b2c3d4e")


def presign_upload(body: dict[str, Any]) -> dict[str, Any]:
    """Create a run and a presigned POST (or PUT) for `incoming/{run_id}/{filename}`."""
    request = _upload_request(body)
    config = settings()
    run_id = uuid.uuid4().hex
    key = f"{INCOMING_PREFIX}{run_id}/{request['filename']}"
    expires_in = config.upload_url_expiry_seconds
    runs.create(
        Run(
            run_id,
            status="queued",
            source="upload",
            namespace=request["namespace"],
            title=request["title"],
            tags=request["tags"],
            auto_approve=request["auto_approve"],
            asset_type=request["asset_type"],
            language=request["language"],
            upload_key=key,
            content_type=request["content_type"],
            declared_size=request["size"],
        )
    )
    answer: dict[str, Any] = {
        "run_id": run_id,
        "key": key,
        "method": request["method"],
        "expires_at": (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat().replace("+00:00", "Z"),
    }
    if request["method"] == "PUT":
        answer["url"] = storage.presign_put(config.media_bucket, key, request["content_type"], expires_in)
        answer["headers"] = {"Content-Type": request["content_type"]}
    else:
        post = storage.presign_post(config.media_bucket, key, request["content_type"], request["size"], expires_in)
        answer["url"], answer["fields"] = post["url"], post["fields"]
    return answer


def _upload_request(body: dict[str, Any]) -> dict[str, Any]:
    for field in ("bucket", "key", "prefix"):
        if field in body:
            raise BadRequest(f"'{field}' cannot be chosen: uploads always land under {INCOMING_PREFIX}<run_id>/")
    if unknown := set(body) - UPLOAD_FIELDS:
        raise unknown_fields(unknown)
    content_type = body.get("content_type")
    if content_type not in CONTENT_TYPES:
        raise UnsupportedMediaType(f"content_type must be one of {', '.join(CONTENT_TYPES)}")
    size = body.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise BadRequest("size must be the file's size in bytes, a positive integer")
    limit = settings().max_upload_bytes
    if size > limit:
        raise PayloadTooLarge(f"size {size} is over the limit of {limit} bytes")
    method = body.get("method", "POST")
    if method not in ("POST", "PUT"):
        raise BadRequest("method must be POST or PUT")
    return {
        "filename": safe_filename(body.get("filename")),
        "content_type": content_type,
        "size": size,
        "method": method,
        **runs.run_fields(body, settings().default_namespace),
    }


def safe_filename(filename: Any) -> str:
    """A bare file name: no path parts, no control or format characters, at most 255 bytes."""
    if not isinstance(filename, str) or not filename.strip():
        raise BadRequest("filename is required")
    if "/" in filename or "\\" in filename or filename in {".", ".."}:
        raise BadRequest("filename must not contain path parts")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} for ch in filename):
        raise BadRequest("filename must not contain control characters")
    if len(filename.encode()) > 255:
        raise BadRequest("filename must be at most 255 bytes")
    return unicodedata.normalize("NFC", filename)


def decode_key(raw_key: str) -> str:
    """S3 sends object keys form-encoded ('+' for space); MinIO also encodes '/'. Both decode here."""
    return unquote_plus(raw_key)


def ingest_message(body: str) -> list[str]:
    """Handle one SQS message holding an S3 notification; return the run ids it started."""
    message = json.loads(body)
    if message.get("Event") == "s3:TestEvent":
        return []
    started = []
    for record in message.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        run_id = ingest_object(record["s3"]["bucket"]["name"], decode_key(record["s3"]["object"]["key"]))
        if run_id:
            started.append(run_id)
    return started


def ingest_object(bucket: str, key: str) -> str | None:
    """Start the pipeline for one created object, once. Returns the run id, or None if ignored."""
    config = settings()
    if bucket != config.media_bucket or not key.startswith(INCOMING_PREFIX):
        logger.warning("ignoring an object outside incoming/", extra={"bucket": bucket, "key": key})
        return None
    run = _run_for(bucket, key)
    # moved on before starting, so a run the sweep expired (or any run that ended) starts nothing
    if not runs.advance(run, "enriching") and (run := runs.get(run.run_id)).status in runs.FINAL:
        _leave(run, bucket, key)
        return None
    execution = executions.start(run.run_id, pipeline_input(run, bucket, key))
    if execution is None:
        logger.info("duplicate delivery; the run's execution exists", extra={"run_id": run.run_id})
    return run.run_id


def _leave(run: Run, bucket: str, key: str) -> None:
    """An object for a run that has ended starts nothing; unless the run completed (it holds published
    originals), the object is tagged for discard, as publish tags what was not approved."""
    if run.status != "completed":
        storage.tag(bucket, key, {DISCARD_TAG: "true"})
    logger.warning("ignoring an object whose run has ended", extra={"run_id": run.run_id, "status": run.status})


def pipeline_input(run: Run, bucket: str, key: str) -> dict[str, Any]:
    """The execution input. Deterministic for a run, so a redelivery starts nothing new."""
    return runs.pipeline_input(run, [{"bucket": bucket, "key": key}])


def _run_for(bucket: str, key: str) -> Run:
    """The run a presigned upload created, or a new one for an object that arrived another way."""
    parts = key.split("/")
    if len(parts) == 3 and RUN_ID.match(parts[1]):
        run = runs.find(parts[1])
        if run is not None and run.upload_key == key:
            return run
    run_id = uuid.uuid5(OBJECT_NAMESPACE, f"s3://{bucket}/{key}").hex
    filename = parts[-1]
    runs.create(
        Run(
            run_id,
            status="queued",
            source="upload",
            namespace=settings().default_namespace,
            title=filename.rsplit(".", 1)[0] or filename,
            upload_key=key,
        )
    )
    return runs.get(run_id)
