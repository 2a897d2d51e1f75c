"""A render run's job and its transitions: each one writes the run, and the rules between them hold
whichever of the Render task, the webhook and the reconciler gets there first."""

from __future__ import annotations

from typing import Any

from support.handlers import AUTH, call

BODY = {"workflow": "txt2img", "params": {"prompt": "a cat", "width": 64, "height": 64, "steps": 2}}


def job_of_new_run() -> Any:
    from rendergate.render.job import RenderJob

    status, answer = call("runs", "POST", "/runs", BODY, AUTH)
    assert status == 202, answer
    return RenderJob.of(answer["run_id"])


def test_a_run_cancelled_before_its_task_began_is_not_begun(aws: None) -> None:
    from rendergate.render.job import RenderJob

    job = job_of_new_run()
    assert call("runs", "POST", f"/runs/{job.run.run_id}/cancel", headers=AUTH)[0] == 200
    assert job.begin("token") is False
    assert (job.run.status, RenderJob.of(job.run.run_id).run.task_token) == ("cancelled", None)


def test_a_retried_task_begins_again_with_its_new_token(aws: None) -> None:
    from rendergate.render.job import RenderJob

    job = job_of_new_run()
    assert job.begin("token-1") and RenderJob.of(job.run.run_id).begin("token-2")
    assert RenderJob.of(job.run.run_id).run.task_token == "token-2"


def test_a_job_adopted_from_its_webhook_is_not_replaced_by_the_submits_late_answer(aws: None) -> None:
    from rendergate.render.job import RenderJob

    job = job_of_new_run()
    job.begin("token")
    job.submitting()
    assert RenderJob.of(job.run.run_id).unconfirmed
    assert RenderJob.of(job.run.run_id).adopted("job-from-webhook") is True
    assert job.submitted("job-from-webhook") is False
    run = RenderJob.of(job.run.run_id).run
    assert (run.job_id, run.submit_state, run.submit_attempts) == ("job-from-webhook", "submitted", 1)


def test_a_failure_keeps_the_backends_text_without_a_urls_secrets(aws: None) -> None:
    from rendergate.backends import JobState
    from rendergate.errors import RenderFailed
    from rendergate.render.job import RenderJob

    job = job_of_new_run()
    text = "upload to https://b.s3.amazonaws.com/renders/x.png?X-Amz-Signature=f00d failed: 403"
    job.failed(RenderFailed("render failed"), JobState("job-1", "FAILED", error=text))
    run = RenderJob.of(job.run.run_id).run
    assert run.job_status == "FAILED"
    assert run.backend_error == "upload to https://b.s3.amazonaws.com/renders/x.png?[redacted] failed: 403"
