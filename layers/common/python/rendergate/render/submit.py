"""The Render task: store the task token on the run, move it to `rendering`, and submit it to its
backend with the run id as the idempotency key. A retried task never submits blindly: a job the run
already has is asked for first, and a submit whose answer was lost is left for the webhook or the
reconciler to resolve instead of being sent again."""

from __future__ import annotations

from typing import Any

from rendergate import backends, config, invoke, runs, signing, storage, workflows
from rendergate.backends import NOT_FOUND, Submission, SubmitUncertain
from rendergate.config import settings
from rendergate.errors import RenderFailed, TransientError
from rendergate.observability import logger
from rendergate.render import outputs
from rendergate.tables import Run, now_iso, update_if

UPLOAD_URL_SLACK_SECONDS = 600


def start(task_token: str, run_id: str) -> dict[str, Any]:
    """Handle the Render task's invocation; the task then waits for its token."""
    run = runs.get(run_id)
    if not runs.advance(run, "rendering") and (now := runs.get(run_id).status) != "rendering":
        return {"run_id": run_id, "status": now}  # cancelled before the task began
    run.update(actions=[Run.task_token.set(task_token), Run.updated_at.set(now_iso())])
    backend = backends.backend(run.backend or settings().render_backend)
    if run.job_id and backend.status(run.job_id).status != NOT_FOUND:
        return {"run_id": run_id, "job_id": run.job_id, "submitted": False}  # a retried task: keep the job
    if run.submit_state == "uncertain" or (run.submit_state == "sending" and backend.name == "runpod"):
        # an earlier attempt sent the job and never learnt its id (it may have died mid-request): RunPod
        # cannot be asked by our id, so the job's webhook or the reconciler settles it, never a resend
        run.update(actions=[Run.submit_state.set("uncertain"), Run.submitted_at.set(run.submitted_at or now_iso())])
        return {"run_id": run_id, "job_id": None, "submitted": False}
    job_id = _submit(run, backend)
    if job_id and backend.name == "comfyui":
        _follow(run_id)
    return {"run_id": run_id, "job_id": job_id, "submitted": job_id is not None}


def webhook_url(run_id: str) -> str:
    """Where RunPod reports the run's job: the run id and its HMAC token are in the path."""
    token = signing.webhook_token(config.webhook_secret(), run_id)
    return f"{config.public_base_url()}/webhooks/runpod/{run_id}/{token}"


def _submit(run: Run, backend: backends.Backend) -> str | None:
    current = settings()
    run.update(actions=[Run.submit_state.set("sending"), Run.submit_attempts.add(1)])
    expires_in = current.render_queue_ttl_seconds + current.render_execution_timeout_seconds + UPLOAD_URL_SLACK_SECONDS
    submission = Submission(
        run_id=run.run_id,
        graph=run.graph or {},
        images=_source_images(run),
        upload_urls=outputs.upload_urls(run, min(expires_in, 7 * 24 * 3600)),
        webhook_url=webhook_url(run.run_id) if backend.name == "runpod" else None,
        priority=run.priority or "normal",
        execution_timeout_seconds=current.render_execution_timeout_seconds,
        queue_ttl_seconds=current.render_queue_ttl_seconds,
    )
    try:
        job_id = backend.submit(submission)
    except SubmitUncertain as uncertain:
        logger.warning("submit outcome unknown; not resending", extra={"run_id": run.run_id, "why": str(uncertain)})
        run.update(actions=[Run.submit_state.set("uncertain"), Run.submitted_at.set(now_iso())])
        return None
    except TransientError:
        run.update(actions=[Run.submit_state.remove()])  # nothing was accepted: the task's retry may send again
        raise
    except RenderFailed as refused:
        run.update(actions=[Run.submit_state.set("refused"), Run.backend_error.set(str(refused)[:20000])])
        raise
    # a fast job's webhook may have come first and adopted the job: then keep what it found
    update_if(
        run,
        [
            Run.job_id.set(job_id),
            Run.job_status.set(backends.IN_QUEUE),
            Run.progress.set(0),
            Run.submit_state.set("submitted"),
            Run.submitted_at.set(now_iso()),
            Run.updated_at.set(now_iso()),
        ],
        Run.job_id.does_not_exist(),
    )
    return job_id


def _source_images(run: Run) -> dict[str, bytes]:
    """The run's source images (img2img) by the input file name its graph refers to."""
    specs = workflows.load(run.workflow_name, run.workflow_version).manifest["params"]
    keys = [value for name, value in (run.params or {}).items() if specs.get(name, {}).get("type") == "image"]
    return {workflows.input_name(key): storage.read(settings().media_bucket, key) for key in keys}


def _follow(run_id: str) -> None:
    """Ask the reconciler to follow this ComfyUI prompt now (ComfyUI has no webhook); the schedule is the backstop."""
    name = settings().reconcile_function
    if not name:
        return
    try:
        invoke.start(name, {"follow": [run_id]})
    except Exception:  # following is an optimisation; the scheduled pass finds the run anyway
        logger.exception("could not start following the render", extra={"run_id": run_id})
