"""Driving the pipeline's stages on in-process moto: a presigned run, its objects, enrich, and publish."""

from __future__ import annotations

from typing import Any

import boto3

from support.owners import ADMIN

MEDIA = "media-bucket"


def new_run(title: str | None = "Sunset", filename: str = "x.png", **fields: Any) -> str:
    """A run as `POST /uploads` creates it (queued, with its declaration); its id."""
    from rendergate import ingest

    body = {"filename": filename, "content_type": "image/png", "size": 10, "title": title, **fields}
    return str(ingest.presign_upload({k: v for k, v in body.items() if v is not None}, ADMIN)["run_id"])


def put(key: str, data: bytes, bucket: str = MEDIA, content_type: str = "image/png") -> dict[str, str]:
    """Store an object; the source enrich reads it from (without a version: the current one)."""
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
    return {"bucket": bucket, "key": key}


def enrich(run_id: str, sources: list[dict[str, str]]) -> dict[str, Any]:
    from rendergate.enrich import enrich_run

    return enrich_run({"run_id": run_id, "objects": sources})


def approve_all(run_id: str, reviewer: str = "Alice") -> dict[str, Any]:
    """Publish the run with every accepted asset approved, as the review task's answer would."""
    from rendergate.publish import publish_run
    from rendergate.tables import Asset

    approved = sorted(a.asset_id for a in Asset.by_run.query(run_id) if a.status != "rejected")
    decision = {"approved": approved, "rejected": [], "reviewer": reviewer, "reviewed_at": "2026-01-01T00:00:00Z"}
    return publish_run({"run_id": run_id, "review": {**decision, "review_id": f"review-{run_id}"}})


def arrive(key: str, data: bytes = b"\x89PNG\r\n\x1a\n", content_type: str = "image/png") -> None:
    """Store an object under incoming/ and deliver its S3 notification to the ingest handler."""
    put(key, data, content_type=content_type)
    notify(key)


def notify(key: str) -> None:
    """Deliver an S3 notification of `key` (again, for a redelivery) to the ingest handler, as SQS would."""
    import json
    from urllib.parse import quote_plus

    from support.events import s3_put, sqs_batch
    from support.functions import load_function
    from support.handlers import Context

    body = json.dumps(s3_put(MEDIA, quote_plus(key, safe="/")))
    assert load_function("ingest").handler(sqs_batch(body), Context()) == {"batchItemFailures": []}


def started() -> dict[str, dict[str, Any]]:
    """The executions started so far: their input, by name (the run id)."""
    import json

    sfn = boto3.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    inputs = {e["name"]: sfn.describe_execution(executionArn=e["executionArn"])["input"] for e in executions}
    return {name: json.loads(text) for name, text in inputs.items()}
