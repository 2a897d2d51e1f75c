"""Catches in statemachines/pipeline.asl.json: every way a task gives up ends in a recorded failure.

RecordFailure writes the run `failed` with the error's name and the whole error as JSON; a failed render is
first parked in the render dead-letter queue (ParkRenderFailure); a review that times out is recorded
`expired` (RecordExpiry); either ending is then settled (the ledger function refunds what it gives
back). When even the recording fails, the execution still ends in its Fail state.
"""

from __future__ import annotations

import json

import boto3
import pytest

from rendergate import executions
from rendergate.errors import RenderFailed, RenderLost, RenderTimedOut
from rendergate.tables import Run
from support.pipeline import ASSETS, SERVICE_ERROR, THROTTLED, AnswersItsToken, Raises, Returns

TRANSIENT_ATTEMPTS = 5  # the first and four retries


def recorded(run_id: str) -> tuple[str, str, dict]:
    """The run's status, error name and error (RecordFailure writes the whole error object as JSON)."""
    run = Run.get(run_id)
    return run.status, run.error_name, json.loads(run.error_cause) if run.status == "failed" else run.error_cause


def upload_reaching(function: str, run_input) -> dict:
    """An upload's execution input that reaches `function`'s task."""
    return run_input("upload", auto_approve=function != "ReviewFunction")


@pytest.mark.parametrize(
    ("function", "error"),
    [
        ("EnrichFunction", "ImageRejected"),  # no object of the run is an acceptable image
        ("EnrichFunction", "KeyError"),  # anything else
        ("PublishFunction", "ClientError"),
        ("ReviewFunction", "LinkInvalid"),
    ],
)
def test_a_named_error_fails_the_run_at_once_with_its_name_and_message(pipeline, run_input, function, error):
    # Given a function that raises an error no Retry names
    pipeline.functions.script(function, Raises(error, f"{error} happened here"))

    # When a run reaches its task
    description = pipeline.ended(pipeline.start(upload_reaching(function, run_input)))

    # Then it was not retried, and the run records the error's name and the handler's message
    assert (description["status"], description["error"]) == ("FAILED", "RunFailed")
    assert len(pipeline.functions.payloads(function)) == 1
    status, name, cause = recorded("run-upload")
    assert (status, name, cause["Error"]) == ("failed", error, error)
    assert json.loads(cause["Cause"])["errorMessage"] == f"{error} happened here"
    assert pipeline.states_entered(description["executionArn"])[-3:] == ["RecordFailure", "SettleFailure", "Failed"]
    assert pipeline.functions.payloads("LedgerFunction") == [{"settle": "run-upload"}]


@pytest.mark.parametrize("function", ["EnrichFunction", "PublishFunction", "ReviewFunction"])
@pytest.mark.parametrize(
    ("outcome", "name"),
    [
        (Raises("TransientError", "503 from a peer"), "TransientError"),
        (THROTTLED, "Lambda.TooManyRequestsException"),
        (SERVICE_ERROR, "Lambda.ServiceException"),
    ],
)
def test_a_transient_error_that_outlasts_the_retries_is_recorded(pipeline, run_input, function, outcome, name):
    # Given a function that fails transiently every time
    pipeline.functions.script(function, *[outcome] * TRANSIENT_ATTEMPTS)

    # When a run reaches its task
    description = pipeline.ended(pipeline.start(upload_reaching(function, run_input)))

    # Then it was attempted five times, and then the run recorded the last error
    assert (description["status"], description["error"]) == ("FAILED", "RunFailed")
    assert len(pipeline.functions.payloads(function)) == TRANSIENT_ATTEMPTS
    status, recorded_name, cause = recorded("run-upload")
    assert (status, recorded_name, cause["Error"]) == ("failed", name, name)


@pytest.mark.parametrize("error", [RenderFailed, RenderTimedOut, RenderLost, ValueError])
def test_a_render_that_fails_is_parked_in_the_dead_letter_queue_and_recorded(pipeline, run_input, error):
    # Given a render run whose job fails (the webhook or the reconciler fails the token with the backend's text)
    execution = pipeline.start(run_input("render"))
    render = pipeline.functions.wait_for("RenderFunction")
    assert executions.fail(render["task_token"], error("KSampler: CUDA out of memory"))

    # Then the task is not retried; its message waits in the dead-letter queue and the run records the error
    description = pipeline.ended(execution)
    assert (description["status"], description["error"]) == ("FAILED", "RunFailed")
    assert len(pipeline.functions.payloads("RenderFunction")) == 1
    (parked,) = pipeline.dead_letters()
    assert parked["run_id"] == "run-render" and parked["execution"] == execution
    assert parked["error"] == {"Error": error.__name__, "Cause": "KSampler: CUDA out of memory"}
    assert parked["failed_at"]
    status, name, cause = recorded("run-render")
    assert (status, name, cause) == ("failed", error.__name__, parked["error"])
    assert pipeline.states_entered(execution)[-4:] == ["ParkRenderFailure", "RecordFailure", "SettleFailure", "Failed"]


