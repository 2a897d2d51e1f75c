"""The sweep: nothing is left hanging. Upload and external runs whose time is up start with what arrived
(or expire when nothing did); objects under incoming/ whose notification was lost are ingested; decisions
recorded but not yet taken by the state machine are sent again while their run still waits for review
(candidate runs come from the Runs table's `by_status` index); deliveries whose next attempt is overdue
(its queue message was lost) get a new message; paid runs that ended without being settled are settled."""

from __future__ import annotations

import time
from collections.abc import Callable

from rendergate import credits, ingest, notify, review, runs, storage
from rendergate.config import settings
from rendergate.errors import NotFound, UploadNotReceived
from rendergate.observability import logger
from rendergate.tables import Run, now_iso

MARGIN_MS = 5_000  # stop with time to spare before the function's timeout; the next pass goes on
LOST_AFTER_SECONDS = 300  # a notification older than this that produced nothing is taken as lost
LISTING_PAGES, PAGE_SIZE = 5, 1000  # keys listed per pass; the next pass goes on where this one stopped
LISTING_MARKER = "sweep/lost-objects-after"  # the last key looked at, outside incoming/ so it notifies nothing


def sweep(remaining_ms: Callable[[], int], now: float | None = None) -> dict[str, dict[str, str]]:
    """One pass: close overdue uploads, ingest objects whose notification was lost, resend undelivered
    decisions and overdue deliveries, settle paid runs that ended without being settled. Returns what it did,
    per run (per object key for lost notifications, per delivery for deliveries)."""
    closed = close_overdue(remaining_ms)
    lost = ingest_lost_objects(remaining_ms, time.time() if now is None else now)
    resent = redeliver_decisions(remaining_ms)
    deliveries = notify.resend_overdue(remaining_ms)
    settled = credits.settle_ended(remaining_ms)
    return {"uploads": closed, "lost": lost, "decisions": resent, "deliveries": deliveries, "credits": settled}


def close_overdue(remaining_ms: Callable[[], int]) -> dict[str, str]:
    """Queued upload and external runs whose last upload URL expired more than the grace period ago: files that
    are in the bucket are taken in, then the run starts with what arrived, or expires when nothing did."""
    current = settings()
    waited = current.uploads.url_expiry_seconds + current.uploads.grace_seconds
    cutoff = now_iso(-waited)
    outcomes: dict[str, str] = {}
    for run in Run.by_status.query("queued", Run.created_at < cutoff):
        if remaining_ms() < MARGIN_MS:
            break
        if run.source not in ingest.UPLOAD_SOURCES or (run.open_until or "") > now_iso():
            continue  # a render run, or an external run that was appended to lately
        run = ingest.close(run)
        if run.status != "queued":
            outcomes[run.run_id] = "started" if run.status not in runs.FINAL else run.status
            continue
        keys = list(runs.files_of(run)) or [f"{ingest.INCOMING_PREFIX}{run.run_id}/"]
        named = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        error = UploadNotReceived(
            f"the upload never arrived: nothing was uploaded to {named} before its presigned URL expired "
            f"({current.uploads.url_expiry_seconds} s) and the grace period ({current.uploads.grace_seconds} s)"
        )
        done = runs.advance(run, "expired", error_name=type(error).__name__, error_cause=str(error))
        if done:
            credits.settle(run.run_id)  # nothing arrived: what its uploads cost is given back
        outcomes[run.run_id] = "expired" if done else "moved on"
        logger.info("expired an upload that never arrived", extra={"run_id": run.run_id, "expired": done})
    return outcomes


def ingest_lost_objects(remaining_ms: Callable[[], int], now: float) -> dict[str, str]:
    """The gap-filler for lost notifications (S3's, or MinIO's without a queue_dir): objects under incoming/
    older than LOST_AFTER_SECONDS that no run took in are ingested now. Each pass lists a few pages, going on
    after the key the last pass stopped at, so a large bucket is walked across passes."""
    bucket = settings().storage.media_bucket
    started_after = marker = _marker(bucket)
    outcomes: dict[str, str] = {}
    for _ in range(LISTING_PAGES):
        if remaining_ms() < MARGIN_MS:
            break
        listed, more = storage.list_page(bucket, ingest.INCOMING_PREFIX, start_after=marker, limit=PAGE_SIZE)
        settled = [o.key for o in listed if now - o.last_modified >= LOST_AFTER_SECONDS]
        for key in ingest.unclaimed(bucket, settled):
            try:
                outcomes[key] = ingest.ingest_object(bucket, key) or "ignored"
            except Exception:  # one object that cannot be ingested must not stop the walk
                logger.exception("a lost object could not be ingested", extra={"key": key})
                outcomes[key] = "failed"
        marker = listed[-1].key if listed and more else ""
        if not marker:
            break
    if marker != started_after:
        storage.write(bucket, LISTING_MARKER, marker.encode(), "text/plain")
    if outcomes:
        logger.info("ingested objects whose notification was lost", extra={"objects": outcomes})
    return outcomes


def redeliver_decisions(remaining_ms: Callable[[], int]) -> dict[str, str]:
    """Runs awaiting review whose decision is recorded but was not delivered: send it again."""
    outcomes: dict[str, str] = {}
    for run in Run.by_status.query("awaiting_review"):
        if remaining_ms() < MARGIN_MS:
            break
        outcome = review.redeliver(run)
        if outcome is not None:
            outcomes[run.run_id] = outcome
    return outcomes


def _marker(bucket: str) -> str:
    try:
        return storage.read(bucket, LISTING_MARKER).decode()
    except NotFound:  # the first pass starts from the beginning
        return ""
