"""Ways in that others send: MinIO's bucket notifications (its webhook target) and the ComfyUI completion
node's signed webhook. Both end where every upload does, as arrivals of a run in `ingest`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from pynamodb.expressions.update import Action

from rendergate import api, config, ingest, queues, runs, signing, storage
from rendergate.config import settings
from rendergate.errors import BadRequest, Conflict, NotFound, unknown_fields
from rendergate.observability import logger
from rendergate.tables import Run, now_iso, update_if

COMPLETION_FIELDS = frozenset(
    {"s3_uri", "presigned_get", "title", "namespace", "author", "tags", "prompt", "seed", "workflow_hash"}
)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_SEED = 2**64 - 1  # ComfyUI's seeds are unsigned 64-bit
MAX_RECORDS = 100


def authenticate_minio(authorization: str | None) -> None:
    """MinIO's webhook target sends its `auth_token` as `Authorization: Bearer <token>`; Unauthorized unless
    it is ours."""
    signing.check_bearer_token(authorization, config.minio_token())


def minio_notification(body: dict[str, Any]) -> dict[str, int]:
    """Queue the records of one MinIO notification (`{EventName, Key, Records}`) for ingest, as S3 queues its
    own. Events that write no bytes (deletes, tagging, retention) are acknowledged and dropped: MinIO retries
    anything but a 2xx from its queue_dir, so nothing it sends may be refused for being uninteresting."""
    records = body.get("Records")
    if not isinstance(records, list) or not records or len(records) > MAX_RECORDS:
        raise BadRequest(f"Records must be a list of 1-{MAX_RECORDS} bucket notification records")
    writes = []
    for index, record in enumerate(records):
        event_name, bucket, key = _record_fields(record, index)
        if ingest.writes_bytes(event_name):
            stored = record["s3"]["object"]
            object_fields = {"key": key, **{k: stored[k] for k in ("versionId", "size", "eTag") if k in stored}}
            writes.append(
                {
                    "eventSource": record.get("eventSource"),
                    "eventName": event_name,
                    "s3": {"bucket": {"name": bucket}, "object": object_fields},
                }
            )
    if writes:
        queues.send(settings().pipeline.ingest_queue_url, {"Records": writes})  # the shape S3 sends
    return {"queued": len(writes), "ignored": len(records) - len(writes)}


def comfy_completion(headers: Mapping[str, str], raw: bytes) -> tuple[dict[str, Any], int]:
    """`POST /webhooks/comfy`: the completion of images the ComfyUI Upload Image node put through
    `POST /uploads`. The Standard Webhooks signature is checked over the raw body first; the `webhook-id` is
    the idempotency key (a replay answers the run it completed, 200). The run becomes `source: comfy` with
    the title, namespace, author, tags and generation metadata sent, takes in its objects and starts (202)."""
    webhook_id = signing.verify_standard_webhook(config.comfy_webhook_secret(), headers, raw)
    body = api.parse_json(raw.decode("utf-8"))
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object as the body")
    completion = _completion(body)
    run = runs.get(completion["run_id"], consistent=True)
    fingerprint = hashlib.sha256(raw).hexdigest()
    if run.webhook_id is None:
        for key in completion["keys"]:  # the objects must be there before anything is recorded
            if not storage.exists(bucket := settings().storage.media_bucket, key):
                raise NotFound(f"s3://{bucket}/{key} does not exist: upload it before completing")
        if not _claim(run, completion, webhook_id, fingerprint):
            run = runs.get(run.run_id, consistent=True)
            if run.webhook_id is None:
                raise Conflict(
                    f"run {run.run_id} is {run.status}: it started before this completion came; upload with "
                    '"hold": true (as the Upload Image node does) so the run waits for it'
                )
    if run.webhook_id != webhook_id or run.request_sha256 != fingerprint:
        raise Conflict(f"run {run.run_id} was completed by another webhook")
    duplicate = run.status != "queued"
    run = ingest.close(run) if run.status == "queued" else run
    if run.status == "queued":  # the objects were checked above; only a concurrent change leaves it waiting
        raise Conflict(f"run {run.run_id} has nothing to review")
    logger.info("comfy completion", extra={"run_id": run.run_id, "webhook_id": webhook_id, "duplicate": duplicate})
    answer = {**ingest.state(run), "duplicate": duplicate, "links": {"self": ingest.links(run.run_id)["self"]}}
    return answer, 200 if duplicate else 202


def _claim(run: Run, completion: dict[str, Any], webhook_id: str, fingerprint: str) -> bool:
    """Make the run this completion's (once, while queued): `source: comfy` and what the node sent. It is held
    from then on, so only the completion starts it, with this metadata."""
    fields = completion["fields"]
    actions: list[Action] = [
        Run.source.set("comfy"),
        Run.hold.set(True),
        Run.webhook_id.set(webhook_id),
        Run.request_sha256.set(fingerprint),
        Run.namespace.set(fields["namespace"]),
        Run.tags.set(fields["tags"]),
        Run.updated_at.set(now_iso()),
    ]
    for name in ("title", "author", "prompt", "seed", "workflow_sha256"):
        value = fields.get(name)
        attribute = getattr(Run, name)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    return update_if(run, actions, (Run.status == "queued") & Run.webhook_id.does_not_exist())


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    """The completion's run and object keys (each `s3://<media bucket>/incoming/<run_id>/<file>` of one run;
    URLs are refused, nothing is fetched) and its validated fields."""
    if unknown := set(body) - COMPLETION_FIELDS:
        raise unknown_fields(unknown)
    uris = _strings(body.get("s3_uri"), "s3_uri")
    if not uris:
        raise BadRequest("s3_uri is required: the s3:// URI of each uploaded image")
    _strings(body.get("presigned_get"), "presigned_get")  # accepted for the node's sake, never fetched
    bucket = settings().storage.media_bucket
    keys = []
    for uri in uris:
        if not uri.startswith(f"s3://{bucket}/"):
            raise BadRequest(
                f"s3_uri must name an object in the media bucket (s3://{bucket}/...); URLs are not fetched"
            )
        keys.append(uri.removeprefix(f"s3://{bucket}/"))
    run_ids = {key.split("/")[1] if len(key.split("/")) == 3 else "" for key in keys}
    run_id = run_ids.pop() if len(run_ids) == 1 else ""
    run = runs.find(run_id) if run_id and all(k.startswith(ingest.INCOMING_PREFIX) for k in keys) else None
    if run is None or run.source not in ("upload", "comfy") or not all(k in runs.files_of(run) for k in keys):
        raise BadRequest("every s3_uri must be an upload of one run, incoming/<run_id>/<file>, made by POST /uploads")
    tags = body.get("tags", list(run.tags or []))
    if isinstance(tags, str):  # a node's text field: "a, b, c"
        tags = [tag.strip() for tag in tags.split(",") if tag.strip()]
    merged = {"namespace": run.namespace, "title": run.title, "author": run.author, "tags": tags}
    merged |= {k: body[k] for k in ("namespace", "title", "author") if body.get(k) not in (None, "")}
    fields = runs.run_fields(merged, settings().pipeline.default_namespace)
    fields["prompt"] = ingest.prompt_text(body.get("prompt"))
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise BadRequest(f"seed must be an integer from 0 to {MAX_SEED}")
    fields["seed"] = seed
    workflow_hash = body.get("workflow_hash")
    if workflow_hash is not None and (not isinstance(workflow_hash, str) or not SHA256_HEX.match(workflow_hash)):
        raise BadRequest("workflow_hash must be a sha256 in lowercase hex")
    fields["workflow_sha256"] = workflow_hash
    return {"run_id": run_id, "keys": keys, "fields": fields}


def _strings(value: Any, name: str) -> list[str]:
    """A field that is one string or a list of them (one per image)."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    limit = settings().pipeline.max_images_per_run
    if not isinstance(values, list) or not 0 < len(values) <= limit or not all(isinstance(v, str) for v in values):
        raise BadRequest(f"{name} must be a string or a list of 1-{limit} strings")
    return list(values)


def _record_fields(record: Any, index: int) -> tuple[str, str, str]:
    """A record's event name, bucket and (still escaped) object key; BadRequest naming what is missing."""
    try:
        event_name, bucket, key = record["eventName"], record["s3"]["bucket"]["name"], record["s3"]["object"]["key"]
    except (KeyError, TypeError) as error:
        raise BadRequest(f"Records[{index}] needs eventName, s3.bucket.name and s3.object.key") from error
    if not all(isinstance(v, str) and v for v in (event_name, bucket, key)):
        raise BadRequest(f"Records[{index}]: eventName, s3.bucket.name and s3.object.key must be strings")
    return event_name, bucket, key
