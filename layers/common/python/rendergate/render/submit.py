"""The Render task: store the task token on the run, move it to `rendering`, and submit it to its
backend with the run id as the idempotency key. A retried task never submits blindly: a job the run
already has is asked for first, and a submit whose answer was lost is left for the webhook or the
reconciler to resolve instead of being sent again (unless the backend can be asked by our id)."""

from __future__ import annotations

import json
from typing import Any

from rendergate import config, invoke, signing, storage, workflows
from rendergate.backends import NOT_FOUND, Backend, Submission, SubmitUncertain
from rendergate.config import settings
from rendergate.errors import BadRequest, RenderFailed, TransientError
from rendergate.observability import logger
from rendergate.render import outputs
from rendergate.render.job import RenderJob
from rendergate.tables import Run

URL_SLACK_SECONDS = 600
MAX_URL_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL lives
URL_ALLOWANCE_BYTES = 4096  # a presigned URL with a session token is about 1.5 KB
ENVELOPE_BYTES = 2048  # the webhook URL, the policy and the JSON around them


def start(task_token: str, run_id: str) -> dict[str, Any]:
    """Handle the Render task's invocation; the task then waits for its token."""
    job = RenderJob.of(run_id)
    if not job.begin(task_token):
        return {"run_id": run_id, "status": job.run.status}  # cancelled before the task began
    run, backend = job.run, job.backend
    if run.job_id and backend.status(run.job_id).status != NOT_FOUND:
        return {"run_id": run_id, "job_id": run.job_id, "submitted": False}  # a retried task: keep the job
    if run.submit_state == "uncertain" or (run.submit_state == "sending" and not backend.capabilities.lookup_by_run):
        # an earlier attempt sent the job and never learnt its id (it may have died mid-request), and the
        # backend cannot be asked by our id: the job's webhook or the reconciler settles it, never a resend
        job.uncertain()
        return {"run_id": run_id, "job_id": None, "submitted": False}
    job_id = _submit(job)
    if job_id and not backend.capabilities.webhooks:
        _follow(run_id)
    return {"run_id": run_id, "job_id": job_id, "submitted": job_id is not None}


def check_size(graph: dict[str, Any], count: int, sources: int, backend: Backend) -> None:
    """BadRequest when a job of `graph`, `count` images and `sources` source images could not reach the
    backend's worker in one request (its presigned URLs counted at their largest)."""
    limit = backend.capabilities.max_request_bytes
    if limit is None:
        return
    graph_bytes = len(json.dumps(graph, separators=(",", ":")))
    size = graph_bytes + (count + sources) * URL_ALLOWANCE_BYTES + ENVELOPE_BYTES
    if size > limit:
        raise BadRequest(
            f"this render would be a request of about {size} bytes (its graph alone is {graph_bytes}), more than "
            f"the {limit} the {backend.name} backend takes: shorten the prompts or use fewer LoRAs"
        )


def webhook_url(run_id: str) -> str:
    """Where RunPod reports the run's job: the run id and its HMAC token are in the path."""
    token = signing.webhook_token(config.webhook_secret(), run_id)
    return f"{config.public_base_url()}/webhooks/runpod/{run_id}/{token}"


def _submit(job: RenderJob) -> str | None:
    current, run, backend = settings(), job.run, job.backend
    job.submitting()
    expires_in = min(job.lifespan_seconds() + URL_SLACK_SECONDS, MAX_URL_SECONDS)  # the job's whole life
    submission = Submission(
        run_id=run.run_id,
        graph=run.graph or {},
        uploads=outputs.uploads(run, expires_in),
        webhook_url=webhook_url(run.run_id) if backend.capabilities.webhooks else None,
        priority=run.priority or "normal",
        execution_timeout_seconds=current.render.execution_timeout_seconds,
        queue_ttl_seconds=current.render.queue_ttl_seconds,
        **_source_images(run, backend, expires_in),
    )
    try:
        job_id = backend.submit(submission)
    except SubmitUncertain as uncertain:
        logger.warning("submit outcome unknown; not resending", extra={"run_id": run.run_id, "why": str(uncertain)})
        job.uncertain()
        return None
    except TransientError:
        job.unsent()
        raise
    except RenderFailed as refused:
        job.refused(refused)
        raise
    # a fast job's webhook may have come first and adopted it: then that stays
    if job.submitted(job_id) and job.run.status == "cancelled":
        job.stop()  # the client cancelled while the job was on its way: it had no job to cancel then
    return job_id


def _source_keys(run: Run) -> dict[str, str]:
    """The run's source images (img2img): the ComfyUI input file name its graph refers to -> bucket key."""
    specs = workflows.load(run.workflow_name, run.workflow_version).manifest["params"]
    keys = [value for name, value in (run.params or {}).items() if specs.get(name, {}).get("type") == "image"]
    return {workflows.input_name(key): key for key in keys}


def _source_images(run: Run, backend: Backend, expires_in: int) -> dict[str, Any]:
    """The source images as the backend takes them: presigned GETs its worker downloads (with their
    sizes, which the worker holds the download to), or the bytes, which the backend uploads itself."""
    bucket, keys = settings().storage.media_bucket, _source_keys(run)
    if not backend.capabilities.inputs_by_url:
        return {"images": {name: storage.read(bucket, key) for name, key in keys.items()}}
    return {
        "images": {},
        "image_urls": {name: storage.presign_get(bucket, key, expires_in) for name, key in keys.items()},
        "image_sizes": {name: int(storage.head(bucket, key)["ContentLength"]) for name, key in keys.items()},
    }


def _follow(run_id: str) -> None:
    """Ask the reconciler to follow this job now (the backend sends no webhook); the schedule is the backstop."""
    name = settings().render.reconcile_function
    if not name:
        return
    try:
        invoke.start(name, {"follow": [run_id]})
    except Exception:  # following is an optimisation; the scheduled pass finds the run anyway
        logger.exception("could not start following the render", extra={"run_id": run_id})
