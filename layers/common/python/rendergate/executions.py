"""Step Functions adapter: start executions idempotently and resume task tokens."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from rendergate.config import settings
from rendergate.errors import ReviewExpired


@cache
def _sfn() -> Any:
    return boto3.client("stepfunctions", region_name=settings().region)


def start(name: str, payload: dict[str, Any]) -> str | None:
    """Start an execution named `name`; return its ARN, or None when one of that name already exists.

    The same name and input return the existing execution (Standard workflows are idempotent on the
    name), so a duplicate delivery starts nothing new.
    """
    try:
        response = _sfn().start_execution(
            stateMachineArn=settings().state_machine_arn, name=name, input=json.dumps(payload, sort_keys=True)
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
            return None
        raise
    return str(response["executionArn"])


def resume(task_token: str, output: dict[str, Any]) -> None:
    """SendTaskSuccess; a token that timed out or was already used raises ReviewExpired."""
    try:
        _sfn().send_task_success(taskToken=task_token, output=json.dumps(output))
    except ClientError as error:
        if error.response["Error"]["Code"] in {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}:
            raise ReviewExpired("the pipeline is no longer waiting for this review") from error
        raise
