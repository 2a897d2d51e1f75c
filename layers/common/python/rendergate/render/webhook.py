"""RunPod's webhook: `POST /webhooks/runpod/{run_id}/{token}` with the job's status body. RunPod does not
sign webhooks, so the URL carries an HMAC of the run id, and the body is only a hint: the job's status is
fetched from RunPod again before anything is done. Retried and late deliveries change nothing."""

from __future__ import annotations

from typing import Any

from rendergate import config, signing
from rendergate.backends import ACTIVE, NOT_FOUND
from rendergate.errors import BadRequest
from rendergate.observability import logger
from rendergate.render import completion
from rendergate.render.job import RenderJob


def authenticate(run_id: str, token: str) -> None:
    """LinkInvalid unless `token` is the run's webhook token; checked before the body is read."""
    signing.verify_webhook_token(config.webhook_secret(), run_id, token)


def receive(run_id: str, token: str, body: Any) -> dict[str, Any]:
    """Check the token, re-fetch the job's status and settle the run once. Returns what was done."""
    authenticate(run_id, token)
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        raise BadRequest("the webhook body must be RunPod's job status, with the job's id")
    job_id = body["id"]
    job = RenderJob.of(run_id)
    state = None
    if job.unconfirmed:
        state = job.backend.status(job_id)
        if state.status != NOT_FOUND:
            job.adopted(job_id)  # it finished before its submit's answer was recorded, or that answer was lost
    if job.run.job_id != job_id:
        logger.info("webhook for a job that is not the run's", extra={"run_id": run_id, "job_id": job_id})
        return {"run_id": run_id, "job_id": job_id, "outcome": "ignored"}
    state = state or job.backend.status(job_id)
    if state.status in ACTIVE or state.status == NOT_FOUND:
        return {"run_id": run_id, "job_id": job_id, "outcome": "pending"}  # the reconciler follows up
    return {"run_id": run_id, "job_id": job_id, "outcome": completion.settle(job, state, "webhook")}
