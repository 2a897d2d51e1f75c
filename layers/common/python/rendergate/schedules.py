"""EventBridge Scheduler adapter: one-time schedules (`at(...)`) that invoke the review function later with a
payload, and delete themselves once they ran. The client is created once, lazily."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from rendergate.config import derived, settings

NAME_CHARS = 64


@derived
def _scheduler() -> Any:
    return boto3.client("scheduler", region_name=settings().region)


def name_for(*parts: str) -> str:
    """A schedule's name: the review function's name (so stacks in one account differ) and `parts`."""
    suffix = "-".join(parts)
    return f"{settings().review.function[: NAME_CHARS - len(suffix) - 1]}-{suffix}"


def at(name: str, when: float, payload: dict[str, Any]) -> bool:
    """Invoke the review function with `payload` once, at `when` (epoch seconds, UTC); False when a schedule
    of that name exists already (the same review opened twice schedules once)."""
    moment = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    current = settings()
    try:
        _scheduler().create_schedule(
            Name=name,
            ScheduleExpression=f"at({moment})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": current.review.function_arn,
                "RoleArn": current.review.scheduler_role_arn,
                "Input": json.dumps(payload),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
            },
        )
    except ClientError as error:
        if error.response["Error"]["Code"] in ("ConflictException", "ScheduleExists"):
            return False
        raise
    return True


def cancel(name: str) -> bool:
    """Delete a pending schedule; False when there is none (it ran, or never was)."""
    try:
        _scheduler().delete_schedule(Name=name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return True
