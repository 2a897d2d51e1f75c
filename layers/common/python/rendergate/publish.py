"""Publish: write exactly the reviewed bytes of approved assets into the library, never over another
item's, audit every approval, announce what was published, and tag the rest for discard. Every id and
address is derived from the run and the asset, so a retry repeats nothing."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pynamodb.exceptions import DoesNotExist

from rendergate import credits, events, formats, runs, storage
from rendergate.config import settings
from rendergate.errors import ChangedAfterReview, Conflict, NotFound, RendergateError
from rendergate.observability import logger
from rendergate.tables import Asset, PublisherAudit, Run, now_iso

EVENT_NAMESPACE = uuid.UUID("3c2d1e0f-4a5b-4c6d-8e7f-1a2b3c4d5e6f")
CACHE_CONTROL = storage.IMMUTABLE  # writes are conditional: an address never changes bytes


def publish_run(payload: dict[str, Any]) -> dict[str, Any]:
    """Publish the approved assets of a decided run. It ends completed when something was published (the
    approved ones that could not be are listed in `publish_failures`), rejected when nothing was approved,
    and raises ChangedAfterReview when assets were approved but none of them could be published. A paid run
    is then settled: its discarded images are refunded by the namespace's `discard_refund`."""
    run = runs.get(payload["run_id"])
    decision = payload["review"]
    if run.source == "entity":
        from rendergate.media.library import publish_entity

        return publish_entity(run, decision)
    approved = set(decision.get("approved", []))
    runs.advance(run, "publishing")
    assets = list(Asset.by_run.query(run.run_id))
    published, failures = [], []
    for asset in assets:
        if asset.asset_id not in approved:
            continue
        try:
            published.append(_publish(run, asset, decision))
        except ChangedAfterReview as change:
            failures.append({"asset_id": asset.asset_id, "code": change.code, "reason": str(change)})
    for asset in assets:
        if asset.asset_id not in approved and asset.status != "rejected":
            _discard(run, asset)
    if failures and not published:
        run.update(actions=[Run.publish_failures.set(failures), Run.updated_at.set(now_iso())])
        raise ChangedAfterReview("nothing approved could be published: " + "; ".join(f["reason"] for f in failures))
    status = "completed" if published else "rejected"
    runs.advance(runs.get(run.run_id), status, published=published, publish_failures=failures)
    credits.settle(run.run_id)  # what its discarded images give back, by the namespace's policy
    return {"status": status, "published": published, "publish_failures": failures}


