"""`POST /webhooks/comfy`: the ComfyUI completion, signed per Standard Webhooks and checked here against
requests signed by the reference `standardwebhooks` library: good, forged, stale, replayed, malformed. It
completes the run the Upload Image node made, as `source: comfy`, with what the node sent; nothing is fetched."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from standardwebhooks.webhooks import Webhook

from support.handlers import AUTH, call, respond
from support.stages import MEDIA, put, started

SECRET = "whsec_dW5pdC10ZXN0LWNvbWZ5LXdlYmhvb2stc2VjcmV0"  # as tests/support/aws.py configures it
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 40


def held_upload(*names: str) -> dict[str, Any]:
    """What the Upload Image node does: a held batch, every file uploaded."""
    files = [{"filename": name, "content_type": "image/png", "size": len(PNG)} for name in names]
    answer = call("presign", "POST", "/uploads", {"files": files, "hold": True, "method": "PUT"}, AUTH)[1]
    for target in answer["files"]:
        put(target["key"], PNG)
    return dict(answer)


def completion(upload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    uris = [f["s3_uri"] for f in upload["files"]]
    gets = [f["get_url"] for f in upload["files"]]
    body = {"s3_uri": uris[0] if len(uris) == 1 else uris, "presigned_get": gets[0] if len(gets) == 1 else gets}
    return {**body, "title": "Neon city", "namespace": "pmoves", "author": "DARKXSIDE", "tags": ["neon"], **fields}


def signed(body: str, message_id: str = "msg_1", at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    timestamp = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
    }


def post(body: str | bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = respond("inbound", "POST", "/webhooks/comfy", body, headers)
    return response["statusCode"], json.loads(response["body"])


def run(run_id: str) -> dict[str, Any]:
    return dict(call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1])


def test_a_signed_completion_starts_the_uploaded_run_as_a_comfy_run(aws: None) -> None:
    upload = held_upload("comfy_00000.png", "comfy_00001.png")
    body = json.dumps(completion(upload, prompt="neon city at night", seed=2**63 + 5, workflow_hash="ab" * 32))
    status, answer = post(body, signed(body))

    assert (status, answer["status"], answer["source"], answer["duplicate"]) == (202, "enriching", "comfy", False)
    made = run(upload["run_id"])
    assert (made["source"], made["title"], made["namespace"], made["author"], made["tags"]) == (
        "comfy",
        "Neon city",
        "pmoves",
        "DARKXSIDE",
        ["neon"],
    )
    assert made["generation"] == {
        "prompt": "neon city at night",
        "params": {},
        "seed": 2**63 + 5,
        "workflow_sha256": "ab" * 32,
    }
    execution = started()[upload["run_id"]]
    assert [o["key"] for o in execution["objects"]] == [f["key"] for f in upload["files"]]
    assert (execution["source"], execution["title"], execution["auto_approve"]) == ("comfy", "Neon city", False)


def test_a_replayed_completion_has_no_second_effect(aws: None) -> None:
    upload = held_upload("once.png")
    body = json.dumps(completion(upload))
    assert post(body, signed(body, "msg_replayed"))[0] == 202
    status, answer = post(body, signed(body, "msg_replayed", at=time.time() + 60))  # a retry, re-signed later
    assert (status, answer["duplicate"], answer["run_id"]) == (200, True, upload["run_id"])
    assert len(started()) == 1


def test_another_completion_of_a_completed_run_is_a_409(aws: None) -> None:
    upload = held_upload("once.png")
    body = json.dumps(completion(upload))
    assert post(body, signed(body, "msg_first"))[0] == 202
    other = json.dumps(completion(upload, title="Another title"))
    assert post(other, signed(other, "msg_second"))[0] == 409
    assert run(upload["run_id"])["title"] == "Neon city"


def test_the_namespace_can_say_auto_approve(aws: None, settings: Any) -> None:
    settings(AUTO_APPROVE_NAMESPACES="pmoves,studio")
    upload = held_upload("auto.png")
    body = json.dumps(completion(upload))
    assert post(body, signed(body))[0] == 202
    assert started()[upload["run_id"]]["auto_approve"] is True


def forged(body: str) -> dict[str, str]:
    return signed(body, secret="whsec_" + base64.b64encode(b"someone else's secret").decode())


def stale(body: str) -> dict[str, str]:
    return signed(body, at=time.time() - 6 * 60)


def from_the_future(body: str) -> dict[str, str]:
    return signed(body, at=time.time() + 6 * 60)


def unversioned(body: str) -> dict[str, str]:
    return {**signed(body), "webhook-signature": signed(body)["webhook-signature"].removeprefix("v1,")}


def garbage(body: str) -> dict[str, str]:
    return {**signed(body), "webhook-signature": "v1,%%%not-base64%%%"}


def no_timestamp(body: str) -> dict[str, str]:
    return {k: v for k, v in signed(body).items() if k != "webhook-timestamp"}


def word_timestamp(body: str) -> dict[str, str]:
    return {**signed(body), "webhook-timestamp": "yesterday"}


def unsigned(body: str) -> dict[str, str]:
    return {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "headers", [forged, stale, from_the_future, unversioned, garbage, no_timestamp, word_timestamp, unsigned]
)
def test_a_forged_stale_or_malformed_signature_is_a_401_and_changes_nothing(aws: None, headers: Any) -> None:
    upload = held_upload("x.png")
    body = json.dumps(completion(upload))
    status, error = post(body, headers(body))
    assert (status, error["error"]) == (401, "Unauthorized")
    assert run(upload["run_id"])["source"] == "upload"
    assert started() == {}


def test_a_body_altered_after_signing_is_a_401(aws: None) -> None:
    upload = held_upload("x.png")
    body = json.dumps(completion(upload))
    assert post(body.replace("Neon city", "Neon town"), signed(body))[0] == 401


def test_a_body_that_is_not_utf8_is_a_401_not_a_500(aws: None) -> None:
    raw = b'{"s3_uri": "\xff\xfe"}'
    timestamp = datetime.now(UTC)
    signature = Webhook(SECRET).sign("msg_1", timestamp, raw.decode("latin-1"))
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
    assert post(raw, headers)[0] == 401


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"s3_uri": "s3://someone-elses-bucket/incoming/x/a.png"}, 400, "media bucket"),
        ({"s3_uri": "https://evil.example/a.png"}, 400, "URLs are not fetched"),
        ({"s3_uri": f"s3://{MEDIA}/thumbs/a.png"}, 400, "made by POST /uploads"),
        ({"s3_uri": None}, 400, "s3_uri is required"),
        ({"seed": -1}, 400, "seed"),
        ({"workflow_hash": "not a hash"}, 400, "workflow_hash"),
        ({"namespace": "Not Valid!"}, 400, "namespace"),
        ({"callback": "https://x"}, 400, "unknown field: callback"),
    ],
)
def test_what_is_not_an_upload_of_ours_is_refused(aws: None, change: dict[str, Any], status: int, words: str) -> None:
    upload = held_upload("x.png")
    body = json.dumps({k: v for k, v in {**completion(upload), **change}.items() if v is not None})
    answer = post(body, signed(body))
    assert answer[0] == status, answer
    assert words in answer[1]["message"]
    assert started() == {}


def test_an_object_that_is_not_in_the_bucket_is_a_404(aws: None) -> None:
    upload = held_upload("x.png")
    boto3.client("s3").delete_object(Bucket=MEDIA, Key=upload["files"][0]["key"])
    body = json.dumps(completion(upload))
    assert post(body, signed(body))[0] == 404
    assert run(upload["run_id"])["source"] == "upload"


def test_a_run_that_started_without_hold_is_a_409(aws: None) -> None:
    from support.stages import notify

    answer = call(
        "presign",
        "POST",
        "/uploads",
        {"files": [{"filename": "a.png", "content_type": "image/png", "size": len(PNG)}]},
        AUTH,
    )[1]
    put(answer["files"][0]["key"], PNG)
    notify(answer["files"][0]["key"])  # all its files arrived: it started
    body = json.dumps(completion(answer))
    status, error = post(body, signed(body))
    assert status == 409
    assert '"hold": true' in error["message"]
