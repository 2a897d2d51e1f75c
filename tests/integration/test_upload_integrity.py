"""What a reviewer approved is exactly what gets published, on the local stack through real HTTP: uploads
that are overwritten after review, uploads unlike their declaration, two items at one address."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from support.devstack import DevStack
from support.images import png
from support.waiting import eventually


def send(presigned: dict[str, Any], data: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    """Upload `data` with a presigned answer, as a client would (or with other headers, as a careless one)."""
    if presigned["method"] == "PUT":
        return requests.put(presigned["url"], data=data, headers=headers or presigned["headers"], timeout=10)
    files = {"file": (presigned["key"].rsplit("/", 1)[-1], data, "image/png")}
    return requests.post(presigned["url"], data=presigned["fields"], files=files, timeout=10)


def approve(devstack: DevStack, run_id: str) -> dict[str, Any]:
    run = devstack.wait_for(run_id, "awaiting_review")
    assert run["status"] == "awaiting_review", run
    assert devstack.decide(run["review"]["url"], all="approve", reviewer="Rita").status_code == 200
    return devstack.wait_for(run_id, "completed")


def library_object(devstack: DevStack, item: dict[str, Any]) -> dict[str, Any]:
    return dict(devstack.aws("s3").get_object(Bucket=item["library_bucket"], Key=item["library_key"]))


def test_a_presigned_put_creates_the_object_once(devstack: DevStack) -> None:
    data = png(301)
    presigned = devstack.presign("once.png", len(data), method="PUT")
    assert presigned["headers"] == {"Content-Type": "image/png", "If-None-Match": "*"}
    assert send(presigned, data).status_code == 200
    again = send(presigned, png(302))
    assert again.status_code == 412
    assert "PreconditionFailed" in again.text


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_an_upload_overwritten_after_review_publishes_the_reviewed_bytes(devstack: DevStack, method: str) -> None:
    reviewed, later = png(303, (160, 120)), png(304, (320, 240))
    presigned = devstack.presign(f"{method.lower()}.png", len(reviewed), method=method, title=f"Overwritten {method}")
    assert send(presigned, reviewed).status_code in (200, 204)
    run_id = presigned["run_id"]
    devstack.wait_for(run_id, "awaiting_review")

    # S3 would refuse both (the PUT's signed If-None-Match is dropped; the POST breaks its size range);
    # the local stack checks no signatures and no POST policy, as a storage regression would not.
    overwrite = send(presigned, later, headers={"Content-Type": "image/png"})
    assert overwrite.status_code in (200, 204)
    devstack.ingest_idle()
    still = devstack.run(run_id)
    assert (still["status"], still["error"]) == ("awaiting_review", None)  # the first arrival decided
    assert requests.get(still["assets"][0]["original_url"], timeout=10).content == reviewed  # what is reviewed

    run = approve(devstack, run_id)

    assert run["status"] == "completed"
    [item] = run["published"]
    stored = library_object(devstack, item)
    assert stored["Body"].read() == reviewed
    assert stored["ContentType"] == "image/png"
    assert stored["CacheControl"] == "public, max-age=31536000, immutable"
    assert run["publish_failures"] == []


def test_an_approved_upload_whose_reviewed_bytes_are_gone_is_not_published(
    devstack: DevStack, awaiting_review: Any, bus_events: Any
) -> None:
    run = awaiting_review(title="Gone before publish")
    [asset] = run["assets"]
    s3, bucket = devstack.aws("s3"), devstack.state["media_bucket"]
    for version in s3.list_object_versions(Bucket=bucket, Prefix=asset["key"])["Versions"]:
        s3.delete_object(Bucket=bucket, Key=asset["key"], VersionId=version["VersionId"])
    assert devstack.decide(run["review"]["url"], all="approve", reviewer="Rita").status_code == 200

    failed = devstack.wait_for(run["run_id"], "failed")

    assert failed["status"] == "failed"
    assert failed["error"]["name"] == "ChangedAfterReview"
    assert "the reviewed bytes are gone" in failed["error"]["message"]
    [shown] = failed["assets"]
    assert shown["status"] == "failed"
    assert shown["failure"]["code"] == "changed_after_review"
    assert failed["publish_failures"] == [{"asset_id": asset["asset_id"], **shown["failure"]}]
    assert failed["published"] == []
    assert devstack.library_keys("library/gone-before-publish/") == []
    [audit] = devstack.audit_rows(run["run_id"])
    assert audit["status"] == "failed" and "gone" in audit["failure_reason"]

    def failure_event() -> dict[str, Any]:
        found = [
            e["detail"]["data"]
            for e in bus_events()
            if e["detail-type"] == "content.publish.failed.v1" and e["detail"]["correlationid"] == run["run_id"]
        ]
        assert found
        return found[0]

    assert eventually(failure_event)["code"] == "changed_after_review"


def test_two_items_with_the_same_title_and_file_name_are_both_published_whole(devstack: DevStack) -> None:
    pictures = [png(305, (200, 100)), png(306, (100, 200))]
    run_ids = [devstack.upload(data, "cover.png", title="Same cover") for data in pictures]

    runs = [approve(devstack, run_id) for run_id in run_ids]

    items = [run["published"][0] for run in runs]
    assert [item["library_key"] for item in items] == [
        "library/same-cover/cover.png",
        f"library/same-cover/cover-{items[1]['asset_id'][:8]}.png",
    ]
    for item, data in zip(items, pictures, strict=True):
        stored = library_object(devstack, item)
        assert stored["Body"].read() == data
        assert stored["Metadata"]["asset-id"] == item["asset_id"]


@pytest.mark.parametrize(
    ("method", "data", "headers", "difference"),
    [
        pytest.param("POST", png(307, (400, 300)), None, "more than the 64 declared", id="larger"),
        pytest.param(
            "PUT", png(308)[:64], {"Content-Type": "text/html", "If-None-Match": "*"}, "text/html", id="other-type"
        ),
    ],
)
def test_an_upload_unlike_its_declaration_is_refused_with_the_difference(
    devstack: DevStack, method: str, data: bytes, headers: dict[str, str] | None, difference: str
) -> None:
    presigned = devstack.presign("declared.png", 64, method=method)
    assert send(presigned, data, headers).status_code in (200, 204)

    run = devstack.wait_for(presigned["run_id"], "failed")

    assert run["status"] == "failed"
    assert run["error"]["name"] == "UploadRejected"
    assert difference in run["error"]["message"]
    assert run["assets"] == []
    assert presigned["run_id"] not in [e["name"] for e in devstack.executions()]
    tags = devstack.aws("s3").get_object_tagging(Bucket=devstack.state["media_bucket"], Key=presigned["key"])
    assert {"Key": "rendergate-discard", "Value": "true"} in tags["TagSet"]


@pytest.mark.parametrize("filename", ["photo.png.exe", "page.html", "vector.svg", "shell.php", ".htaccess"])
def test_upload_names_must_carry_the_declared_images_extension(devstack: DevStack, filename: str) -> None:
    body = {"filename": filename, "content_type": "image/png", "size": 100}
    answer = requests.post(f"{devstack.api_url}/uploads", json=body, headers=devstack.auth, timeout=10)
    assert answer.status_code == 400
    assert answer.json() == {"error": "BadRequest", "message": "filename must end in .png for image/png"}
