"""Step Functions adapter: start and stop executions idempotently, resume, fail and heartbeat task tokens."""

from __future__ import annotations

import json
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from rendergate.config import derived, settings
from rendergate.observability import logger

DEAD_TOKEN = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
# botocore's standard retries: throttles and 5xx again with exponential backoff and full jitter, a few seconds
# at most, so a reviewer's request is not held long; what still fails is left to the sweep.
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 3})

Delivery = Literal["delivered", "dead", "pending"]


@derived
def _sfn() -> Any:
    return boto3.client("stepfunctions", region_name=settings().region, config=RETRIES)


def start(name: str, payload: dict[str, Any]) -> str | None:
    """Start an execution named `name`; return its ARN, or None when one of that name already exists.

    The same name and input return the existing execution (Standard workflows are idempotent on the
    name), so a duplicate delivery starts nothing new.
    """
    try:
        response = _sfn().start_execution(
            stateMachineArn=settings().pipeline.state_machine_arn, name=name, input=json.dumps(payload, sort_keys=True)
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
            return None
        raise
    return str(response["executionArn"])


def deliver(task_token: str, output: dict[str, Any]) -> Delivery:
    """SendTaskSuccess for a decision already recorded: `delivered`; `dead` when the task no longer waits
    for this token (timed out, stopped, or already resumed); `pending` when Step Functions could not be
    reached or kept refusing (throttles, 5xx, after botocore's retries), to be sent again later."""
    try:
        _sfn().send_task_success(taskToken=task_token, output=json.dumps(output))
    except ClientError as error:
        if error.response["Error"]["Code"] in DEAD_TOKEN:
            return "dead"
        logger.warning("a decision could not be delivered yet", extra={"error": error.response["Error"]["Code"]})
        return "pending"
    except BotoCoreError as error:  # no connection, or no answer: sending the same decision again is harmless
        logger.warning("a decision could not be delivered yet", extra={"error": type(error).__name__})
        return "pending"
    return "delivered"


def succeed(task_token: str, output: dict[str, Any]) -> bool:
    """SendTaskSuccess; False when the task no longer waits for this token (timed out, used, stopped)."""
    return _send(lambda: _sfn().send_task_success(taskToken=task_token, output=json.dumps(output)))


def fail(task_token: str, error: Exception) -> bool:
    """SendTaskFailure with the error's class name and message; False when the token is no longer live."""
    name, cause = type(error).__name__, str(error)[:32768]
    return _send(lambda: _sfn().send_task_failure(taskToken=task_token, error=name, cause=cause))


def heartbeat(task_token: str) -> bool:
    """SendTaskHeartbeat, so a task with HeartbeatSeconds keeps waiting; False when the token is dead."""
    return _send(lambda: _sfn().send_task_heartbeat(taskToken=task_token))


def stop(name: str, cause: str) -> bool:
    """Stop the execution named `name`; False when there is none or it has ended already."""
    arn = settings().pipeline.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    try:
        _sfn().stop_execution(executionArn=arn, cause=cause[:32768])
    except ClientError as error:
        if error.response["Error"]["Code"] in {"ExecutionDoesNotExist", "ValidationException"}:
            return False
        raise
    return True


def _send(call: Any) -> bool:
    try:
        call()
    except ClientError as error:
        if error.response["Error"]["Code"] in DEAD_TOKEN:
            return False
        raise
    return True