def library_path(namespace: str, title: str | None, filename: str) -> str:
    """`{namespace}/{slug}/{filename}`, the slug taken from the title, or the file name without extension."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    return f"{namespace}/{slugify(title or stem)}/{filename}"


def library_paths(namespace: str, title: str | None, filename: str, asset_id: str) -> list[str]:
    """Where an asset may be published, in order of preference: `library_path`, then `{stem}-{first 8 of
    the asset id}.{ext}` beside it, then `{stem}-{asset id}.{ext}`, which no other asset can hold."""
    primary = library_path(namespace, title, filename)
    folder = primary.rsplit("/", 1)[0]
    stem, dot, extension = filename.rpartition(".")
    if not dot:
        stem = filename
    return [primary] + [f"{folder}/{stem}-{suffix}{dot}{extension}" for suffix in (asset_id[:8], asset_id)]


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:80] or "untitled"


def replay_approval(run: Run, asset: Asset, decision: dict[str, Any]) -> dict[str, Any]:
    """Publish one approved asset again with its recorded decision (an audit replay): the same ids, the same
    audit row. The reviewed bytes are checked again, so an object restored since a failure is published."""
    item = _publish(run, asset, decision, recheck=True)
    published = [entry for entry in run.published or [] if entry.get("asset_id") != asset.asset_id] + [item]
    failures = [entry for entry in run.publish_failures or [] if entry.get("asset_id") != asset.asset_id]
    run.update(
        actions=[Run.published.set(published), Run.publish_failures.set(failures), Run.updated_at.set(now_iso())]
    )
    return item


def _publish(run: Run, asset: Asset, decision: dict[str, Any], recheck: bool = False) -> dict[str, Any]:
    config = settings()
    approval_id = str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{asset.asset_id}/approved"))
    published_id = str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{asset.asset_id}/published"))
    artifact_uri = f"s3://{asset.bucket}/{asset.key}"
    reviewer, reviewed_at = decision.get("reviewer"), decision.get("reviewed_at")
    audit = audit_row(approval_id)
    audit.approval_event_ts = audit.approval_event_ts or reviewed_at
    audit.correlation_id = run.run_id
    audit.artifact_uri = artifact_uri
    audit.namespace = run.namespace
    audit.reviewer = reviewer
    audit.reviewed_at = reviewed_at
    earlier = audit.meta or {}
    audit.meta = {
        "run_id": run.run_id,
        "asset_id": asset.asset_id,
        "version_id": asset.version_id,
        "sha256": asset.sha256,
        "slug": library_path(run.namespace, run.title, asset.filename).split("/")[1],
        "title": run.title,
        "tags": list(run.tags or []),
        "notes": decision.get("notes"),
        "review_id": decision.get("review_id"),
        "failures": list(earlier.get("failures", [])),  # every earlier failure stays, with its stage
        "replays": list(earlier.get("replays", [])) + ([now_iso()] if recheck else []),
    }
    with _stage(audit, run, asset, "event"):
        _announce("content.publish.approved.v1", run, asset, approval_id, artifact_uri=artifact_uri, reviewer=reviewer)
    try:
        path = _write_to_library(run, asset, recheck)
    except ChangedAfterReview as change:
        _record_change(audit, run, asset, change)
        raise
    except Exception as error:
        _record_failure(audit, run, asset, stage="copy", error=error)
        raise
    public_url = f"{config.storage.library_public_base_url}/{path}" if config.storage.library_public_base_url else None
    audit.artifact_path = f"s3://{config.storage.library_bucket}/{path}"
    published_at = now_iso()
    item = {
        "asset_id": asset.asset_id,
        "library_bucket": config.storage.library_bucket,
        "library_key": path,
        "public_url": public_url,
        "published_event_id": published_id,
    }
    with _stage(audit, run, asset, "event"):
        announced = {"title": run.title, "tags": list(run.tags or []), "reviewer": reviewer, "sha256": asset.sha256}
        _announce("content.published.v1", run, asset, published_id, **item, **announced, publish_event_id=approval_id)
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
            Asset.failure_code.remove(),
            Asset.failure_reason.remove(),
            Asset.updated_at.set(now_iso()),
        ]
    )
    return item


def _write_to_library(run: Run, asset: Asset, recheck: bool = False) -> str:
    """Write the reviewed bytes at the first free address of `library_paths`; return that address.
    A taken address is this asset's own when its metadata names the asset (a retry or a duplicate call)."""
    if asset.status == "published" and asset.library_key:
        return str(asset.library_key)  # an earlier attempt got this far
    if asset.status == "failed" and not recheck:  # an earlier attempt found the object changed; that stands
        raise ChangedAfterReview(str(asset.failure_reason))
    body = _reviewed_bytes(asset)
    library = settings().storage.library_bucket
    content_type = formats.CONTENT_TYPES.get(str(asset.format), "application/octet-stream")
    metadata = {"run-id": run.run_id, "asset-id": asset.asset_id, "sha256": str(asset.sha256)}
    for path in library_paths(run.namespace, run.title, asset.filename, asset.asset_id):
        if storage.write_if_absent(library, path, body, content_type, metadata, CACHE_CONTROL):
            return path
        if _owner(library, path) == asset.asset_id:
            return path
    raise Conflict(f"every library address for {asset.filename} holds another asset")


