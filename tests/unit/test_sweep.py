"""The sweep expires upload runs whose upload never arrived (found through the by_status index), takes in an
upload whose notification never came, and an object that arrives for a run that has ended starts nothing and
is tagged for discard."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from urllib.parse import quote_plus

import boto3
import pytest

from support.events import s3_put, sqs_batch
from support.functions import load_function
from support.handlers import AUTH, Context, call

BUCKET = "media-bucket"
UPLOAD = {"filename": "late.png", "content_type": "image/png", "size": 10}


def presigned(**fields: str) -> tuple[str, str]:
    status, answer = call("presign", "POST", "/uploads", {**UPLOAD, **fields}, AUTH)
    assert status == 201
    return answer["run_id"], answer["key"]


def age(run_id: str, seconds: float) -> None:
    """Make the run look `seconds` old (its created_at is the by_status index's sort key, and it stays open
    for its URLs' lifetime and the grace period from then)."""
    from rendergate.config import settings
    from rendergate.tables import Run

    current = settings()
    created = time.time() - seconds
    open_until = created + current.uploads.url_expiry_seconds + current.uploads.grace_seconds
    actions = [Run.created_at.set(iso(created)), Run.open_until.set(iso(open_until))]
    Run.get(run_id).update(actions=actions)


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def sweep() -> dict[str, dict[str, str]]:
    from rendergate.sweep import sweep as sweep_once

    return sweep_once(lambda: 60_000)


def executions() -> list[str]:
    sfn = boto3.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    return [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]


def arrive(key: str) -> list[str]:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"\x89PNG\r\n\x1a\n", ContentType="image/png")
    body = json.dumps(s3_put(BUCKET, quote_plus(key, safe="/")))
    answer = load_function("ingest").handler(sqs_batch(body), Context())
    assert answer == {"batchItemFailures": []}
    return executions()


def test_an_upload_that_never_arrives_expires_after_its_url_and_the_grace_period(
    aws: None, settings: Callable[..., None]
) -> None:
    settings(UPLOAD_URL_EXPIRY_SECONDS="900", UPLOAD_GRACE_SECONDS="3600")
    run_id, _ = presigned()
    age(run_id, 900 + 3600 - 60)
    assert sweep()["uploads"] == {}
    assert call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1]["status"] == "queued"

    age(run_id, 900 + 3600 + 60)
    assert sweep()["uploads"] == {run_id: "expired"}
    run = call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1]
    assert run["status"] == "expired"
    assert run["error"]["name"] == "UploadNotReceived"
    assert "the upload never arrived" in run["error"]["message"]
    assert sweep()["uploads"] == {}
    listed = call("runs", "GET", "/runs", headers=AUTH, query={"status": "expired"})[1]["runs"]
    assert [r["run_id"] for r in listed] == [run_id]


def test_an_upload_whose_notification_never_came_is_taken_in_when_its_time_is_up(aws: None) -> None:
    run_id, key = presigned()
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"x", ContentType="image/png")
    age(run_id, 10 * 3600)
    assert sweep()["uploads"] == {run_id: "started"}
    run = call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1]
    assert run["status"] == "enriching"
    assert run["files"] == [{"key": key, "filename": "late.png", "status": "arrived"}]
    assert executions() == [run_id]


def test_only_queued_upload_runs_are_expired(aws: None) -> None:
    from rendergate.tables import Run

    render = Run("render-1", status="queued", source="render", namespace="library")
    render.save()
    moving, _ = presigned()
    Run.get(moving).update(actions=[Run.status.set("enriching")])
    for run_id in ("render-1", moving):
        age(run_id, 10 * 3600)
    assert sweep()["uploads"] == {}
    assert Run.get("render-1").status == "queued"
    assert Run.get(moving).status == "enriching"


def test_an_object_for_an_expired_run_starts_nothing_and_is_discarded(aws: None) -> None:
    run_id, key = presigned()
    age(run_id, 10 * 3600)
    assert sweep()["uploads"] == {run_id: "expired"}
    assert arrive(key) == []
    assert call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1]["status"] == "expired"
    assert boto3.client("s3").get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"] == [
        {"Key": "rendergate-discard", "Value": "true"}
    ]


def test_an_object_for_a_cancelled_run_starts_nothing(aws: None) -> None:
    run_id, key = presigned()
    assert call("runs", "POST", f"/runs/{run_id}/cancel", headers=AUTH)[0] == 200
    assert arrive(key) == []
    assert call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1]["status"] == "cancelled"


def test_a_late_notification_for_a_completed_run_keeps_its_object(aws: None) -> None:
    from rendergate.tables import Run

    run_id, key = presigned()
    Run.get(run_id).update(actions=[Run.status.set("completed")])
    assert arrive(key) == []
    assert boto3.client("s3").get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"] == []


def test_an_upload_in_time_still_starts_its_run(aws: None) -> None:
    run_id, key = presigned()
    assert arrive(key) == [run_id]
    assert call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1]["status"] == "enriching"
    age(run_id, 10 * 3600)
    assert sweep()["uploads"] == {}


def lost_pass(seconds_later: float = 600) -> dict[str, str]:
    from rendergate.sweep import sweep as sweep_once

    return sweep_once(lambda: 60_000, now=time.time() + seconds_later)["lost"]


def stored(key: str) -> None:
    """An object whose notification never came (S3's lost, or MinIO's dropped without a queue_dir)."""
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"\x89PNG\r\n\x1a\n", ContentType="image/png")


def test_an_object_whose_notification_was_lost_is_ingested_by_the_sweep(aws: None) -> None:
    from rendergate import ingest

    stored("incoming/dropped by minio.png")
    assert lost_pass(seconds_later=10) == {}  # its notification may still be on its way
    assert executions() == []

    run_id = ingest.loose_run_id(BUCKET, "incoming/dropped by minio.png")
    assert lost_pass() == {"incoming/dropped by minio.png": run_id}
    assert executions() == [run_id]
    assert lost_pass() == {}  # taken in: never again


def test_a_presigned_upload_whose_notification_was_lost_starts_before_its_time_is_up(aws: None) -> None:
    run_id, key = presigned()
    stored(key)
    assert lost_pass() == {key: run_id}
    assert call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1]["status"] == "enriching"


def test_objects_that_produced_their_run_are_left_alone(aws: None) -> None:
    run_id, key = presigned()
    assert arrive(key) == [run_id]
    stored("incoming/loose.png")
    lost_pass()
    assert lost_pass() == {}
    assert len(executions()) == 2


def test_the_walk_goes_on_where_the_last_pass_stopped(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from rendergate import sweep as module

    monkeypatch.setattr(module, "PAGE_SIZE", 2)
    monkeypatch.setattr(module, "LISTING_PAGES", 1)
    keys = [f"incoming/lost-{i}.png" for i in range(5)]
    for key in keys:
        stored(key)
    passes = [sorted(lost_pass()) for _ in range(4)]
    assert passes == [keys[0:2], keys[2:4], keys[4:5], []]
    assert len(executions()) == 5
