"""The publish stage on moto: exactly the reviewed bytes reach the library, under the image's type, never
over another item's bytes; a changed object fails its asset with the reason; retries repeat nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from support.images import encoded, png
from support.stages import MEDIA, approve_all, enrich, new_run, put

LIBRARY = "library-bucket"
UNVERSIONED = "unversioned-media"  # storage that keeps no versions, as MinIO buckets often are


def library() -> dict[str, bytes]:
    s3 = boto3.client("s3")
    listing = s3.list_objects_v2(Bucket=LIBRARY).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=LIBRARY, Key=o["Key"])["Body"].read() for o in listing}


def reviewed(data: bytes, title: str | None = "Sunset", bucket: str = MEDIA, name: str = "x.png") -> str:
    """A run whose one upload was enriched and waits for its decision; the run id."""
    run_id = new_run(title, filename=name)
    enrich(run_id, [put(f"incoming/{run_id}/{name}", data, bucket)])
    return run_id


def only_asset(run_id: str) -> Any:
    from rendergate.tables import Asset

    [asset] = Asset.by_run.query(run_id)
    return asset


def audit_rows(run_id: str) -> list[Any]:
    from rendergate.tables import PublisherAudit

    return [row for row in PublisherAudit.scan() if row.correlation_id == run_id]


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    """Every event publish puts on the bus: (type, id, data)."""
    from rendergate import events

    seen: list[tuple[str, str, dict[str, Any]]] = []
    emit = events.emit

    def recording(event_type: str, subject: str, data: dict[str, Any], correlation_id: str, event_id: str) -> str:
        seen.append((event_type, event_id, data))
        return emit(event_type, subject, data, correlation_id, event_id)

    monkeypatch.setattr(events, "emit", recording)
    return seen


@pytest.fixture
def unversioned(aws: None) -> None:
    boto3.client("s3").create_bucket(Bucket=UNVERSIONED)


def test_the_reviewed_version_is_published_even_when_the_object_was_overwritten(aws: None) -> None:
    original = png(1)
    run_id = reviewed(original)
    put(f"incoming/{run_id}/x.png", png(2))  # after review: a reused presigned URL

    result = approve_all(run_id)

    assert result["status"] == "completed"
    [item] = result["published"]
    assert library() == {item["library_key"]: original}


def test_library_objects_carry_the_analysed_image_type_and_an_immutable_cache_header(aws: None) -> None:
    jpeg = encoded(png(3), "JPEG")
    run_id = new_run("Typed", filename="photo.jpg", content_type="image/jpeg")
    enrich(run_id, [put(f"incoming/{run_id}/photo.jpg", jpeg, content_type="binary/octet-stream")])

    [item] = approve_all(run_id)["published"]

    stored = boto3.client("s3").head_object(Bucket=LIBRARY, Key=item["library_key"])
    assert stored["ContentType"] == "image/jpeg"
    assert stored["CacheControl"] == "public, max-age=31536000, immutable"
    assert stored["Metadata"]["asset-id"] == item["asset_id"]


def test_without_versions_a_changed_object_fails_its_asset_and_nothing_is_published(
    unversioned: None, emitted: list[tuple[str, str, dict[str, Any]]]
) -> None:
    from rendergate.errors import ChangedAfterReview
    from rendergate.tables import Run

    run_id = reviewed(png(4), bucket=UNVERSIONED)
    put(f"incoming/{run_id}/x.png", png(5), UNVERSIONED)

    with pytest.raises(ChangedAfterReview, match="changed after review"):
        approve_all(run_id)

    asset = only_asset(run_id)
    assert (asset.status, asset.failure_code) == ("failed", "changed_after_review")
    assert "sha256" in asset.failure_reason
    assert library() == {}
    [audit] = audit_rows(run_id)
    assert audit.status == "failed" and "changed after review" in audit.failure_reason
    [failure] = [data for kind, _, data in emitted if kind == "content.publish.failed.v1"]
    assert (failure["asset_id"], failure["code"]) == (asset.asset_id, "changed_after_review")
    assert Run.get(run_id).publish_failures == [
        {"asset_id": asset.asset_id, "code": "changed_after_review", "reason": asset.failure_reason}
    ]
    tags = boto3.client("s3").get_object_tagging(Bucket=UNVERSIONED, Key=asset.key)["TagSet"]
    assert {"Key": "rendergate-discard", "Value": "true"} in tags


def test_a_reviewed_version_that_is_gone_fails_its_asset(aws: None) -> None:
    from rendergate.errors import ChangedAfterReview

    run_id = reviewed(png(6))
    asset = only_asset(run_id)
    boto3.client("s3").delete_object(Bucket=MEDIA, Key=asset.key, VersionId=asset.version_id)

    with pytest.raises(ChangedAfterReview, match="the reviewed bytes are gone"):
        approve_all(run_id)
    assert only_asset(run_id).failure_code == "changed_after_review"
    assert library() == {}


def test_a_run_completes_with_what_was_published_and_lists_what_was_not(unversioned: None) -> None:
    from rendergate.tables import Asset, Run

    run_id = new_run("Two of them")
    kept, changed = png(7), png(8)
    enrich(run_id, [put(f"renders/{run_id}/{n}.png", data, UNVERSIONED) for n, data in (("a", kept), ("b", changed))])
    put(f"renders/{run_id}/b.png", png(9), UNVERSIONED)

    result = approve_all(run_id)

    rows = {a.filename: a for a in Asset.by_run.query(run_id)}
    assert result["status"] == "completed"
    assert [item["asset_id"] for item in result["published"]] == [rows["a.png"].asset_id]
    assert library() == {"library/two-of-them/a.png": kept}
    run = Run.get(run_id)
    assert run.status == "completed"
    assert [(f["asset_id"], f["code"]) for f in run.publish_failures] == [
        (rows["b.png"].asset_id, "changed_after_review")
    ]
    assert rows["b.png"].status == "failed"


def test_two_items_with_the_same_title_and_file_name_both_keep_their_bytes(aws: None) -> None:
    first, second = png(10), png(11)
    first_run, second_run = reviewed(first, "Same"), reviewed(second, "Same")

    [one] = approve_all(first_run)["published"]
    [two] = approve_all(second_run)["published"]

    assert one["library_key"] == "library/same/x.png"
    assert two["library_key"] == f"library/same/x-{two['asset_id'][:8]}.png"
    assert library() == {one["library_key"]: first, two["library_key"]: second}


def test_the_full_asset_id_is_the_last_address_no_other_item_can_hold(aws: None) -> None:
    from rendergate.enrich import asset_id_for

    run_id = new_run("Crowded")
    asset_id = asset_id_for(run_id, f"incoming/{run_id}/x.png")
    for key in ("library/crowded/x.png", f"library/crowded/x-{asset_id[:8]}.png"):
        boto3.client("s3").put_object(Bucket=LIBRARY, Key=key, Body=b"theirs", Metadata={"asset-id": "another"})
    enrich(run_id, [put(f"incoming/{run_id}/x.png", png(12))])

    [item] = approve_all(run_id)["published"]

    assert item["library_key"] == f"library/crowded/x-{asset_id}.png"
    assert library()["library/crowded/x.png"] == b"theirs"


def test_a_retry_after_the_write_keeps_the_address_the_event_ids_and_one_audit_row(
    aws: None, monkeypatch: pytest.MonkeyPatch, emitted: list[tuple[str, str, dict[str, Any]]]
) -> None:
    from rendergate import publish
    from rendergate.errors import TransientError

    data, theirs = png(13), png(14)
    approve_all(reviewed(theirs, "Retried"))  # another item holds the first address
    run_id = reviewed(data, "Retried")
    emitted.clear()
    emit: Callable[..., str] = publish.events.emit

    def bus_down_once(event_type: str, *args: Any, **kwargs: Any) -> str:
        if event_type == "content.published.v1":
            monkeypatch.setattr(publish.events, "emit", emit)
            raise TransientError("EventBridge did not answer")
        return emit(event_type, *args, **kwargs)

    monkeypatch.setattr(publish.events, "emit", bus_down_once)
    with pytest.raises(TransientError):
        approve_all(run_id)  # written to the library, then the invocation died before recording it
    first_ids = [event_id for _, event_id, _ in emitted]
    again = approve_all(run_id)
    duplicate = approve_all(run_id)  # a duplicate invocation of the same decision

    [item] = again["published"]
    assert duplicate["published"] == [item]
    assert item["library_key"] == f"library/retried/x-{item['asset_id'][:8]}.png"
    assert library() == {"library/retried/x.png": theirs, item["library_key"]: data}
    assert {event_id for _, event_id, _ in emitted} == set(first_ids) | {item["published_event_id"]}
    [audit] = audit_rows(run_id)
    assert audit.status == "published" and audit.artifact_path.endswith(item["library_key"])
    assert hashlib.sha256(data).hexdigest() == audit.meta["sha256"]