def _reviewed_bytes(asset: Asset) -> bytes:
    """The bytes enrich analysed: the version it recorded (else the current object), and only when their
    sha256 is the one it recorded."""
    try:
        stored = storage.read_object(asset.bucket, asset.key, asset.version_id)
    except NotFound as missing:
        raise ChangedAfterReview(f"the reviewed bytes are gone: {missing}") from missing
    sha256 = hashlib.sha256(stored.body).hexdigest()
    if sha256 != asset.sha256:
        raise ChangedAfterReview(
            f"s3://{asset.bucket}/{asset.key} changed after review: its sha256 is {sha256}, "
            f"the reviewed bytes' was {asset.sha256}"
        )
    return stored.body


def _owner(bucket: str, key: str) -> str | None:
    """The asset id a library object was published for."""
    try:
        return storage.describe(bucket, key).metadata.get("asset-id")
    except NotFound:
        return None


def _record_change(audit: PublisherAudit, run: Run, asset: Asset, change: ChangedAfterReview) -> None:
    """An approved asset whose object changed: fail it with the reason, publish nothing, discard the object."""
    _record_failure(audit, run, asset, stage="validation", error=change)
    storage.discard(asset.bucket, asset.key)
    asset.update(
        actions=[
            Asset.status.set("failed"),
            Asset.failure_code.set(change.code),
            Asset.failure_reason.set(str(change)),
            Asset.updated_at.set(now_iso()),
        ]
    )


def audit_row(publish_event_id: str) -> PublisherAudit:
    """The existing row for this approval (a replay keeps its first timestamps), or a new one."""
    try:
        return PublisherAudit.get(publish_event_id)
    except DoesNotExist:
        return PublisherAudit(publish_event_id, status="pending", processed_at=now_iso())


@contextmanager
def _stage(audit: PublisherAudit, run: Run, asset: Asset, stage: str) -> Iterator[None]:
    """Record a failure of this stage on the audit row (and announce it) before it propagates."""
    try:
        yield
    except Exception as error:
        _record_failure(audit, run, asset, stage=stage, error=error)
        raise


def _record_failure(audit: PublisherAudit, run: Run, asset: Asset, stage: str, error: Exception) -> None:
    """The audit row becomes `failed` with the reason and `meta.stage` (validation, copy or event), as the
    replay playbook expects; `content.publish.failed.v1` says the same on the bus."""
    code = getattr(error, "code", None)
    meta = dict(audit.meta or {})
    replays = len(meta.get("replays", []))
    failed_event_id = str(
        uuid.uuid5(
            EVENT_NAMESPACE, f"{run.run_id}/{asset.asset_id}/failed/{stage}" + (f"/{replays}" if replays else "")
        )
    )
    failure = {"at": now_iso(), "stage": stage, "code": code, "reason": str(error)[:500], "event_id": failed_event_id}
    meta.update(stage=stage, failure_code=code, failed_event_id=failed_event_id)
    meta["failures"] = [*meta.get("failures", []), failure][-20:]
    audit.status = "failed"
    audit.failure_reason = f"{stage}: {error}"
    audit.meta = meta
    audit.updated_at = now_iso()
    audit.save()
    failed = {"stage": stage, "code": code, "reason": str(error), "publish_event_id": audit.publish_event_id}
    _announce("content.publish.failed.v1", run, asset, failed_event_id, **failed)
    logger.error(
        "publish failed",
        extra={"asset_id": asset.asset_id, "stage": stage, "transient": not isinstance(error, RendergateError)},
    )


def _discard(run: Run, asset: Asset) -> None:
    storage.discard(asset.bucket, asset.key)
    asset.update(actions=[Asset.status.set("discarded"), Asset.updated_at.set(now_iso())])
    discarded_id = str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{asset.asset_id}/discarded"))
    _announce("content.discarded.v1", run, asset, discarded_id, key=asset.key)


def _announce(event_type: str, run: Run, asset: Asset, event_id: str, **data: Any) -> None:
    """Put one of publish's events on the bus: about this asset of this run, in the run's namespace."""
    about = {"run_id": run.run_id, "asset_id": asset.asset_id, "namespace": run.namespace}
    events.emit(
        event_type, subject=asset.asset_id, data={**about, **data}, correlation_id=run.run_id, event_id=event_id
    )
