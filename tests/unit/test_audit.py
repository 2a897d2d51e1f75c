"""The publisher audit as the replay playbook uses it: a failed publish leaves its row `failed` with the
reason and `meta.stage`; `GET /audit?status=failed&namespace=` lists what to replay; `POST
/audit/{id}/replay` re-runs publish with the same approval and upserts the same row (first timestamps
kept, `updated_at` moved); a published row is left alone; the row shows where its notifications went."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from support.deliveries import SECRET, bus_message, handle
from support.faults import failing
from support.handlers import AUTH, call
from support.images import png
from support.receivers import WebhookReceiver
from support.stages import approve_all, enrich, new_run, put

LIBRARY = "library-bucket"
UNVERSIONED = "unversioned-media"


def reviewed(data: bytes, namespace: str = "library", bucket: str = "media-bucket", title: str = "Sunset") -> str:
    run_id = new_run(title, namespace=namespace)
    enrich(run_id, [put(f"incoming/{run_id}/x.png", data, bucket)])
    return run_id


def row_of(run_id: str) -> dict[str, Any]:
    from rendergate.tables import PublisherAudit

    [row] = [r for r in PublisherAudit.scan() if r.correlation_id == run_id]
    status, answer = call("audit", "GET", f"/audit/{row.publish_event_id}", headers=AUTH)
    assert status == 200, answer
    return dict(answer)


def replay(publish_event_id: str) -> tuple[int, Any]:
    return call("audit", "POST", f"/audit/{publish_event_id}/replay", headers=AUTH)


def copy_fails(run_id: str) -> None:
    """Publish the run while the library refuses the write (AccessDenied), as the state machine would."""
    from rendergate import storage

    with (
        failing(storage._s3(), "PutObject", (403, "AccessDenied", "Access Denied")),
        pytest.raises(Exception, match="AccessDenied"),
    ):
        approve_all(run_id)


def test_a_publish_that_cannot_copy_leaves_a_failed_row_with_its_stage(aws: None) -> None:
    run_id = reviewed(png(1))

    copy_fails(run_id)

    row = row_of(run_id)
    assert row["status"] == "failed"
    assert row["failure_reason"].startswith("copy: ") and "AccessDenied" in row["failure_reason"]
    assert row["meta"]["stage"] == "copy"
    assert [f["stage"] for f in row["meta"]["failures"]] == ["copy"]
    assert row["artifact_uri"].endswith(f"incoming/{run_id}/x.png") and row["processed_at"]


def test_a_bus_that_refuses_the_announcement_is_the_event_stage(aws: None) -> None:
    from rendergate import events

    run_id = reviewed(png(2))
    with (
        failing(events._events(), "PutEvents", (400, "AccessDeniedException", "not allowed")),
        pytest.raises(Exception, match="not allowed"),
    ):
        approve_all(run_id)

    row = row_of(run_id)
    assert (row["status"], row["meta"]["stage"]) == ("failed", "event")
    assert row["failure_reason"].startswith("event: ")


def test_bytes_that_changed_after_review_are_the_validation_stage(aws: None) -> None:
    boto3.client("s3").create_bucket(Bucket=UNVERSIONED)
    run_id = reviewed(png(4), bucket=UNVERSIONED)
    put(f"incoming/{run_id}/x.png", png(5), UNVERSIONED)

    with pytest.raises(Exception, match="changed after review"):
        approve_all(run_id)

    row = row_of(run_id)
    assert (row["status"], row["meta"]["stage"], row["meta"]["failure_code"]) == (
        "failed",
        "validation",
        "changed_after_review",
    )


def test_a_replay_publishes_the_failed_approval_into_the_same_row(aws: None) -> None:
    from rendergate.tables import Run

    data = png(6)
    run_id = reviewed(data)
    copy_fails(run_id)
    before = row_of(run_id)

    status, answer = replay(before["publish_event_id"])

    assert status == 200 and answer["replayed"] is True
    after = row_of(run_id)
    assert after["publish_event_id"] == before["publish_event_id"]
    assert (after["status"], after["failure_reason"]) == ("published", None)
    assert after["published_event_id"] and after["published_at"]
    for kept in ("processed_at", "approval_event_ts", "reviewer", "reviewed_at"):
        assert after[kept] == before[kept], kept
    assert after["updated_at"] > before["updated_at"]
    assert [f["stage"] for f in after["meta"]["failures"]] == ["copy"] and len(after["meta"]["replays"]) == 1
    item = answer["published"]
    stored = boto3.client("s3").get_object(Bucket=LIBRARY, Key=item["library_key"])["Body"].read()
    assert stored == data
    assert Run.get(run_id).published == [item]


def test_replaying_a_published_row_changes_nothing_and_says_so(aws: None) -> None:
    run_id = reviewed(png(7))
    approve_all(run_id)
    before = row_of(run_id)

    status, answer = replay(before["publish_event_id"])

    assert (status, answer["replayed"]) == (200, False)
    assert answer["message"].startswith("already published at ") and "nothing was changed" in answer["message"]
    assert row_of(run_id) == before


def test_a_replay_checks_the_reviewed_bytes_again_so_restored_bytes_are_published(aws: None) -> None:
    from rendergate.tables import Asset

    boto3.client("s3").create_bucket(Bucket=UNVERSIONED)
    original = png(8)
    run_id = reviewed(original, bucket=UNVERSIONED)
    put(f"incoming/{run_id}/x.png", png(9), UNVERSIONED)
    with pytest.raises(Exception, match="changed after review"):
        approve_all(run_id)
    event_id = row_of(run_id)["publish_event_id"]

    status, answer = replay(event_id)  # still changed: it fails again, and the row says so
    assert status == 409 and answer["error"] == "ReplayFailed" and "validation" in answer["message"]
    assert [f["stage"] for f in row_of(run_id)["meta"]["failures"]] == ["validation", "validation"]

    put(f"incoming/{run_id}/x.png", original, UNVERSIONED)  # the uploader restores what was reviewed
    status, answer = replay(event_id)

    assert (status, row_of(run_id)["status"]) == (200, "published")
    [asset] = Asset.by_run.query(run_id)
    assert (asset.status, asset.failure_code) == ("published", None)


def test_failed_rows_are_listed_by_namespace_for_replay(aws: None) -> None:
    alice, bob, fine = reviewed(png(10), "alice"), reviewed(png(11), "bob"), reviewed(png(12), "alice")
    copy_fails(alice)
    copy_fails(bob)
    approve_all(fine)

    def listed(**query: str) -> list[str]:
        status, answer = call("audit", "GET", "/audit", headers=AUTH, query=query)
        assert status == 200, answer
        return [row["correlation_id"] for row in answer["rows"]]

    assert listed(status="failed", namespace="alice") == [alice]
    assert listed(status="failed") == [bob, alice]  # most recently updated first
    assert listed(status="published", namespace="alice") == [fine]
    _, first = call("audit", "GET", "/audit", headers=AUTH, query={"status": "failed", "limit": "1"})
    _, second = call(
        "audit", "GET", "/audit", headers=AUTH, query={"status": "failed", "limit": "1", "cursor": first["next_cursor"]}
    )
    assert [r["correlation_id"] for r in first["rows"] + second["rows"]] == [bob, alice]


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/audit", {}, 400),
        ("/audit", {"status": "lost"}, 400),
        ("/audit", {"status": "failed", "namespace": "Not Ours"}, 400),
        ("/audit/no-such-approval", {}, 404),
        ("/audit/has spaces", {}, 400),
    ],
)
def test_wrong_requests_are_4xx(aws: None, path: str, query: dict[str, str], status: int) -> None:
    assert call("audit", "GET", path, headers=AUTH, query=query)[0] == status


def test_a_row_shows_where_its_notifications_went(aws: None, settings: Callable[..., None]) -> None:
    from rendergate import events

    run_id = reviewed(png(13))
    [item] = approve_all(run_id)["published"]
    with WebhookReceiver(SECRET) as hook:
        settings(TARGETS=json.dumps([hook.target("n8n")]))  # type: ignore[attr-defined]
        announced = events.envelope(
            "content.published.v1", item["asset_id"], {"namespace": "library"}, run_id, item["published_event_id"]
        )
        handle(bus_message(announced))

    row = row_of(run_id)

    assert [(d["target"], d["event_type"], d["state"]) for d in row["deliveries"]] == [
        ("n8n", "content.published.v1", "delivered")
    ]
    assert f"/deliveries?event_id={item['published_event_id']}" in row["links"]["deliveries"]
