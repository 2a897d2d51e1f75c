"""Reminders and escalation of reviews nobody decided, per the namespace's policy. Nothing polls the reviews:
opening a review schedules its first reminder and its escalation as one-time EventBridge Scheduler schedules,
a reminder that went out schedules the next one, and a decision cancels what is still pending. A schedule that
fires anyway (it was already under way, or Scheduler delivered it twice) finds the review decided, or its
reminder sent within the period, and sends nothing."""

from __future__ import annotations

import time
from typing import Any

from pynamodb.exceptions import DoesNotExist

from rendergate import reviewers, runs, schedules
from rendergate.observability import logger
from rendergate.tables import Review, epoch_of, update_if

KINDS = ("remind", "escalate")
HOUR = 3600


def clock() -> float:
    """Seconds since the epoch; the one clock of reminders, so tests can move it."""
    return time.time()


def schedule(review: Review, namespace: str) -> dict[str, float]:
    """Schedule the first reminder and the escalation a namespace's policy asks for (none without a policy),
    each only while the review can still be decided. Returns what was scheduled, by kind, as epoch seconds."""
    policy = reviewers.policy(namespace)
    opened = clock()
    planned: dict[str, float] = {}
    if policy.get("reminder_after_hours"):
        planned["remind"] = opened + int(policy["reminder_after_hours"]) * HOUR
    if policy.get("escalate_after_hours"):
        planned["escalate"] = opened + int(policy["escalate_after_hours"]) * HOUR
    planned = {kind: when for kind, when in planned.items() if when < int(review.expires_at)}
    for kind, when in planned.items():
        schedules.at(_name(review, kind), when, _payload(review, kind))
    return planned


def cancel(review: Review) -> list[str]:
    """Cancel a review's pending reminder and escalation; the kinds that were still pending."""
    return [kind for kind in KINDS if schedules.cancel(_name(review, kind))]


def fire(review_id: str, kind: str) -> str:
    """A schedule came due: remind the namespace's reviewers (at most once a period) and schedule the next
    reminder, or escalate (once). `sent`, `throttled`, or `closed` when the review no longer waits."""
    if kind not in KINDS:
        return "ignored"
    try:
        review = Review.get(review_id)
    except DoesNotExist:
        return "closed"
    run = runs.find(review.run_id)
    now = clock()
    if run is None or review.status != "pending" or run.status != "awaiting_review" or review.expires_at <= now:
        return "closed"
    policy = reviewers.policy(run.namespace)
    data = runs.review_request(review, run) | {"waiting_hours": round((now - epoch_of(str(review.created_at))) / HOUR)}
    if kind == "escalate":
        if not policy.get("escalate_to"):
            return "closed"
        if not update_if(review, [Review.escalated_at.set(int(now))], Review.escalated_at.does_not_exist()):
            return "throttled"
        reviewers.announce(
            "review.escalated.v1", review.review_id, run.run_id, data | {"escalate_to": policy["escalate_to"]}
        )
        return "sent"
    period = int(policy.get("reminder_every_hours") or policy.get("reminder_after_hours") or 0) * HOUR
    if not period:
        return "closed"  # the policy no longer reminds
    recent = Review.reminded_at.exists() & (Review.reminded_at > int(now) - period)
    if not update_if(review, [Review.reminded_at.set(int(now))], ~recent):
        return "throttled"
    reviewers.announce("review.reminder.v1", review.review_id, run.run_id, data | {"reminder_at": int(now)})
    if now + period < int(review.expires_at):
        schedules.cancel(_name(review, kind))  # a schedule that ran is gone; one still pending is replaced
        schedules.at(_name(review, kind), now + period, _payload(review, kind))
    logger.info("reminded reviewers", extra={"review_id": review.review_id})
    return "sent"


def _name(review: Review, kind: str) -> str:
    return schedules.name_for(review.review_id, kind)


def _payload(review: Review, kind: str) -> dict[str, Any]:
    return {"reminder": {"review_id": review.review_id, "kind": kind}}