@pytest.mark.parametrize(
    ("outcome", "attempts", "name"),
    [
        (Raises("TransientError", "RunPod answered 503 five times"), 5, "TransientError"),
        (THROTTLED, 9, "Lambda.TooManyRequestsException"),  # throttles get eight retries
        (Raises("RegistryError", "txt2img 1.0.0 does not match its sha256"), 1, "RegistryError"),
    ],
)
def test_a_render_function_that_keeps_failing_is_parked_and_recorded(pipeline, run_input, outcome, attempts, name):
    # Given a render function that fails on every invocation
    pipeline.functions.script("RenderFunction", *[outcome] * attempts)

    # When a render run reaches the Render task
    description = pipeline.ended(pipeline.start(run_input("render")))

    # Then it gave up after its attempts, parked the run's message and recorded the error
    assert description["status"] == "FAILED"
    assert len(pipeline.functions.payloads("RenderFunction")) == attempts
    (parked,) = pipeline.dead_letters()
    assert parked["error"]["Error"] == name
    assert recorded("run-render")[:2] == ("failed", name)


def test_a_render_failure_reported_before_the_render_function_returns_is_not_lost(pipeline, run_input):
    # Given a job that fails at once: its webhook fails the token while the render function is still running
    pipeline.functions.script("RenderFunction", AnswersItsToken(error=RenderFailed("no such checkpoint")))

    # When a render run (whose task listens for heartbeats) reaches the Render task
    payload = run_input("render", render={"timeout_seconds": 60, "heartbeat_seconds": 5})
    description = pipeline.ended(pipeline.start(payload))

    # Then the failure stands, rather than a heartbeat timeout nobody caused
    assert description["status"] == "FAILED"
    assert recorded("run-render")[:2] == ("failed", "RenderFailed")


def test_a_render_that_stops_hearing_from_its_job_fails_with_a_heartbeat_timeout(pipeline, run_input):
    # Given a render run whose job nobody reports on (the reconciler sends no heartbeat)
    execution = pipeline.start(run_input("render", render={"timeout_seconds": 60, "heartbeat_seconds": 1}))

    # Then the task gives up after its heartbeat interval, and the run is parked and recorded
    description = pipeline.ended(execution)
    assert description["status"] == "FAILED"
    assert pipeline.dead_letters()[0]["error"]["Error"] == "States.HeartbeatTimeout"
    assert recorded("run-render")[:2] == ("failed", "States.HeartbeatTimeout")


def test_a_render_that_outlives_its_timeout_fails_even_while_its_job_sends_heartbeats(pipeline, run_input):
    # Given a render run whose job keeps running: the reconciler heartbeats it
    execution = pipeline.start(run_input("render", render={"timeout_seconds": 2, "heartbeat_seconds": 1}))
    token = pipeline.functions.wait_for("RenderFunction")["task_token"]
    while executions.heartbeat(token):  # until the token is dead
        pipeline.wait_a_little()

    # Then the task times out all the same, and the run is parked and recorded
    description = pipeline.ended(execution)
    assert description["status"] == "FAILED"
    assert recorded("run-render")[:2] == ("failed", "States.Timeout")


def test_a_review_nobody_decides_expires_the_run(pipeline, run_input):
    # Given an upload whose review times out after a second, in a namespace whose policy is to expire
    pipeline.functions.script("ReviewFunction", Returns({"review_id": "review-1"}), Returns({"expired": True}))
    execution = pipeline.start(run_input(review_timeout_seconds=1))

    # Then the review task gives up without a retry, the expiry policy is asked, and the run is recorded expired
    description = pipeline.ended(execution)
    assert (description["status"], description["error"]) == ("FAILED", "ReviewExpired")
    assert pipeline.functions.payloads("ReviewFunction")[1:] == [{"expiry": {"run_id": "run-upload"}}]
    assert recorded("run-upload") == ("expired", "States.Timeout", "the review was not decided before it timed out")
    states = ["OnReviewExpiry", "DecidedAtExpiry", "RecordExpiry", "SettleExpiry", "Expired"]
    assert pipeline.states_entered(execution)[-5:] == states
    assert len(pipeline.functions.payloads("LedgerFunction")) == 1  # what its ending gives back, settled


