"""The ingest handler: one execution per object, test events and empty batches acknowledged, one bad
record reported alone (partial batch response), and an upload that is not what it declared refused."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import boto3
import pytest

from support.events import load_event, s3_put, sqs_batch
from support.functions import load_function
from support.handlers import Context
from support.owners import ADMIN


def executions() -> list[dict]:
    sfn = boto3.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    return sfn.list_executions(stateMachineArn=arn)["executions"]


def ingest(event: dict) -> dict:
    return load_function("ingest").handler(event, Context())


def presigned_key(filename: str, size: int = 10) -> tuple[str, str]:
    from rendergate import ingest as stage

    answer = stage.presign_upload({"filename": filename, "content_type": "image/png", "size": size}, ADMIN)
    return answer["run_id"], answer["key"]


def uploaded(key: str, data: bytes, content_type: str = "image/png") -> str:
    """Store the object as storage would have, and return the notification's SQS body."""
    boto3.client("s3").put_object(Bucket="media-bucket", Key=key, Body=data, ContentType=content_type)
    return json.dumps(s3_put("media-bucket", quote_plus(key, safe="/"), size=len(data)))


def test_a_notification_starts_one_execution_named_after_the_run(aws: None) -> None:
    run_id, key = presigned_key("My Photo (1)+ü.png")
    body = json.dumps(s3_put("media-bucket", quote_plus(key, safe="/")))
    assert ingest(sqs_batch(body)) == {"batchItemFailures": []}
    started = executions()
    assert [e["name"] for e in started] == [run_id]
    from rendergate.tables import Run

    assert Run.get(run_id).status == "enriching"


def test_a_duplicate_delivery_starts_nothing_new(aws: None) -> None:
    _, key = presigned_key("dup.png")
    body = json.dumps(s3_put("media-bucket", quote_plus(key, safe="/")))
    assert ingest(sqs_batch(body, body)) == {"batchItemFailures": []}
    assert ingest(sqs_batch(body)) == {"batchItemFailures": []}
    assert len(executions()) == 1


def test_test_events_and_empty_batches_are_acknowledged_without_side_effects(aws: None) -> None:
    assert ingest(sqs_batch(json.dumps(load_event("s3_test_event")))) == {"batchItemFailures": []}
    assert ingest({"Records": []}) == {"batchItemFailures": []}
    assert executions() == []


def test_one_bad_record_does_not_fail_the_batch(aws: None) -> None:
    _, key = presigned_key("good.png")
    good = json.dumps(s3_put("media-bucket", quote_plus(key, safe="/")))
    answer = ingest(sqs_batch("this is not JSON", good))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert len(executions()) == 1


def test_an_object_uploaded_without_presign_gets_its_own_run(aws: None) -> None:
    body = json.dumps(s3_put("media-bucket", "incoming/loose+file.png"))
    ingest(sqs_batch(body))
    ingest(sqs_batch(body))
    from rendergate import runs
    from rendergate.tables import Run

    [execution] = executions()
    run = Run.get(execution["name"])
    assert (list(runs.files_of(run)), run.title, run.status) == (["incoming/loose file.png"], "loose file", "enriching")


def test_objects_outside_incoming_or_in_other_buckets_are_ignored(aws: None) -> None:
    ingest(sqs_batch(json.dumps(s3_put("media-bucket", "thumbs/x.png"))))
    ingest(sqs_batch(json.dumps(s3_put("someone-elses-bucket", "incoming/x.png"))))
    assert executions() == []


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        pytest.param(b"x" * 11, "image/png", "the upload is 11 bytes, more than the 10 declared", id="larger"),
        pytest.param(
            b"x" * 10,
            "text/html",
            "the upload was stored as Content-Type text/html, not the declared image/png",
            id="other-type",
        ),
        pytest.param(
            b"x" * 9,
            "image/png; x=1",
            "the upload was stored as Content-Type image/png; x=1, not the declared image/png",
            id="type-with-parameters",
        ),
    ],
)
def test_an_upload_unlike_its_declaration_fails_the_run_and_starts_nothing(
    aws: None, data: bytes, content_type: str, reason: str
) -> None:
    from rendergate import runs
    from rendergate.tables import Run

    run_id, key = presigned_key("declared.png", size=10)
    body = uploaded(key, data, content_type)
    assert ingest(sqs_batch(body, body)) == {"batchItemFailures": []}

    run = Run.get(run_id)
    assert (run.status, run.error_name) == ("failed", "UploadRejected")
    assert runs.error_view(run) == {"name": "UploadRejected", "message": reason}
    assert executions() == []
    tags = boto3.client("s3").get_object_tagging(Bucket="media-bucket", Key=key)["TagSet"]
    assert tags == [{"Key": "rendergate-discard", "Value": "true"}]


def test_an_upload_within_its_declaration_names_the_version_that_was_checked(aws: None) -> None:
    _, key = presigned_key("fits.png", size=10)
    body = uploaded(key, b"x" * 10)
    version = boto3.client("s3").head_object(Bucket="media-bucket", Key=key)["VersionId"]
    ingest(sqs_batch(body))

    [execution] = executions()
    started = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"])["objects"] == [{"bucket": "media-bucket", "key": key, "version_id": version}]


def test_a_later_write_to_the_same_key_does_not_fail_a_run_that_is_under_way(aws: None) -> None:
    from rendergate.tables import Run

    run_id, key = presigned_key("first.png", size=10)
    ingest(sqs_batch(uploaded(key, b"x" * 10)))
    overwrite = uploaded(key, b"y" * 5000, "text/html")  # the first arrival decided; the run is enriching
    assert ingest(sqs_batch(overwrite, overwrite)) == {"batchItemFailures": []}

    run = Run.get(run_id)
    assert (run.status, run.error_name) == ("enriching", None)
    assert len(executions()) == 1
    assert boto3.client("s3").get_object_tagging(Bucket="media-bucket", Key=key)["TagSet"] == []


def test_a_later_write_handled_alongside_the_first_does_not_fail_the_run(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rendergate import ingest as stage
    from rendergate.tables import Run

    run_id, key = presigned_key("raced.png", size=10)
    first = uploaded(key, b"x" * 10)
    seen_queued = Run.get(run_id)  # what a second invocation read before the first one started the run
    ingest(sqs_batch(first))
    overwrite = uploaded(key, b"y" * 5000, "text/html")
    monkeypatch.setattr(stage, "_run_for", lambda bucket, key: seen_queued)
    ingest(sqs_batch(overwrite))

    run = Run.get(run_id)
    assert (run.status, run.error_name) == ("enriching", None)
    assert len(executions()) == 1
