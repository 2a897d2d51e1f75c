"""Review: the gate a human passes. Opening a review stores the task token behind a short id and sends
a signed link; GET shows the page and decides nothing; POST records one decision and resumes the run.
The page, a Slack button, the API and the expiry policy all decide through `record_decision`."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from rendergate import (
    collections,
    config,
    events,
    executions,
    notify,
    pages,
    reminders,
    reviewers,
    runs,
    signing,
    storage,
)
from rendergate.errors import BadRequest, LinkInvalid, NotFound, ReviewAlreadyDecided, ReviewExpired
from rendergate.executions import Delivery
from rendergate.observability import logger
from rendergate.reviewers import Session
from rendergate.tables import Asset, Review, Run, epoch_of, now_iso, save_if_absent, update_if, update_if_while

DECISIONS = ("approve", "reject")
MAX_RANK = 20  # Kodi reads fanart … fanart19, Jellyfin fanart-1 … fanart-20
REDELIVER_AFTER_SECONDS = 10  # longer than a reviewer's request spends delivering, retries included
NOTE_CHARS = 500  # a note on one image
INBOX_LIMIT = 50
AUTO_REJECTED_BY = "expiry policy (auto-reject)"


@dataclass(frozen=True)
class Page:
    """An HTML answer: its status and body, or a redirect to `location` (303 See Other)."""

    status: int
    body: str
    location: str | None = None


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
        data=runs.review_request(review, run),
        correlation_id=run_id,
        event_id=f"review-requested-{review.review_id}",
    )
    _schedule_reminders(review, run.namespace)
    return {"review_id": review.review_id, "url": url}


def _schedule_reminders(review: Review, namespace: str) -> None:
    """Reminders help a review along; one that cannot be scheduled must not fail the run."""
    if not config.settings().review.function_arn:
        return
    try:
        reminders.schedule(review, namespace)
    except Exception:
        logger.exception("the review's reminders could not be scheduled", extra={"review_id": review.review_id})


def review_id_for(task_token: str) -> str:
    """A short id derived from the token, so the token itself never leaves the backend."""
    digest = hashlib.sha256(task_token.encode()).digest()
    return base64.b32encode(digest).decode().lower()[:16]


def review_page(
    review_id: str,
    expires_at: str | None,
    signature: str | None,
    session: Session | None = None,
    after: str | None = None,
) -> tuple[int, str]:
    """The review page and its status. Reading it changes nothing: link scanners may GET or HEAD it freely.
    A review that no longer takes decisions shows its run's state instead of the form. A signed-in reviewer's
    form carries a token bound to their session and this review; `after` names the review they just decided."""
    exp = signing.verify_link(config.link_signing_key(), review_id, expires_at, signature, int(time.time()))
    review = _get(review_id)
    run = runs.get(review.run_id)
    assets = _assets(review)
    if review.status == "decided":
        return 200, pages.review_decided(run, review, assets, already=True, delivery=runs.delivery(review, run))
    if review.status != "pending" or run.status != "awaiting_review":
        return 410, pages.review_closed(run, review, runs.review_status(review, run))
    action = f"/reviews/{review_id}"
    previews = _previews(assets)
    signed_in = pages.SignedIn(session.reviewer.name, reviewers.form_token(session, review_id)) if session else None
    previous = _previous(after) if session and after else None
    if run.source == "entity":
        from rendergate.media import entities

        entity = entities.get(str(run.entity_id))
        locked = collections.locked_types(entities.collection_id(entity))  # unticking a box unlocks the type
        actors = entities.actor_views(entity)
        page = pages.entity_review_form(
            run, review, entity, assets, actors, previews, action, exp, signature or "", locked, signed_in
        )
        return 200, page
    duplicates = _duplicates(assets)
    previews |= _previews(list(duplicates.values()))
    return 200, pages.review_form(
        run,
        review,
        assets,
        previews=previews,
        action=action,
        exp=exp,
        sig=signature or "",
        signed_in=signed_in,
        duplicates=duplicates,
        previous=previous,
    )


def decide(review_id: str, form: dict[str, str], session: Session | None = None) -> Page:
    """Record the decision once (a conditional write, only while the run waits for it), then deliver it.
    The answer is 200 once the state machine took it, 202 when delivery is still pending (the sweep
    sends it again), 410 with the run's state when the run no longer waits for a decision. The link's
    signature authorises the decision; a signed-in reviewer's identity counts only with their form's token
    (a cookie alone never acts), and they are sent on to their next pending review."""
    signing.verify_link(config.link_signing_key(), review_id, form.get("exp"), form.get("sig"), int(time.time()))
    if session is not None and not reviewers.check_form_token(session, review_id, form.get("csrf")):
        raise LinkInvalid("this form belongs to another session: open the review again")
    review = _get(review_id)
    run = runs.get(review.run_id)
    if review.status == "decided":
        raise ReviewAlreadyDecided("a decision was already recorded for this review")
    if review.status != "pending" or run.status != "awaiting_review":
        return Page(410, pages.review_closed(run, review, runs.review_status(review, run)))
    locked: list[str] | None = None
    if run.source == "entity":
        approved, rejected, locked = _entity_decisions(review, form)
    else:
        approved, rejected = _decisions(review, form)
    if session is not None:
        reviewer, reviewer_id = session.reviewer.name, session.reviewer.reviewer_id
    else:
        reviewer, reviewer_id = form.get("reviewer", "").strip()[:120] or "anonymous reviewer", None
    notes = form.get("notes", "").strip()[:2000]
    asset_notes = {
        asset_id: form[f"note-{asset_id}"].strip()[:NOTE_CHARS]
        for asset_id in review.asset_ids
        if form.get(f"note-{asset_id}", "").strip()
    }
    outcome = record_decision(review, run, approved, rejected, reviewer, notes, locked, reviewer_id, asset_notes)
    review, run = _get(review_id), runs.get(review.run_id)
    if outcome == "closed":
        return Page(410, pages.review_closed(run, review, runs.review_status(review, run)))
    following = next_pending(session, exclude=review_id) if session is not None else None
    if following is not None:
        return Page(303, "", f"{following}&after={review_id}")
    delivery = "delivered" if outcome == "delivered" else "pending"
    inbox = "/inbox" if session is not None else None
    page = pages.review_decided(run, review, _assets(review), already=False, delivery=delivery, inbox=inbox)
    return Page(200 if outcome == "delivered" else 202, page)


def decide_from_slack(review_id: str, decision: str, reviewer: str, reviewer_id: str) -> str:
    """A Slack button: approve or reject every asset of the review, as `reviewer`. The outcome of
    `record_decision`, or `decided` when a decision was recorded first."""
    review = _get(review_id)
    run = runs.get(review.run_id)
    if review.status == "decided":
        return "decided"
    if review.status != "pending" or run.status != "awaiting_review":
        return "closed"
    everything = list(review.asset_ids)
    approved, rejected = (everything, []) if decision == "approve" else ([], everything)
    try:
        return record_decision(review, run, approved, rejected, reviewer, "", None, reviewer_id)
    except ReviewAlreadyDecided:
        return "decided"


def on_expiry(run_id: str) -> dict[str, Any]:
    """The review task timed out. A decision recorded but not delivered in time is what goes on; else the
    namespace's expiry policy: `auto-reject` records a rejection of everything, `expire` (the default) lets the
    run expire (`{"expired": true}`)."""
    run = runs.get(run_id)
    review = _get(str(run.review_id)) if run.review_id else None
    if review is None:
        return {"expired": True}
    reminders.cancel(review)
    if review.status == "pending" and reviewers.policy(run.namespace)["expiry"] == "auto-reject":
        decision: list[Action] = [
            Review.status.set("decided"),
            Review.approved.set([]),
            Review.rejected.set(list(review.asset_ids)),
            Review.reviewer.set(AUTO_REJECTED_BY),
            Review.notes.set("nobody decided before the review expired"),
            Review.decided_at.set(now_iso()),
            Review.delivered_at.set(now_iso()),
        ]
        update_if_while(review, decision, Review.status == "pending", Run, run.run_id, Run.status == "awaiting_review")
        review = _get(review.review_id)
    if review.status != "decided":
        return {"expired": True}
    return decision_of(review)


def inbox(session: Session) -> str:
    """A signed-in reviewer's pending reviews in their namespaces, oldest first."""
    waiting = pending_reviews(session.reviewer)
    assets = {a.asset_id: a for a in _batch_assets([i for _, r in waiting for i in list(r.asset_ids)[:6]])}
    previews = _previews(list(assets.values()))
    rows = [
        pages.InboxRow(
            run=run,
            review=review,
            link=runs.review_link(review),
            thumbs=[(assets[i], previews[i]) for i in list(review.asset_ids)[:6] if i in assets],
            selected=sum(1 for i in review.asset_ids if i in assets and assets[i].selected),
        )
        for run, review in waiting
    ]
    return pages.inbox(session.reviewer, rows, reviewers.form_token(session, "sign-out"), int(clock()))


