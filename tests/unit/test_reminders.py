"""Reminders, escalation and the expiry policy, on a clock the tests move: one-time schedules (EventBridge
Scheduler, in moto) made when a review opens, at most one reminder per period, one escalation, all of it
cancelled by a decision; at expiry, `auto-reject` rejects and `expire` lets the run expire."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from support.functions import load_function
from support.handlers import AUTH, Context, call
from support.reviewing import post_form, signed

HOUR = 3600
POLICY = {
    "reminder_after_hours": 4,
    "reminder_every_hours": 8,
    "escalate_after_hours": 24,
    "escalate_to": "ops",
}


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from rendergate import reminders

        self.now = time.time()
        monkeypatch.setattr(reminders, "clock", lambda: self.now)

    def advance(self, hours: float) -> None:
        self.now += hours * HOUR


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every event put on the bus (it still goes there), as (type, data)."""
    from rendergate import events

    seen: list[tuple[str, dict[str, Any]]] = []
    emit = events.emit

    def recording(
        event_type: str, subject: str, data: dict[str, Any], correlation_id: str, event_id: str | None = None
    ) -> str:
        seen.append((event_type, data))
        return emit(event_type, subject, data, correlation_id, event_id)

    monkeypatch.setattr(events, "emit", recording)
    return seen


def open_review(policy: dict[str, Any] | None = None, timeout: int = 7 * 24 * HOUR) -> str:
    """A run enriched in `library` whose Review task starts now, under `policy`; the review id."""
    from rendergate.tables import Asset, Run

    if policy is not None:
        assert call("reviewers", "PUT", "/review-policies/library", policy, headers=AUTH)[0] == 200
    Run("run-1", status="enriching", source="upload", namespace="library", title="Sunset").save()
    Asset(
        "asset-1",
        run_id="run-1",
        bucket="media-bucket",
        key="incoming/run-1/a.png",
        filename="a.png",
        status="enriched",
    ).save()
    event = {"task_token": "token-1", "run_id": "run-1", "asset_ids": ["asset-1"], "timeout_seconds": timeout}
    return str(load_function("review").handler(event, Context())["review_id"])


def fire(review_id: str, kind: str) -> str:
    """What EventBridge Scheduler does when a schedule comes due: invoke the review function with its input."""
    return str(load_function("review").handler({"reminder": {"review_id": review_id, "kind": kind}}, Context()))


