"""Batch uploads: `POST /uploads` with `files` answers one run and a target per file; the run starts once, with
every file, when the last one arrives, or with what arrived when the client completes it (the rest listed as
missing) or when its time is up."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from support.handlers import AUTH, call
from support.stages import MEDIA, arrive, notify, started

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 40


def batch(*names: str, **fields: Any) -> dict[str, Any]:
    files = [{"filename": name, "content_type": "image/png", "size": 100} for name in names]
    status, answer = call("presign", "POST", "/uploads", {"files": files, **fields}, AUTH)
    assert status == 201, answer
    return dict(answer)


def run(run_id: str) -> dict[str, Any]:
    status, answer = call("runs", "GET", f"/runs/{run_id}", headers=AUTH)
    assert status == 200, answer
    return dict(answer)


def complete(run_id: str) -> tuple[int, dict[str, Any]]:
    return call("runs", "POST", f"/runs/{run_id}/complete", headers=AUTH)


def test_a_batch_is_one_run_with_a_presigned_target_per_file(aws: None) -> None:
    answer = batch("one.png", "two.png")
    run_id = answer["run_id"]
    assert [f["key"] for f in answer["files"]] == [f"incoming/{run_id}/one.png", f"incoming/{run_id}/two.png"]
    for target in answer["files"]:
        policy = json.loads(base64.b64decode(target["fields"]["policy"]))
        assert {"key": target["key"]} in policy["conditions"]
        assert ["content-length-range", 1, 100] in policy["conditions"]
        assert target["s3_uri"] == f"s3://{MEDIA}/{target['key']}"
        assert target["get_url"].split("?")[0].endswith(target["key"].replace(" ", "%20"))
    assert answer["links"]["complete"].endswith(f"/runs/{run_id}/complete")
    assert [f["status"] for f in run(run_id)["files"]] == ["pending", "pending"]


def test_the_run_starts_once_with_every_file_when_the_last_one_arrives(aws: None) -> None:
    answer = batch("one.png", "two.png", "three.png")
    run_id, keys = answer["run_id"], [f["key"] for f in answer["files"]]
    arrive(keys[2], PNG)
    arrive(keys[0], PNG)
    assert started() == {}
    assert run(run_id)["status"] == "queued"

    arrive(keys[1], PNG)
    notify(keys[1])  # a redelivery
    execution = started()[run_id]
    versions = {k: boto3.client("s3").head_object(Bucket=MEDIA, Key=k)["VersionId"] for k in keys}
    assert execution["objects"] == [{"bucket": MEDIA, "key": k, "version_id": versions[k]} for k in keys]
    assert run(run_id)["status"] == "enriching"
    assert [f["status"] for f in run(run_id)["files"]] == ["arrived", "arrived", "arrived"]


def test_completing_starts_with_what_arrived_and_lists_the_missing_file(aws: None) -> None:
    answer = batch("here.png", "lost.png", "late.png")
    run_id, (here, _, late) = answer["run_id"], [f["key"] for f in answer["files"]]
    arrive(here, PNG)
    boto3.client("s3").put_object(Bucket=MEDIA, Key=late, Body=PNG, ContentType="image/png")  # not notified yet

    status, state = complete(run_id)
    assert status == 202
    assert state["status"] == "enriching"
    assert {f["filename"]: f["status"] for f in state["files"]} == {
        "here.png": "arrived",
        "lost.png": "missing",
        "late.png": "arrived",
    }
    assert [o["key"] for o in started()[run_id]["objects"]] == [here, late]

    assert complete(run_id) == (202, state)  # a retried completion changes nothing
    assert len(started()) == 1


def test_a_file_that_comes_after_its_run_started_is_discarded_and_stays_missing(aws: None) -> None:
    answer = batch("first.png", "second.png")
    run_id, (first, second) = answer["run_id"], [f["key"] for f in answer["files"]]
    arrive(first, PNG)
    assert complete(run_id)[0] == 202
    arrive(second, PNG)

    assert [o["key"] for o in started()[run_id]["objects"]] == [first]
    assert {f["filename"]: f["status"] for f in run(run_id)["files"]} == {
        "first.png": "arrived",
        "second.png": "missing",
    }
    tags = boto3.client("s3").get_object_tagging(Bucket=MEDIA, Key=second)["TagSet"]
    assert tags == [{"Key": "rendergate-discard", "Value": "true"}]


def test_a_held_batch_waits_for_its_completion_though_every_file_arrived(aws: None) -> None:
    answer = batch("a.png", hold=True)
    arrive(answer["files"][0]["key"], PNG)
    assert started() == {}
    assert complete(answer["run_id"])[0] == 202
    assert list(started()) == [answer["run_id"]]


def test_a_file_unlike_its_declaration_is_refused_alone(aws: None) -> None:
    answer = batch("good.png", "bad.png")
    run_id, (good, bad) = answer["run_id"], [f["key"] for f in answer["files"]]
    arrive(bad, b"x" * 500)  # larger than the 100 bytes declared
    arrive(good, PNG)

    assert [o["key"] for o in started()[run_id]["objects"]] == [good]
    files = {f["filename"]: f for f in run(run_id)["files"]}
    assert files["bad.png"]["status"] == "rejected"
    assert files["bad.png"]["reason"] == "the upload is 500 bytes, more than the 100 declared"
    assert boto3.client("s3").get_object_tagging(Bucket=MEDIA, Key=bad)["TagSet"] == [
        {"Key": "rendergate-discard", "Value": "true"}
    ]


def test_a_batch_whose_every_file_is_refused_fails_with_each_reason(aws: None) -> None:
    answer = batch("a.png", "b.png")
    for target in answer["files"]:
        arrive(target["key"], PNG, content_type="text/html")
    failed = run(answer["run_id"])
    assert (failed["status"], failed["error"]["name"]) == ("failed", "UploadRejected")
    assert failed["error"]["message"] == (
        "a.png: the upload was stored as Content-Type text/html, not the declared image/png; "
        "b.png: the upload was stored as Content-Type text/html, not the declared image/png"
    )
    assert started() == {}


def test_completing_before_anything_arrived_is_a_409_and_leaves_the_run_open(aws: None) -> None:
    answer = batch("a.png")
    status, error = complete(answer["run_id"])
    assert (status, error["error"]) == (409, "Conflict")
    assert "nothing has arrived" in error["message"]
    assert run(answer["run_id"])["status"] == "queued"


def test_completing_a_cancelled_run_or_a_render_run_is_a_409(aws: None) -> None:
    from rendergate.tables import Run

    answer = batch("a.png")
    assert call("runs", "POST", f"/runs/{answer['run_id']}/cancel", headers=AUTH)[0] == 200
    assert complete(answer["run_id"])[0] == 409
    Run("render-run", status="queued", source="render", namespace="library").save()
    assert complete("render-run")[0] == 409
    assert complete("no-such-run")[0] == 404


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ([], "non-empty list"),
        ("a.png", "non-empty list"),
        ([{"filename": "a.png", "content_type": "image/png", "size": 1}] * 2, "files[1]: a.png is sent twice"),
        ([{"filename": f"{i}.png", "content_type": "image/png", "size": 1} for i in range(9)], "at most 8 files"),
        ([{"filename": "a.png", "content_type": "image/gif", "size": 1}], "files[0]: content_type"),
        ([{"filename": "../a.png", "content_type": "image/png", "size": 1}], "files[0]: filename must not"),
        ([{"filename": "a.png", "content_type": "image/png", "size": 1, "key": "x"}], "files[0]: unknown field: key"),
        (["a.png"], "files[0]: each file must be an object"),
    ],
)
def test_a_bad_batch_is_refused_naming_the_file(aws: None, files: Any, words: str) -> None:
    status, error = call("presign", "POST", "/uploads", {"files": files}, AUTH)
    assert status in (400, 413, 415)
    assert words in error["message"]


def test_one_file_and_a_batch_cannot_be_mixed(aws: None) -> None:
    body = {"filename": "a.png", "content_type": "image/png", "size": 1, "files": []}
    status, error = call("presign", "POST", "/uploads", body, AUTH)
    assert status == 400
    assert "either filename" in error["message"]