def test_an_expired_review_that_the_policy_decides_is_published(pipeline, run_input):
    # Given a review that times out where the policy auto-rejects (or a decision was recorded in time)
    rejected = {"approved": [], "rejected": ASSETS, "reviewer": "expiry policy (auto-reject)", "notes": ""}
    pipeline.functions.script("ReviewFunction", Returns({"review_id": "review-1"}), Returns(rejected))
    execution = pipeline.start(run_input(review_timeout_seconds=1))

    # Then publish gets that decision, as it would a reviewer's
    description = pipeline.ended(execution)
    assert description["status"] == "SUCCEEDED"
    [published] = pipeline.functions.payloads("PublishFunction")
    assert published["review"] == rejected
    assert pipeline.states_entered(execution)[-3:] == ["DecidedAtExpiry", "Publish", "Done"]


def test_when_the_expiry_policy_cannot_be_asked_the_run_expires(pipeline, run_input):
    pipeline.functions.script("ReviewFunction", Returns({"review_id": "review-1"}), Raises("RuntimeError", "gone"))
    execution = pipeline.start(run_input(review_timeout_seconds=1))

    assert pipeline.ended(execution)["error"] == "ReviewExpired"
    assert recorded("run-upload")[:2] == ("expired", "States.Timeout")
    assert len(pipeline.functions.payloads("LedgerFunction")) == 1


def test_a_review_token_failed_for_any_other_reason_fails_the_run(pipeline, run_input):
    # Given an upload waiting for its review
    execution = pipeline.start(run_input())
    review = pipeline.functions.wait_for("ReviewFunction")

    # When its token is failed
    assert executions.fail(review["task_token"], RuntimeError("the review store is gone"))

    # Then the run records that error
    assert pipeline.ended(execution)["error"] == "RunFailed"
    assert recorded("run-upload")[:2] == ("failed", "RuntimeError")


def test_when_the_failure_cannot_be_recorded_the_run_still_ends_failed(pipeline, run_input):
    # Given a run whose table is gone by the time Enrich fails
    payload = run_input()
    boto3.client("dynamodb").delete_table(TableName="RunsTable")
    pipeline.functions.script("EnrichFunction", Raises("ImageRejected", "nothing acceptable"))

    # When it fails
    description = pipeline.ended(pipeline.start(payload))

    # Then RecordFailure retried five times (2, 4, 8, 16, 32 s, no jitter), and the execution still failed
    assert (description["status"], description["error"]) == ("FAILED", "RunFailed")
    assert pipeline.retry_waits.seconds == [2, 4, 8, 16, 32]
    assert pipeline.states_entered(description["executionArn"])[-3:] == ["RecordFailure", "SettleFailure", "Failed"]


def test_when_the_expiry_cannot_be_recorded_the_run_still_ends_expired(pipeline, run_input):
    pipeline.functions.script("ReviewFunction", Returns({"review_id": "review-1"}), Returns({"expired": True}))
    payload = run_input(review_timeout_seconds=1)
    boto3.client("dynamodb").delete_table(TableName="RunsTable")

    description = pipeline.ended(pipeline.start(payload))

    assert (description["status"], description["error"]) == ("FAILED", "ReviewExpired")
    assert pipeline.retry_waits.seconds == [2, 4, 8, 16, 32]
    assert pipeline.states_entered(description["executionArn"])[-3:] == ["RecordExpiry", "SettleExpiry", "Expired"]


def test_when_the_dead_letter_queue_is_gone_the_render_failure_is_still_recorded(pipeline, run_input):
    # Given a render run whose dead-letter queue is gone
    boto3.client("sqs").delete_queue(QueueUrl=pipeline.dead_letter_queue_url)
    execution = pipeline.start(run_input("render"))

    # When its job fails
    assert executions.fail(pipeline.functions.wait_for("RenderFunction")["task_token"], RenderLost("job vanished"))

    # Then parking was retried three times (2, 4, 8 s), and the run records the render's error all the same
    description = pipeline.ended(execution)
    assert description["status"] == "FAILED"
    assert pipeline.retry_waits.seconds == [2, 4, 8]
    assert recorded("run-render")[:2] == ("failed", "RenderLost")
    assert pipeline.states_entered(execution)[-4:] == ["ParkRenderFailure", "RecordFailure", "SettleFailure", "Failed"]