def clock() -> float:
    """Seconds since the epoch, as the inbox tells ages and time left; tests set it."""
    return time.time()


def pending_reviews(reviewer: Any) -> list[tuple[Run, Review]]:
    """The reviews waiting in `reviewer`'s namespaces, oldest first (at most INBOX_LIMIT)."""
    found: list[Run] = []
    for run in Run.by_status.query("awaiting_review", scan_index_forward=True):
        if run.review_id and reviewers.reviews(reviewer, run.namespace):
            found.append(run)
        if len(found) >= INBOX_LIMIT:
            break
    rows = {r.review_id: r for r in Review.batch_get([run.review_id for run in found])} if found else {}
    now = time.time()
    waiting = [
        (run, rows[str(run.review_id)])
        for run in found
        if str(run.review_id) in rows
        and rows[str(run.review_id)].status == "pending"
        and int(rows[str(run.review_id)].expires_at) > now
    ]
    return sorted(waiting, key=lambda pair: (pair[1].created_at, pair[1].review_id))


def next_pending(session: Session, exclude: str) -> str | None:
    """The link of the signed-in reviewer's oldest pending review other than `exclude`."""
    return next((runs.review_link(r) for _, r in pending_reviews(session.reviewer) if r.review_id != exclude), None)


def record_decision(
    review: Review,
    run: Run,
    approved: list[str],
    rejected: list[str],
    reviewer: str,
    notes: str,
    locked_types: list[str] | None = None,
    reviewer_id: str | None = None,
    asset_notes: dict[str, str] | None = None,
    decided_by: str | None = None,
) -> str:
    """Write the decision (only while the review is pending and its run waits), then send it: `delivered`,
    `pending` (the sweep sends it again) or `closed` (the run no longer waits). `decided_by` is the owner of
    the API key that decided (None for a signed link or a reviewer's session). ReviewAlreadyDecided when a
    decision was recorded first; ReviewExpired when the task is gone. Its pending reminders are cancelled."""
    decision: list[Action] = [
        Review.status.set("decided"),
        Review.approved.set(approved),
        Review.rejected.set(rejected),
        Review.reviewer.set(reviewer),
        Review.notes.set(notes),
        Review.decided_at.set(now_iso()),
    ]
    if locked_types is not None:
        decision.append(Review.locked_types.set(locked_types))
    if reviewer_id is not None:
        decision.append(Review.reviewer_id.set(reviewer_id))
    if asset_notes:
        decision.append(Review.asset_notes.set(asset_notes))
    if decided_by is not None:
        decision.append(Review.decided_by.set(decided_by))
    recorded = update_if_while(
        review, decision, Review.status == "pending", Run, run.run_id, Run.status == "awaiting_review"
    )
    review = _get(review.review_id)
    if not recorded:
        if review.status == "decided":
            raise ReviewAlreadyDecided("a decision was already recorded for this review")
        return "closed"
    _cancel_reminders(review)
    outcome = _deliver(review)
    if outcome == "dead":
        if update_if(review, [Review.status.set("expired")], Review.delivered_at.does_not_exist()):
            raise ReviewExpired("the pipeline is no longer waiting for this review")
        outcome = "delivered"  # the sweep sent it meanwhile
    return outcome


