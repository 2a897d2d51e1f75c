"""`POST /webhooks/minio`: MinIO's webhook target, authenticated by its bearer token. Its records go into the
ingest queue as S3's do, keys QueryEscaped as MinIO sends them; replays from MinIO's queue_dir start nothing
new, and events that write no bytes (tagging, deletes) are acknowledged and dropped."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from support.events import minio_notification, sqs_batch
from support.functions import load_function
from support.handlers import AUTH, Context, call, respond
from support.stages import MEDIA, put, started

TOKEN = {"Authorization": "Bearer unit-test-minio-token"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 40


def post(body: str, headers: dict[str, str] | None = TOKEN) -> tuple[int, dict[str, Any]]:
    response = respond(
        "inbound", "POST", "/webhooks/minio", body, {"Content-Type": "application/json", **(headers or {})}
    )
    return response["statusCode"], json.loads(response["body"])


def ingest_queued() -> int:
    """Hand what the webhook queued to the ingest handler, as the event source mapping does; how many."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="IngestQueue")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    if messages:
        event = sqs_batch(*(m["Body"] for m in messages))
        assert load_function("ingest").handler(event, Context()) == {"batchItemFailures": []}
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


def uploaded(filename: str) -> tuple[str, str]:
    """A presigned upload stored in the bucket (MinIO sends no S3 notification to SQS); its run id and key."""
    body = {"filename": filename, "content_type": "image/png", "size": len(PNG)}
    answer = call("presign", "POST", "/uploads", body, AUTH)[1]
    put(answer["key"], PNG)
    return answer["run_id"], answer["key"]


@pytest.mark.parametrize(
    "filename",
    ["plain.png", "two words.png", "a+b.png", "slash%2Fnot.png", "fünf 写真.png", "tom&jerry <1>.png"],
)
def test_minio_keys_arrive_decoded_and_start_their_run(aws: None, filename: str) -> None:
    run_id, key = uploaded(filename)
    assert post(minio_notification(MEDIA, key)) == (200, {"queued": 1, "ignored": 0})
    assert ingest_queued() == 1
    assert [o["key"] for o in started()[run_id]["objects"]] == [key]


def test_a_key_escaped_as_minio_escapes_it_arrives_exactly(aws: None) -> None:
    from rendergate import ingest

    key = "incoming/from mc/a b+c%2F&ü.png"  # an object someone put with mc: it gets a run of its own
    put(key, PNG)
    body = minio_notification(MEDIA, key)
    assert json.loads(body)["Records"][0]["s3"]["object"]["key"] == "incoming%2Ffrom+mc%2Fa+b%2Bc%252F%26%C3%BC.png"
    assert "\\u0026" in body  # Go's JSON encoder escapes '&' in the unescaped Key
    assert post(body)[0] == 200
    assert ingest_queued() == 1
    assert [o["key"] for o in started()[ingest.loose_run_id(MEDIA, key)]["objects"]] == [key]


def test_a_replayed_event_starts_nothing_new(aws: None) -> None:
    run_id, key = uploaded("replayed.png")
    event = minio_notification(MEDIA, key)
    for _ in range(3):  # MinIO replays its queue_dir after an outage
        assert post(event)[0] == 200
    assert ingest_queued() == 3
    assert list(started()) == [run_id]


@pytest.mark.parametrize(
    "event_name",
    [
        "s3:ObjectCreated:PutTagging",
        "s3:ObjectCreated:DeleteTagging",
        "s3:ObjectCreated:PutRetention",
        "s3:ObjectRemoved:Delete",
        "s3:ObjectAccessed:Get",
    ],
)
def test_events_that_write_no_bytes_are_acknowledged_and_dropped(aws: None, event_name: str) -> None:
    _, key = uploaded("tagged.png")
    assert post(minio_notification(MEDIA, key, event_name=event_name)) == (200, {"queued": 0, "ignored": 1})
    assert ingest_queued() == 0
    assert started() == {}


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "unit-test-minio-token"},
        {"Authorization": "Token unit-test-minio-token"},
    ],
)
def test_a_wrong_or_missing_token_is_a_401_and_queues_nothing(aws: None, headers: dict[str, str] | None) -> None:
    _, key = uploaded("forged.png")
    status, error = post(minio_notification(MEDIA, key), headers)
    assert (status, error["error"]) == (401, "Unauthorized")
    assert ingest_queued() == 0


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("not json", "not valid JSON"),
        ("{}", "Records must be a list"),
        ('{"Records": [{"eventName": "s3:ObjectCreated:Put"}]}', "Records[0] needs"),
        (
            json.dumps({"Records": [{"eventName": "x", "s3": {"bucket": {"name": 1}, "object": {"key": "k"}}}]}),
            "must be strings",
        ),
    ],
)
def test_a_malformed_notification_is_a_400(aws: None, body: str, words: str) -> None:
    status, error = post(body)
    assert status == 400
    assert words in error["message"]
