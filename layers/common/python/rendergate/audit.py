"""The publisher's audit trail, as an operator reads and repairs it: the rows (one per approval, keyed by
the `content.publish.approved.v1` event id) with where their notifications went, a listing of what failed
to replay, and the replay itself, which re-runs publish with the same approval payload and upserts the same
row. A row that is already published is left alone."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist

from rendergate import listing, notify, publish, runs
from rendergate.errors import BadRequest, NotFound, ReplayFailed
from rendergate.names import EVENT_ID, NAMESPACE
from rendergate.tables import Asset, PublisherAudit

STATUSES = ("published", "failed")
CURSOR_PURPOSE = "audit-cursor"
COLUMNS = (
    "publish_event_id",
    "approval_event_ts",
    "correlation_id",
    "artifact_uri",
    "artifact_path",
    "namespace",
    "reviewer",
    "reviewed_at",
    "status",
    "failure_reason",
    "published_event_id",
    "published_at",
    "public_url",
    "processed_at",
    "updated_at",
    "meta",
)


def list_rows(status: str | None, namespace: str | None, limit: str, cursor: str | None) -> dict[str, Any]:
    """`GET /audit?status=failed&namespace=`: rows of one status, most recently updated first."""
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)} (e.g. ?status=failed)")
    if namespace is not None and not NAMESPACE.match(namespace):
        raise BadRequest("namespace must be 1-63 characters of a-z, 0-9, '.', '_' or '-'")
    in_namespace = (PublisherAudit.namespace == namespace) if namespace else None
    found, next_cursor = listing.page(
        PublisherAudit.by_status,
        status,
        CURSOR_PURPOSE,
        f"{status}|{namespace}",
        limit,
        cursor,
        scan_index_forward=False,
        filter_condition=in_namespace,
    )
    return {"rows": [view(row) for row in found], "next_cursor": next_cursor}


def get(publish_event_id: str) -> dict[str, Any]:
    """`GET /audit/{publish_event_id}`: one row with its deliveries."""
    return view(_row(publish_event_id))


def replay(publish_event_id: str) -> dict[str, Any]:
    """`POST /audit/{publish_event_id}/replay`: publish this approval again. Published already: nothing
    changes and the answer says so. Failing again: ReplayFailed, with the row updated to say where."""
    row = _row(publish_event_id)
    if row.status == "published":
        return {
            "replayed": False,
            "message": f"already published at {row.published_at}; nothing was changed",
            "audit": view(row),
        }
    meta = row.meta or {}
    run = runs.get(str(meta.get("run_id") or row.correlation_id))
    try:
        asset = Asset.get(str(meta.get("asset_id")))
    except DoesNotExist as missing:
        raise NotFound(f"the asset of approval {publish_event_id} no longer exists") from missing
    decision = {key: meta.get(key) for key in ("notes", "review_id")}
    decision |= {"reviewer": row.reviewer, "reviewed_at": row.reviewed_at}
    try:
        item = publish.replay_approval(run, asset, decision)
    except Exception as error:
        again = _row(publish_event_id)
        raise ReplayFailed(f"publish failed again: {again.failure_reason or error}") from error
    return {"replayed": True, "published": item, "audit": view(_row(publish_event_id))}


def view(row: PublisherAudit) -> dict[str, Any]:
    """A row with every column, the deliveries of its events and links to them."""
    answer = {column: getattr(row, column) for column in COLUMNS}
    meta = row.meta or {}
    failed = [failure.get("event_id") for failure in meta.get("failures", []) if isinstance(failure, dict)]
    event_ids = [row.publish_event_id, row.published_event_id, *failed]
    answer["deliveries"] = notify.of_events(*[event_id for event_id in event_ids if event_id])
    answer["links"] = {
        "self": f"/audit/{row.publish_event_id}",
        "replay": f"/audit/{row.publish_event_id}/replay",
        "deliveries": [f"/deliveries?event_id={event_id}" for event_id in event_ids if event_id],
    }
    return answer


def _row(publish_event_id: str) -> PublisherAudit:
    if not EVENT_ID.match(publish_event_id):
        raise BadRequest("publish_event_id must be an event id (letters, digits, '_', '.', ':', '-')")
    try:
        return PublisherAudit.get(publish_event_id)
    except DoesNotExist as error:
        raise NotFound(f"no audit row for approval {publish_event_id}") from error
