"""POST /webhooks/runpod/{run_id}/{token}: only the run's own token is accepted; the body must name a job;
a report about a job that is not the run's changes nothing."""

from __future__ import annotations

from rendergate.signing import webhook_token
from support.handlers import AUTH, call

SECRET = b"unit-test-webhook-secret"
BODY = {"workflow": "txt2img", "params": {"prompt": "a cat"}}


def test_a_forged_or_borrowed_token_is_refused(aws: None) -> None:
    run_id = call("runs", "POST", "/runs", BODY, AUTH)[1]["run_id"]
    other = webhook_token(SECRET, "another-run")
    for token in ("forged", other, webhook_token(b"another secret", run_id)):
        status, answer = call(
            "webhooks", "POST", f"/webhooks/runpod/{run_id}/{token}", {"id": "j", "status": "COMPLETED"}
        )
        assert (status, answer["error"]) == (403, "LinkInvalid")


def test_the_body_must_be_a_job_status(aws: None) -> None:
    run_id = call("runs", "POST", "/runs", BODY, AUTH)[1]["run_id"]
    path = f"/webhooks/runpod/{run_id}/{webhook_token(SECRET, run_id)}"
    for body in ({"status": "COMPLETED"}, {"id": ""}, "not json", "[]"):
        assert call("webhooks", "POST", path, body)[0] == 400


def test_an_unknown_run_is_not_found(aws: None) -> None:
    path = f"/webhooks/runpod/nope/{webhook_token(SECRET, 'nope')}"
    assert call("webhooks", "POST", path, {"id": "j", "status": "COMPLETED"})[0] == 404


def test_a_report_about_another_job_changes_nothing(aws: None) -> None:
    from rendergate.tables import Run

    run_id = call("runs", "POST", "/runs", BODY, AUTH)[1]["run_id"]
    Run.get(run_id).update(actions=[Run.status.set("rendering"), Run.job_id.set("job-1"), Run.backend.set("runpod")])
    path = f"/webhooks/runpod/{run_id}/{webhook_token(SECRET, run_id)}"
    status, answer = call("webhooks", "POST", path, {"id": "job-0", "status": "COMPLETED"})
    assert (status, answer["outcome"]) == (200, "ignored")
    assert Run.get(run_id).status == "rendering"
