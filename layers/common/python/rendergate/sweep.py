"""The sweep: nothing is left hanging. Upload runs whose upload never arrived expire once their URL has
expired and a grace period passed; decisions recorded but not yet taken by the state machine are sent
again while their run still waits for review (candidates come from the Runs table's `by_status` index);
deliveries whose next attempt is overdue (its queue message was lost) get a new message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rendergate import notify, review, runs, storage
from rendergate.config import settings
from rendergate.errors import UploadNotReceived
from rendergate.observability import logger
from rendergate.tables import Run

MARGIN_MS = 5_000  # stop with time to spare before the function's timeout; the next pass goes on


def sweep(remaining_ms: Callable[[], int]) -> dict[str, dict[str, str]]:
    """One pass: expire abandoned uploads, resend undelivered decisions and overdue deliveries. Returns what
    it did, per run (or delivery)."""
    expired = expire_uploads(remaining_ms)
    resent = redeliver_decisions(remaining_ms)
    return {"expired": expired, "decisions": resent, "deliveries": notify.resend_overdue(remaining_ms)}


def expire_uploads(remaining_ms: Callable[[], int]) -> dict[str, str]:
    """Queued upload runs created before their URL's expiry plus the grace period, with no object: expired."""
    current = settings()
    waited = current.upload_url_expiry_seconds + current.upload_grace_seconds
    cutoff = (datetime.now(UTC) - timedelta(seconds=waited)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    outcomes: dict[str, str] = {}
    for run in Run.by_status.query("queued", Run.created_at < cutoff):
        if remaining_ms() < MARGIN_MS:
            break
        if run.source != "upload" or not run.upload_key:
            continue
        if storage.exists(current.media_bucket, run.upload_key):
            outcomes[run.run_id] = "arrived"  # the ingest queue (or its dead-letter queue) has it
            continue
        error = UploadNotReceived(
            f"the upload never arrived: nothing was uploaded to {run.upload_key} before its presigned URL "
            f"expired ({current.upload_url_expiry_seconds} s) and the grace period ({current.upload_grace_seconds} s)"
        )
        done = runs.advance(run, "expired", error_name=type(error).__name__, error_cause=str(error))
        outcomes[run.run_id] = "expired" if done else "moved on"
        logger.info("expired an upload that never arrived", extra={"run_id": run.run_id, "expired": done})
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