def pending() -> dict[str, str]:
    """The schedules waiting, by name: their expression."""
    scheduler = boto3.client("scheduler")
    names = [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
    return {name: scheduler.get_schedule(Name=name)["ScheduleExpression"] for name in names}


def at(epoch: float) -> str:
    return time.strftime("at(%Y-%m-%dT%H:%M:%S)", time.gmtime(epoch))


def test_opening_a_review_schedules_its_reminder_and_escalation_once(aws: None, clock: Clock) -> None:
    review_id = open_review(POLICY)

    schedules = pending()

    prefix = f"rendergate-review-{review_id}"
    assert schedules == {f"{prefix}-remind": at(clock.now + 4 * HOUR), f"{prefix}-escalate": at(clock.now + 24 * HOUR)}
    detail = boto3.client("scheduler").get_schedule(Name=f"{prefix}-remind")
    assert detail["ActionAfterCompletion"] == "DELETE" and detail["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert json.loads(detail["Target"]["Input"]) == {"reminder": {"review_id": review_id, "kind": "remind"}}
    assert detail["Target"]["Arn"].endswith(":function:rendergate-review")


def test_without_a_policy_nothing_is_scheduled_and_past_expiry_neither(aws: None, clock: Clock) -> None:
    open_review()
    assert pending() == {}


def test_a_reminder_goes_out_at_most_once_a_period_and_schedules_the_next(
    aws: None, clock: Clock, announced: list[tuple[str, dict[str, Any]]]
) -> None:
    review_id = open_review(POLICY)
    clock.advance(4)
    assert fire(review_id, "remind") == "sent"
    clock.advance(1)
    assert fire(review_id, "remind") == "throttled"  # Scheduler delivered it twice, or a stale one came
    reminders = [data for kind, data in announced if kind == "review.reminder.v1"]
    assert len(reminders) == 1 and reminders[0]["waiting_hours"] == 4 and "/reviews/" in reminders[0]["url"]
    assert pending()[f"rendergate-review-{review_id}-remind"] == at(clock.now - HOUR + 8 * HOUR)
    clock.advance(7)
    assert fire(review_id, "remind") == "sent"
    clock.advance(12)
    assert fire(review_id, "escalate") == "sent"
    assert fire(review_id, "escalate") == "throttled"
    [escalation] = [data for kind, data in announced if kind == "review.escalated.v1"]
    assert escalation["escalate_to"] == "ops"


def test_a_decision_cancels_what_is_pending_and_a_late_schedule_sends_nothing(
    aws: None, clock: Clock, announced: list[tuple[str, dict[str, Any]]]
) -> None:
    from rendergate import runs
    from rendergate.tables import Review

    review_id = open_review(POLICY)
    path, query = signed(runs.review_link(Review.get(review_id)))
    assert post_form(path, query | {"all": "approve"})["statusCode"] == 200

    assert pending() == {}
    clock.advance(4)
    assert fire(review_id, "remind") == "closed"
    assert fire(review_id, "escalate") == "closed"
    assert [kind for kind, _ in announced] == ["review.requested.v1"]


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        ({"reminder_after_hours": 0}, "reminder_after_hours must be"),
        ({"reminder_after_hours": 1.5}, "reminder_after_hours must be"),
        ({"reminder_every_hours": 3}, "needs reminder_after_hours"),
        ({"escalate_after_hours": 3}, "go together"),
        ({"escalate_after_hours": 3, "escalate_to": "Not A Target"}, "escalate_to must be"),
        ({"expiry": "publish"}, "expiry must be one of expire, auto-reject"),
        ({"reminders": True}, "unknown field: reminders"),
    ],
)
def test_a_policy_that_cannot_be_is_a_400(aws: None, policy: dict[str, Any], named: str) -> None:
    status, answer = call("reviewers", "PUT", "/review-policies/library", policy, headers=AUTH)
    assert status == 400 and named in answer["message"], answer


def test_at_expiry_the_policy_decides(aws: None, clock: Clock, settings: Callable[..., None]) -> None:
    from rendergate.review import AUTO_REJECTED_BY, on_expiry
    from rendergate.tables import Review

    review_id = open_review({"expiry": "expire"})
    assert call("reviewers", "GET", "/review-policies/library", headers=AUTH)[1]["expiry"] == "expire"
    assert on_expiry("run-1") == {"expired": True}
    assert Review.get(review_id).status == "pending"

    call("reviewers", "PUT", "/review-policies/library", {"expiry": "auto-reject"}, headers=AUTH)
    decision = on_expiry("run-1")
    assert (decision["approved"], decision["rejected"], decision["reviewer"]) == ([], ["asset-1"], AUTO_REJECTED_BY)
    assert Review.get(review_id).status == "decided"


def test_at_expiry_a_decision_recorded_in_time_goes_on_whatever_the_policy(aws: None, clock: Clock) -> None:
    from rendergate import executions, runs
    from rendergate.review import on_expiry
    from rendergate.tables import Review

    review_id = open_review({"expiry": "auto-reject"})
    path, query = signed(runs.review_link(Review.get(review_id)))
    original = executions.deliver
    executions.deliver = lambda token, output: "pending"  # type: ignore[assignment]
    try:
        assert post_form(path, query | {"all": "approve", "reviewer": "Ann"})["statusCode"] == 202
    finally:
        executions.deliver = original  # type: ignore[assignment]
    decision = on_expiry("run-1")
    assert (decision["approved"], decision["reviewer"]) == (["asset-1"], "Ann")
