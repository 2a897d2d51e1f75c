"""Ingest: presigned uploads in, S3 ObjectCreated notifications to exactly one execution per object."""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from pynamodb.expressions.update import Action

from rendergate import executions, runs, storage
from rendergate.config import settings
from rendergate.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    UploadRejected,
    unknown_fields,
)
from rendergate.observability import logger
from rendergate.tables import Run, now_iso, update_if

INCOMING_PREFIX = "incoming/"
# The file name extensions each accepted Content-Type may carry (compared case-insensitively).
EXTENSIONS = {"image/png": (".png",), "image/jpeg": (".jpg", ".jpeg"), "image/webp": (".webp",)}
CONTENT_TYPES = tuple(EXTENSIONS)
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
        put = storage.presign_put(config.media_bucket, key, request["content_type"], expires_in)
        answer["url"], answer["headers"] = put["url"], put["headers"]
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
    filename = safe_filename(body.get("filename"))
    if not filename.lower().endswith(EXTENSIONS[content_type]):
        raise BadRequest(f"filename must end in {' or '.join(EXTENSIONS[content_type])} for {content_type}")
    return {
        "filename": filename,
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
        stored = record["s3"]["object"]
        run_id = ingest_object(record["s3"]["bucket"]["name"], decode_key(stored["key"]), stored.get("versionId"))
        if run_id:
            started.append(run_id)
    return started


def ingest_object(bucket: str, key: str, version_id: str | None = None) -> str | None:
    """Start the pipeline for one created object, once, if it is what its upload declared.
    Returns the run id, or None if ignored or rejected."""
    config = settings()
    if bucket != config.media_bucket or not key.startswith(INCOMING_PREFIX):
        logger.warning("ignoring an object outside incoming/", extra={"bucket": bucket, "key": key})
        return None
    run = _run_for(bucket, key)
    if run.status in runs.FINAL:
        _leave(run, bucket, key)
        return None
    try:
        stored = storage.describe(bucket, key, version_id)
    except NotFound:
        stored = None  # gone already: enrich records the asset as missing
    if stored is not None:
        try:
            check_declaration(run, stored)
        except UploadRejected as rejection:
            if run.status == "queued":
                _reject_upload(run, bucket, key, rejection)
            else:  # only the first arrival decides; a later bad write starts nothing (publish is pinned anyway)
                logger.warning("ignoring a write that breaks the declaration", extra={"run_id": run.run_id})
            return None
        version_id = stored.version_id
    # moved on before starting, so a run the sweep expired (or any run that ended) starts nothing
    if not runs.advance(run, "enriching") and (run := runs.get(run.run_id)).status in runs.FINAL:
        _leave(run, bucket, key)
        return None
    execution = executions.start(run.run_id, pipeline_input(run, bucket, key, version_id))
    if execution is None:
        logger.info("duplicate delivery; the run's execution exists", extra={"run_id": run.run_id})
    return run.run_id


def check_declaration(run: Run, stored: storage.StoredObject) -> None:
    """Raise UploadRejected when the stored object is larger than declared or of another Content-Type.
    Storage is asked to enforce both when presigning; this does not rely on it having done so."""
    if run.declared_size is not None and stored.size > int(run.declared_size):
        raise UploadRejected(f"the upload is {stored.size} bytes, more than the {int(run.declared_size)} declared")
    declared, sent = run.content_type, stored.content_type
    if declared is not None and (sent or "").lower() != declared.lower():
        raise UploadRejected(f"the upload was stored as Content-Type {sent or '(none)'}, not the declared {declared}")


def pipeline_input(run: Run, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
    """The execution input, naming the version that was checked, so enrich analyses exactly those bytes.
    Deterministic for a run and its object, so a redelivery starts nothing new."""
    source = {"bucket": bucket, "key": key, **({"version_id": version_id} if version_id else {})}
    return runs.pipeline_input(run, [source])


def _reject_upload(run: Run, bucket: str, key: str, rejection: UploadRejected) -> None:
    """Fail the run with the reason, start nothing, and tag the object for discard."""
    logger.warning("upload rejected", extra={"run_id": run.run_id, "key": key, "reason": str(rejection)})
    storage.discard(bucket, key)  # before the run fails, so a redelivery after a crash still tags it
    failure: list[Action] = [
        Run.status.set("failed"),
        Run.error_name.set(type(rejection).__name__),
        Run.error_cause.set(str(rejection)),
        Run.updated_at.set(now_iso()),
    ]
    # only while queued: an earlier arrival handled at the same time may have started the run already
    update_if(run, failure, Run.status == "queued")


def _leave(run: Run, bucket: str, key: str) -> None:
    """An object for a run that has ended starts nothing; unless the run completed (it holds published
    originals), the object is tagged for discard, as publish tags what was not approved."""
    if run.status != "completed":
        storage.discard(bucket, key)
    logger.warning("ignoring an object whose run has ended", extra={"run_id": run.run_id, "status": run.status})


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
