"""The local stack as a MinIO deployment sees it: the media bucket sends no S3 notifications; MinIO's webhook
target POSTs its events to /webhooks/minio with its token, keys QueryEscaped, replays from its queue_dir
included. Every way in ends in the same review."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from support.devstack import DevStack
from support.events import minio_notification
from support.images import png

NAMES = ["two words.png", "a+b.png", "slash%2Fnot.png", "fünf 写真.png"]


@pytest.fixture(scope="module")
def minio_bucket(devstack: DevStack) -> Iterator[str]:
    """The media bucket without its S3 → SQS notification for this module (MinIO notifies by webhook)."""
    s3, bucket = devstack.aws("s3"), devstack.state["media_bucket"]
    saved = {
        k: v for k, v in s3.get_bucket_notification_configuration(Bucket=bucket).items() if k != "ResponseMetadata"
    }
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        yield bucket
    finally:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=saved)


def webhook(devstack: DevStack, body: str, token: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token or devstack.state['minio_token']}"}
    return requests.post(f"{devstack.api_url}/webhooks/minio", data=body.encode(), headers=headers, timeout=30)


def upload_batch(devstack: DevStack, names: list[str], **fields: Any) -> dict[str, Any]:
    images = {name: png(60 + i, (80, 60)) for i, name in enumerate(names)}
    files = [{"filename": n, "content_type": "image/png", "size": len(d)} for n, d in images.items()]
    answer = requests.post(
        f"{devstack.api_url}/uploads",
        json={"files": files, "method": "PUT", **fields},
        headers=devstack.auth,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    batch = answer.json()
    for target in batch["files"]:
        sent = requests.put(target["url"], data=images[target["filename"]], headers=target["headers"], timeout=10)
        assert sent.status_code == 200, sent.text
    return dict(batch)


def test_minio_events_start_the_run_with_every_key_decoded(devstack: DevStack, minio_bucket: str) -> None:
    batch = upload_batch(devstack, NAMES, title="From MinIO")
    devstack.ingest_idle()
    assert devstack.run(batch["run_id"])["status"] == "queued"  # no S3 notification came

    events = [minio_notification(minio_bucket, target["key"], size=1) for target in batch["files"]]
    for event in events:
        assert webhook(devstack, event).json() == {"queued": 1, "ignored": 0}
    run = devstack.wait_for(batch["run_id"], "awaiting_review")
    assert run["status"] == "awaiting_review", run
    assert sorted(a["key"] for a in run["assets"]) == sorted(t["key"] for t in batch["files"])

    for event in events:  # MinIO replays its queue_dir after an outage
        assert webhook(devstack, event).status_code == 200
    devstack.ingest_idle()
    assert [e["name"] for e in devstack.executions()].count(batch["run_id"]) == 1
    assert devstack.run(batch["run_id"])["status"] == "awaiting_review"


def test_a_wrong_token_is_refused_and_starts_nothing(devstack: DevStack, minio_bucket: str) -> None:
    batch = upload_batch(devstack, ["forged.png"])
    answer = webhook(devstack, minio_notification(minio_bucket, batch["files"][0]["key"]), token="not-minios")
    assert (answer.status_code, answer.json()["error"]) == (401, "Unauthorized")
    devstack.ingest_idle()
    assert devstack.run(batch["run_id"])["status"] == "queued"


def test_tagging_events_are_dropped(devstack: DevStack, minio_bucket: str) -> None:
    batch = upload_batch(devstack, ["tagged.png"])
    event = minio_notification(minio_bucket, batch["files"][0]["key"], event_name="s3:ObjectCreated:PutTagging")
    assert webhook(devstack, event).json() == {"queued": 0, "ignored": 1}
    devstack.ingest_idle()
    assert devstack.run(batch["run_id"])["status"] == "queued"