def _cancel_reminders(review: Review) -> None:
    """A decided review needs no reminders; one that fires anyway finds it decided and sends nothing."""
    if not config.settings().review.function_arn:
        return
    try:
        reminders.cancel(review)
    except Exception:
        logger.exception("the review's reminders could not be cancelled", extra={"review_id": review.review_id})


def redeliver(run: Run) -> Delivery | None:
    """Send again a decision recorded for `run` that the state machine has not taken (delivery failed or
    the request died); None when there is nothing to send. The same recorded decision, never another."""
    review = Review.get(run.review_id) if run.review_id else None
    if review is None or review.status != "decided" or review.delivered_at or not review.decided_at:
        return None
    if time.time() - epoch_of(review.decided_at) < REDELIVER_AFTER_SECONDS:
        return None  # the reviewer's own request may still be sending it
    outcome = _deliver(review)
    if outcome == "dead":  # resumed by an earlier send whose answer was lost, or timed out: the run moves on
        logger.info("a recorded decision found its task gone", extra={"run_id": run.run_id})
    return outcome


def _deliver(review: Review) -> Delivery:
    outcome = executions.deliver(review.task_token, decision_of(review))
    if outcome == "delivered":
        review.update(actions=[Review.delivered_at.set(now_iso())])
    return outcome


