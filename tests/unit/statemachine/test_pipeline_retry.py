"""Retries in statemachines/pipeline.asl.json: each Lambda task outlasts our TransientError and Lambda's own
transient errors (a throttle, a service error), waiting as its Retry says (backoff 2, full jitter)."""

from __future__ import annotations

import boto3
import pytest

from rendergate import executions
from support.pipeline import DECISION, RENDERED, SERVICE_ERROR, THROTTLED, Raises

# The run that reaches each function's task (source, auto-approve), and what resumes the task's token if any.
TASKS = {
    "EnrichFunction": ("upload", True, None),
    "PublishFunction": ("upload", True, None),
    "RenderFunction": ("render", True, RENDERED),
    "ReviewFunction": ("upload", False, DECISION),
}
TRANSIENT = {"TransientError": Raises("TransientError", "503 from RunPod"), "throttle": THROTTLED, "5xx": SERVICE_ERROR}


def run_to_the_end(pipeline, run_input, function: str, invocations: int) -> dict:
    """Start a run that reaches `function`'s task; resume the token of its last invocation if it waits for one."""
    source, auto_approve, resumed_with = TASKS[function]
    execution = pipeline.start(run_input(source, auto_approve=auto_approve))
    if resumed_with is not None:
        token = pipeline.functions.wait_for(function, invocations)["task_token"]
        assert executions.succeed(token, resumed_with)
    return pipeline.ended(execution)


def within_full_jitter(waits: list[float], first: float = 2, rate: float = 2, most: float = float("inf")) -> bool:
    """Each wait lies in [0, interval], the interval starting at `first` and growing by `rate` up to `most`."""
    return all(0 <= wait <= min(first * rate**attempt, most) for attempt, wait in enumerate(waits))


@pytest.mark.parametrize("function", sorted(TASKS))
@pytest.mark.parametrize("error", sorted(TRANSIENT))
def test_a_task_outlasts_two_transient_failures_and_the_run_goes_on(pipeline, run_input, function, error):
    # Given a function that fails transiently twice, then succeeds
    pipeline.functions.script(function, TRANSIENT[error], TRANSIENT[error])

    # When a run reaches its task
    description = run_to_the_end(pipeline, run_input, function, invocations=3)

    # Then the task was attempted three times, waiting up to 2 s, then up to 4 s, and the run succeeded
    assert description["status"] == "SUCCEEDED"
    assert len(pipeline.functions.payloads(function)) == 3
    assert len(pipeline.retry_waits.seconds) == 2 and within_full_jitter(pipeline.retry_waits.seconds)


def test_render_throttles_are_waited_out_longer_than_other_transient_errors(pipeline, run_input):
    # Given a render function throttled six times (its reserved concurrency is busy): more than others get
    pipeline.functions.script("RenderFunction", *[THROTTLED] * 6)

    # When a render run reaches the Render task
    description = run_to_the_end(pipeline, run_input, "RenderFunction", invocations=7)

    # Then it kept retrying, each wait up to double the last but never over a minute, and the run succeeded
    assert description["status"] == "SUCCEEDED"
    assert len(pipeline.retry_waits.seconds) == 6 and within_full_jitter(pipeline.retry_waits.seconds, most=60)


@pytest.mark.parametrize("function", ["EnrichFunction", "RenderFunction"])
def test_a_throttle_is_named_as_lambda_names_it_for_both_kinds_of_lambda_task(pipeline, run_input, function):
    # Given a throttle: Lambda refuses the invocation, no handler runs (Enrich names its function's ARN as the
    # Resource, Render uses the lambda:invoke integration)
    pipeline.functions.script(function, THROTTLED)

    # When a run reaches the task
    description = run_to_the_end(pipeline, run_input, function, invocations=2)

    # Then the history names the error Lambda.TooManyRequestsException, which the Retry matches
    assert description["status"] == "SUCCEEDED"
    events = boto3.client("stepfunctions").get_execution_history(executionArn=description["executionArn"])["events"]
    failures = [
        details["error"]
        for event in events
        for key, details in event.items()
        if key in {"lambdaFunctionFailedEventDetails", "taskFailedEventDetails"}
    ]
    assert failures == ["Lambda.TooManyRequestsException"]
