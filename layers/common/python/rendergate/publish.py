"""Publish: copy approved assets into the library, audit every approval, announce what was published,
and tag the rejected ones for discard. Every id is derived from the run, so a retry repeats nothing."""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any

from pynamodb.exceptions import DoesNotExist

from rendergate import events, runs, storage
from rendergate.config import settings
from rendergate.errors import RendergateError
from rendergate.observability import logger
from rendergate.tables import Asset, PublisherAudit, Run, now_iso

EVENT_NAMESPACE = uuid.UUID("3c2d1e0f-4a5b-4c6d-8e7f-1a2b3c4d5e6f")
DISCARD_TAG = "rendergate-discard"


def publish_run(payload: dict[str, Any]) -> dict[str, Any]:
    """Publish the approved assets of a decided run; the run ends completed, or rejected if none was."""
    run = runs.get(payload["run_id"])
    decision = payload["review"]
    approved = set(decision.get("approved", []))
    runs.advance(run, "publishing")
    assets = list(Asset.by_run.query(run.run_id))
    published = [_publish(run, asset, decision) for asset in assets if asset.asset_id in approved]
    for asset in assets:
        if asset.asset_id not in approved and asset.status != "rejected":
            _discard(run, asset)
    status = "completed" if published else "rejected"
    runs.advance(runs.get(run.run_id), status, published=published)
    return {"status": status, "published": published}


def library_path(namespace: str, title: str | None, filename: str) -> str:
    """`{namespace}/{slug}/{filename}`, the slug taken from the title, or the file name without extension."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    return f"{namespace}/{slugify(title or stem)}/{filename}"


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:80] or "untitled"


def _publish(run: Run, asset: Asset, decision: dict[str, Any]) -> dict[str, Any]:
    config = settings()
    approval_id = str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{asset.asset_id}/approved"))
    published_id = str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{asset.asset_id}/published"))
    path = library_path(run.namespace, run.title, asset.filename)
    artifact_uri = f"s3://{asset.bucket}/{asset.key}"
    public_url = f"{config.library_public_base_url}/{path}" if config.library_public_base_url else None
    reviewer, reviewed_at = decision.get("reviewer"), decision.get("reviewed_at")
    audit = _audit_row(approval_id)
    audit.approval_event_ts = audit.approval_event_ts or reviewed_at
    audit.correlation_id = run.run_id
    audit.artifact_uri = artifact_uri
    audit.artifact_path = f"s3://{config.library_bucket}/{path}"
    audit.namespace = run.namespace
    audit.reviewer = reviewer
    audit.reviewed_at = reviewed_at
    audit.meta = {
        "run_id": run.run_id,
        "asset_id": asset.asset_id,
        "slug": path.split("/")[1],
        "title": run.title,
        "tags": list(run.tags or []),
        "notes": decision.get("notes"),
        "review_id": decision.get("review_id"),
    }
    events.emit(
        "content.publish.approved.v1",
        subject=asset.asset_id,
        data={"run_id": run.run_id, "asset_id": asset.asset_id, "artifact_uri": artifact_uri, "reviewer": reviewer},
        correlation_id=run.run_id,
        event_id=approval_id,
    )
    try:
        storage.copy(
            asset.bucket,
            asset.key,
            config.library_bucket,
            path,
            metadata={"run-id": run.run_id, "asset-id": asset.asset_id, "sha256": asset.sha256 or ""},
        )
    except Exception as error:
        _record_failure(audit, run, asset, stage="copy", error=error)
        raise
    published_at = now_iso()
    item = {
        "asset_id": asset.asset_id,
        "library_bucket": config.library_bucket,
        "library_key": path,
        "public_url": public_url,
        "published_event_id": published_id,
    }
    events.emit(
        "content.published.v1",
        subject=asset.asset_id,
        data={**item, "run_id": run.run_id, "namespace": run.namespace, "title": run.title, "sha256": asset.sha256},
        correlation_id=run.run_id,
        event_id=published_id,
    )
    audit.status = "published"
    audit.failure_reason = None
    audit.published_event_id = published_id
    audit.published_at = audit.published_at or published_at
    audit.public_url = public_url
    audit.updated_at = now_iso()
    audit.save()
    asset.update(
        actions=[
            Asset.status.set("published"),
            Asset.library_key.set(path),
            Asset.public_url.set(public_url) if public_url else Asset.public_url.remove(),
            Asset.updated_at.set(now_iso()),
        ]
    )
    return item


def _audit_row(publish_event_id: str) -> PublisherAudit:
    """The existing row for this approval (a replay keeps its first timestamps), or a new one."""
    try:
        return PublisherAudit.get(publish_event_id)
    except DoesNotExist:
        return PublisherAudit(publish_event_id, status="pending", processed_at=now_iso())


def _record_failure(audit: PublisherAudit, run: Run, asset: Asset, stage: str, error: Exception) -> None:
    audit.status = "failed"
    audit.failure_reason = f"{stage}: {error}"
    audit.meta = {**(audit.meta or {}), "failed_stage": stage}
    audit.updated_at = now_iso()
    audit.save()
    events.emit(
        "content.publish.failed.v1",
        subject=asset.asset_id,
        data={"run_id": run.run_id, "asset_id": asset.asset_id, "stage": stage, "reason": str(error)},
        correlation_id=run.run_id,
        event_id=str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{asset.asset_id}/failed/{stage}")),
    )
    logger.error(
        "publish failed",
        extra={"asset_id": asset.asset_id, "stage": stage, "transient": not isinstance(error, RendergateError)},
    )


def _discard(run: Run, asset: Asset) -> None:
    storage.tag(asset.bucket, asset.key, {DISCARD_TAG: "true"})
    asset.update(actions=[Asset.status.set("discarded"), Asset.updated_at.set(now_iso())])
    events.emit(
        "content.discarded.v1",
        subject=asset.asset_id,
        data={"run_id": run.run_id, "asset_id": asset.asset_id, "key": asset.key},
        correlation_id=run.run_id,
        event_id=str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{asset.asset_id}/discarded")),
    )