def decision_of(review: Review) -> dict[str, Any]:
    """What the Review task is resumed with: derived from the recorded decision, so a resend is identical."""
    decision: dict[str, Any] = {
        "review_id": review.review_id,
        "approved": list(review.approved or []),
        "rejected": list(review.rejected or []),
        "reviewer": review.reviewer,
        "notes": review.notes,
        "reviewed_at": review.decided_at,
    }
    if review.decided_by is not None:
        decision["decided_by"] = review.decided_by
    if review.locked_types is not None:
        decision["locked_types"] = list(review.locked_types)
    if review.reviewer_id:
        decision["reviewer_id"] = review.reviewer_id
    if review.asset_notes:
        decision["asset_notes"] = dict(review.asset_notes)
    return decision


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


def _entity_decisions(review: Review, form: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """An entity's selection: `rank-{asset id}` numbers per type (and season), blank for not selected;
    `lock-{type}` checked for the types re-enrichment must leave alone; `all=reject` publishes nothing.
    Approved ids come back in rank order within each type, which is the ranking publish uses."""
    from rendergate.profiles import PROFILES

    locked = sorted(name[len("lock-") :] for name, value in form.items() if name.startswith("lock-") and value)
    if unknown := [name for name in locked if name not in PROFILES]:
        raise BadRequest(f"unknown asset type(s) to lock: {', '.join(unknown[:5])}")
    if form.get("all") == "reject":
        return [], list(review.asset_ids), locked
    assets = {a.asset_id: a for a in _assets(review)}
    ranked: dict[tuple[str, Any], dict[int, str]] = {}
    for asset_id in review.asset_ids:
        value = form.get(f"rank-{asset_id}", "").strip()
        if not value or asset_id not in assets:
            continue
        if not value.isdigit() or not 1 <= int(value) <= MAX_RANK:
            raise BadRequest(f"a rank is a whole number from 1 to {MAX_RANK} (got {value[:10]!r} for {asset_id})")
        asset = assets[asset_id]
        group = (str(asset.asset_type), asset.season)
        if int(value) in ranked.setdefault(group, {}):
            raise BadRequest(f"two {asset.asset_type} images have rank {value}: give each its own")
        ranked[group][int(value)] = asset_id
    approved = [ranked[group][rank] for group in sorted(ranked, key=str) for rank in sorted(ranked[group])]
    return approved, [i for i in review.asset_ids if i not in set(approved)], locked


def _get(review_id: str) -> Review:
    try:
        return Review.get(review_id)
    except DoesNotExist as error:
        raise NotFound("there is no such review") from error


def _assets(review: Review) -> list[Asset]:
    found = {a.asset_id: a for a in _batch_assets(list(review.asset_ids))}
    return [found[i] for i in review.asset_ids if i in found]


def _batch_assets(asset_ids: list[str]) -> list[Asset]:
    return list(Asset.batch_get(sorted(set(asset_ids)))) if asset_ids else []


def _duplicates(assets: list[Asset]) -> dict[str, Asset]:
    """What each near-duplicate duplicates (an asset of this run or of the library), by the duplicate's id."""
    originals = {a.asset_id: a for a in _batch_assets([a.duplicate_of for a in assets if a.duplicate_of])}
    return {a.asset_id: originals[a.duplicate_of] for a in assets if a.duplicate_of in originals}


def _previous(review_id: str) -> tuple[Run, Review] | None:
    """The review a signed-in reviewer just decided, for the note on the next one."""
    try:
        review = Review.get(review_id)
    except DoesNotExist:
        return None
    run = runs.find(review.run_id)
    return (run, review) if run is not None and review.status == "decided" else None


def _previews(assets: list[Asset]) -> dict[str, str]:
    """The 512 px WebP previews (the original where an older row has none)."""
    return {a.asset_id: storage.presign_get(a.bucket, a.thumb_key or a.key, expires_in=3600) for a in assets}
