"""The ingest handler: one execution per object, test events and empty batches acknowledged, one bad
record reported alone (partial batch response)."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import boto3

from support.events import load_event, s3_put, sqs_batch
from support.functions import load_function
from support.handlers import Context


def executions() -> list[dict]:
    sfn = boto3.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    return sfn.list_executions(stateMachineArn=arn)["executions"]


def ingest(event: dict) -> dict:
    return load_function("ingest").handler(event, Context())


def presigned_key(filename: str) -> tuple[str, str]:
    from rendergate import ingest as stage

    answer = stage.presign_upload({"filename": filename, "content_type": "image/png", "size": 10})
    return answer["run_id"], answer["key"]


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
    from rendergate.tables import Run

    [execution] = executions()
    run = Run.get(execution["name"])
    assert (run.upload_key, run.title, run.status) == ("incoming/loose file.png", "loose file", "enriching")


def test_objects_outside_incoming_or_in_other_buckets_are_ignored(aws: None) -> None:
    ingest(sqs_batch(json.dumps(s3_put("media-bucket", "thumbs/x.png"))))
    ingest(sqs_batch(json.dumps(s3_put("someone-elses-bucket", "incoming/x.png"))))
    assert executions() == []
