"""Runs registered by outside generators (the Nexus shape): `POST /runs` with `source: external` renders
nothing; `POST /runs/{id}/assets` appends images (presigned uploads, or objects already under the run's prefix);
`POST /runs/{id}/complete` closes the run for one review of everything; appending afterwards is a 409."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from support.handlers import AUTH, call
from support.stages import MEDIA, arrive, started

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 40
NEXUS = {"source": "external", "title": "Ten foxes", "prompt": "a red fox", "params": {"count": 10, "cfg": 7.5}}


def register(**fields: Any) -> dict[str, Any]:
    status, answer = call("runs", "POST", "/runs", {**NEXUS, **fields}, AUTH)
    assert status == 201, answer
    return dict(answer)


def append(run_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return call("runs", "POST", f"/runs/{run_id}/assets", body, AUTH)


def files(*names: str) -> dict[str, Any]:
    return {"files": [{"filename": name, "content_type": "image/png", "size": 100} for name in names]}


def test_registering_keeps_the_metadata_and_renders_nothing(aws: None) -> None:
    answer = register(author="n8n", tags=["nexus"])
    run_id = answer["run_id"]
    assert (answer["status"], answer["source"], answer["files"]) == ("queued", "external", [])
    assert answer["links"]["assets"].endswith(f"/runs/{run_id}/assets")
    run = call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1]
    assert (run["title"], run["author"], run["tags"]) == ("Ten foxes", "n8n", ["nexus"])
    assert run["generation"] == {
        "prompt": "a red fox",
        "params": {"count": 10, "cfg": 7.5},
        "seed": None,
        "workflow_sha256": None,
    }
    assert "render" not in run
    assert started() == {}


def test_appended_images_are_reviewed_together_once_the_run_is_completed(aws: None) -> None:
    run_id = register()["run_id"]
    direct = f"incoming/{run_id}/direct.png"
    arrive(direct, PNG)  # the generator uploaded it itself, before appending it: it is the run's, not a run of its own
    status, answer = append(run_id, files("one.png", "two.png"))
    assert status == 201
    uploads = {u["filename"]: u for u in answer["uploads"]}
    assert set(uploads) == {"one.png", "two.png"}
    arrive(uploads["one.png"]["key"], PNG)
    arrive(uploads["two.png"]["key"], PNG)
    assert started() == {}  # an external run starts only when completed

    status, state = call("runs", "POST", f"/runs/{run_id}/complete", headers=AUTH)
    assert (status, state["status"]) == (202, "enriching")
    assert sorted(o["key"] for o in started()[run_id]["objects"]) == sorted(
        [direct, uploads["one.png"]["key"], uploads["two.png"]["key"]]
    )
    assert len(started()) == 1

    status, error = append(run_id, files("three.png"))
    assert (status, error["error"]) == (409, "Conflict")
    assert "enriching" in error["message"]


def test_an_object_already_uploaded_is_appended_by_its_key(aws: None) -> None:
    run_id = register()["run_id"]
    key = f"incoming/{run_id}/made-earlier.png"
    boto3.client("s3").put_object(Bucket=MEDIA, Key=key, Body=PNG, ContentType="image/png")  # no notification yet
    status, answer = append(run_id, {"keys": [key]})
    assert status == 201
    assert answer["files"] == [{"key": key, "filename": "made-earlier.png", "status": "arrived"}]


def test_a_key_that_is_not_yet_uploaded_is_missing_when_the_run_is_completed(aws: None) -> None:
    run_id = register()["run_id"]
    arrive(f"incoming/{run_id}/here.png", PNG)
    assert append(run_id, {"keys": [f"incoming/{run_id}/never.png"]})[0] == 201
    state = call("runs", "POST", f"/runs/{run_id}/complete", headers=AUTH)[1]
    assert {f["filename"]: f["status"] for f in state["files"]} == {"never.png": "missing", "here.png": "arrived"}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"keys": ["incoming/someone-else/x.png"]}, 400, "directly under incoming/"),
        ({"keys": ["thumbs/x.png"]}, 400, "directly under incoming/"),
        ({}, 400, "send files"),
        (
            {"files": [{"filename": "x.png", "content_type": "image/png", "size": 1}], "bucket": "b"},
            400,
            "unknown field",
        ),
    ],
)
def test_bad_appends_are_refused(aws: None, body: dict[str, Any], status: int, words: str) -> None:
    run_id = register()["run_id"]
    answer = append(run_id, body)
    assert answer[0] == status
    assert words in answer[1]["message"]


def test_an_append_retried_answers_again_and_another_file_of_the_same_name_is_a_409(aws: None) -> None:
    run_id = register()["run_id"]
    first = append(run_id, files("a.png"))
    again = append(run_id, files("a.png"))
    assert first[0] == again[0] == 201
    assert [u["key"] for u in again[1]["uploads"]] == [u["key"] for u in first[1]["uploads"]]
    other = {"files": [{"filename": "a.png", "content_type": "image/png", "size": 999}]}
    assert append(run_id, other)[0] == 409
    assert [f["filename"] for f in call("runs", "GET", f"/runs/{run_id}", headers=AUTH)[1]["files"]] == ["a.png"]


def test_more_files_than_a_run_holds_are_refused(aws: None) -> None:
    run_id = register()["run_id"]
    assert append(run_id, files(*(f"{i}.png" for i in range(6))))[0] == 201
    status, error = append(run_id, files("6.png", "7.png", "8.png"))
    assert status == 400
    assert "at most 8 files (6 already declared, 3 more sent)" in error["message"]


def test_only_external_runs_take_appended_assets(aws: None) -> None:
    upload = call("presign", "POST", "/uploads", {"filename": "a.png", "content_type": "image/png", "size": 1}, AUTH)
    status, error = append(upload[1]["run_id"], files("b.png"))
    assert (status, error["error"]) == (409, "Conflict")
    assert append("no-such-run", files("b.png"))[0] == 404


def test_a_run_holds_at_most_a_runs_worth_of_objects(aws: None) -> None:
    run_id = register()["run_id"]
    for index in range(9):  # MaxImagesPerRun is 8
        arrive(f"incoming/{run_id}/{index}.png", PNG)
    call("runs", "POST", f"/runs/{run_id}/complete", headers=AUTH)
    assert len(started()[run_id]["objects"]) == 8
    tags = boto3.client("s3").get_object_tagging(Bucket=MEDIA, Key=f"incoming/{run_id}/8.png")["TagSet"]
    assert tags == [{"Key": "rendergate-discard", "Value": "true"}]


def test_a_retried_registration_answers_the_same_run(aws: None) -> None:
    key = {"Idempotency-Key": "nexus-run-42", **AUTH}
    first = call("runs", "POST", "/runs", NEXUS, key)
    again = call("runs", "POST", "/runs", NEXUS, key)
    assert first[0] == again[0] == 201
    assert first[1]["run_id"] == again[1]["run_id"]
    assert call("runs", "POST", "/runs", {**NEXUS, "title": "Other"}, key)[0] == 409


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"prompt": "x" * 10_001}, "prompt must be a string of at most 10000 characters"),
        ({"params": ["not", "an", "object"]}, "params must be an object"),
        ({"workflow": "txt2img"}, "unknown field: workflow"),
    ],
)
def test_bad_registrations_are_refused(aws: None, fields: dict[str, Any], words: str) -> None:
    status, error = call("runs", "POST", "/runs", {**NEXUS, **fields}, AUTH)
    assert status == 400
    assert words in error["message"]


def test_only_objects_directly_under_the_runs_prefix_are_its_own(aws: None) -> None:
    run_id = register()["run_id"]
    for key in (f"incoming/{run_id}/mine.png", f"incoming/{run_id}/nested/other.png"):
        boto3.client("s3").put_object(Bucket=MEDIA, Key=key, Body=PNG, ContentType="image/png")  # not notified yet
    call("runs", "POST", f"/runs/{run_id}/complete", headers=AUTH)
    assert list(started()) == [run_id]
    assert [o["key"] for o in started()[run_id]["objects"]] == [f"incoming/{run_id}/mine.png"]
