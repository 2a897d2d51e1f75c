"""Review: the gate a human passes. Opening a review stores the task token behind a short id and sends
a signed link; GET shows the page and decides nothing; POST records one decision and resumes the run."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

from pynamodb.exceptions import DoesNotExist

from rendergate import config, events, executions, notify, pages, runs, signing, storage
from rendergate.errors import BadRequest, NotFound, ReviewAlreadyDecided, ReviewExpired
from rendergate.tables import Asset, Review, now_iso, save_if_absent, update_if

DECISIONS = ("approve", "reject")


def open_review(task_token: str, run_id: str, asset_ids: list[str], timeout_seconds: int) -> dict[str, Any]:
    """Store the token behind a review id, move the run to awaiting_review and send the link."""
    review = Review(
        review_id_for(task_token),
        run_id=run_id,
        task_token=task_token,
        asset_ids=asset_ids,
        expires_at=int(time.time()) + int(timeout_seconds),
    )
    review.ttl = int(review.expires_at) + 30 * 24 * 3600
    if not save_if_absent(review, Review.review_id.does_not_exist()):
        review = Review.get(review.review_id)  # the same task invoked twice: one review
    run = runs.get(run_id)
    runs.advance(run, "awaiting_review", review_id=review.review_id)
    url = runs.review_link(review)
    notify.review_requested(run_id, run.title, len(asset_ids), url)
    events.emit(
        "review.requested.v1",
        subject=run_id,
        data={"run_id": run_id, "review_id": review.review_id, "asset_ids": asset_ids, "url": url},
        correlation_id=run_id,
        event_id=f"review-requested-{review.review_id}",
    )
    return {"review_id": review.review_id, "url": url}


def review_id_for(task_token: str) -> str:
    """A short id derived from the token, so the token itself never leaves the backend."""
    digest = hashlib.sha256(task_token.encode()).digest()
    return base64.b32encode(digest).decode().lower()[:16]


def review_page(review_id: str, expires_at: str | None, signature: str | None) -> str:
    """The review page. Reading it changes nothing: link scanners may GET or HEAD it freely."""
    exp = signing.verify_link(config.link_signing_key(), review_id, expires_at, signature, int(time.time()))
    review = _get(review_id)
    run = runs.get(review.run_id)
    assets = _assets(review)
    if review.status != "pending":
        return pages.review_decided(run, review, assets, already=True)
    action = f"/reviews/{review_id}"
    return pages.review_form(
        run, review, assets, previews=_previews(assets), action=action, exp=exp, sig=signature or ""
    )


def decide(review_id: str, form: dict[str, str]) -> str:
    """Record the decision once (a conditional write), resume the execution, and confirm."""
    signing.verify_link(config.link_signing_key(), review_id, form.get("exp"), form.get("sig"), int(time.time()))
    review = _get(review_id)
    approved, rejected = _decisions(review, form)
    reviewer = form.get("reviewer", "").strip()[:120] or "anonymous reviewer"
    notes = form.get("notes", "").strip()[:2000]
    decided_at = now_iso()
    decided = update_if(
        review,
        [
            Review.status.set("decided"),
            Review.approved.set(approved),
            Review.rejected.set(rejected),
            Review.reviewer.set(reviewer),
            Review.notes.set(notes),
            Review.decided_at.set(decided_at),
        ],
        Review.status == "pending",
    )
    if not decided:
        raise ReviewAlreadyDecided("a decision was already recorded for this review")
    decision = {
        "review_id": review_id,
        "approved": approved,
        "rejected": rejected,
        "reviewer": reviewer,
        "notes": notes,
        "reviewed_at": decided_at,
    }
    try:
        executions.resume(review.task_token, decision)
    except ReviewExpired:
        review.update(actions=[Review.status.set("expired")])
        raise
    return pages.review_decided(runs.get(review.run_id), review, _assets(review), already=False)


def _decisions(review: Review, form: dict[str, str]) -> tuple[list[str], list[str]]:
    bulk = form.get("all")
    approved: list[str] = []
    rejected: list[str] = []
    for asset_id in review.asset_ids:
        choice = bulk or form.get(f"asset-{asset_id}")
        if choice not in DECISIONS:
            raise BadRequest(f"choose approve or reject for every asset (missing for {asset_id})")
        (approved if choice == "approve" else rejected).append(asset_id)
    return approved, rejected


def _get(review_id: str) -> Review:
    try:
        return Review.get(review_id)
    except DoesNotExist as error:
        raise NotFound("there is no such review") from error


def _assets(review: Review) -> list[Asset]:
    found = {a.asset_id: a for a in Asset.batch_get(list(review.asset_ids))} if review.asset_ids else {}
    return [found[i] for i in review.asset_ids if i in found]


def _previews(assets: list[Asset]) -> dict[str, str]:
    """The 512 px WebP previews (the original where an older row has none)."""
    return {a.asset_id: storage.presign_get(a.bucket, a.thumb_key or a.key, expires_in=3600) for a in assets}
