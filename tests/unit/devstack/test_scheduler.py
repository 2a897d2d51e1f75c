"""Scheduled functions run on the rate of the template's Schedule events, with EventBridge's event."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.cloud import Function, Schedule
from devstack.scheduler import Scheduler, period_seconds, scheduled_event


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("cron(0 12 * * ? *)", None),
    ],
)
def test_rates_become_periods(expression: str, seconds: int | None) -> None:
    assert period_seconds(expression) == seconds


def test_a_scheduled_invocation_gets_eventbridges_event_or_the_targets_input() -> None:
    event = scheduled_event(Schedule("arn:aws:events:us-east-1:1:rule/r", "rate(1 minute)", "Fn"))
    assert (event["source"], event["detail-type"], event["resources"], event["detail"]) == (
        "aws.events",
        "Scheduled Event",
        ["arn:aws:events:us-east-1:1:rule/r"],
        {},
    )
    assert scheduled_event(Schedule("r", "rate(1 minute)", "Fn", {"follow": []})) == {"follow": []}


def test_each_tick_invokes_the_scheduled_function() -> None:
    calls: list[tuple[str, Any]] = []

    class Local:
        def invoke(self, function: Function, event: Any) -> Any:
            calls.append((function.logical_id, event))

    function = Function("ReconcileFunction", "reconcile", "arn", None, "app.handler", {})  # type: ignore[arg-type]
    stack = type(
        "Stack",
        (),
        {
            "schedules": [Schedule("rule", "rate(1 minute)", "ReconcileFunction")],
            "functions": {"ReconcileFunction": function},
        },
    )()
    scheduler = Scheduler(stack, Local())  # type: ignore[arg-type]
    scheduler._fire(stack.schedules[0])
    assert calls[0][0] == "ReconcileFunction" and calls[0][1]["source"] == "aws.events"


def test_one_time_schedules_run_once_when_their_time_comes(aws: None) -> None:
    import time

    import boto3

    from rendergate import schedules

    schedules.at("past", time.time() - 1, {"reminder": {"review_id": "r", "kind": "remind"}})
    schedules.at("future", time.time() + 3600, {"reminder": {"review_id": "r", "kind": "escalate"}})
    scheduler = boto3.client("scheduler")

    [due] = Scheduler.due_one_time(scheduler, time.time())

    assert due["Name"] == "past" and due["Target"]["Input"] == '{"reminder": {"review_id": "r", "kind": "remind"}}'
    assert [s["Name"] for s in scheduler.list_schedules()["Schedules"]] == ["future"]
    assert Scheduler.due_one_time(scheduler, time.time()) == []
