"""Finishing a render, once: a terminal job state (from the RunPod webhook or the reconciler) resumes the
Render task with the images, or fails it with a named error keeping the backend's own error text.

Acting once is a conditional put of `(job id, status)` in the RenderEvents table: duplicate and late
reports find it and do nothing. A failure while acting removes it again, so the next report retries."""

from __future__ import annotations

import time
import uuid
from typing import Any

from rendergate import events, executions
from rendergate.backends import CANCELLED, FAILED, NOT_FOUND, TIMED_OUT, JobState
from rendergate.errors import RenderFailed, RenderLost, RenderTimedOut
from rendergate.observability import logger
from rendergate.render import outputs
from rendergate.render.job import RenderJob
from rendergate.tables import RenderEvent, Run, save_if_absent

EVENT_NAMESPACE = uuid.UUID("8e7d6c5b-4a39-4281-9f0e-1d2c3b4a5968")
EVENT_RETENTION_SECONDS = 30 * 24 * 3600
RENDER_FAILURES = (RenderFailed, RenderTimedOut, RenderLost)


def settle(job: RenderJob, state: JobState, source: str) -> str:
    """Act on a finished job once. Returns completed | failed | duplicate | ignored."""
    run = job.run
    if run.status != "rendering" or run.job_id != state.job_id:
        return "ignored"  # a late report: the run moved on, or the job is not the run's any more
    claim = _claim(run, state, source)
    if claim is None:
        return "duplicate"
    try:
        outcome = _settle(job, state)
    except Exception:
        claim.delete()
        raise
    claim.update(actions=[RenderEvent.outcome.set("done")])
    return outcome


def fail(job: RenderJob, failure: Exception, state: JobState | None = None) -> None:
    """Fail the Render task with a named error; the state machine records the run failed."""
    job.failed(failure, state)
    run = job.run
    if run.task_token and not executions.fail(run.task_token, failure):
        logger.warning("the render task no longer waits", extra={"run_id": run.run_id})
    events.emit(
        "render.failed.v1",
        subject=run.run_id,
        data={"run_id": run.run_id, "job_id": run.job_id, "error": type(failure).__name__, "message": str(failure)},
        correlation_id=run.run_id,
        event_id=str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{run.job_id}/failed")),
    )


def raise_for_status(state: JobState) -> None:
    """A failed, timed out, cancelled or vanished job as the named error the state machine sees."""
    if state.status == FAILED:
        raise RenderFailed(state.error or "the backend reported the job FAILED without a message")
    if state.status == TIMED_OUT:
        detail = f": {state.error}" if state.error else ""
        raise RenderTimedOut(f"job {state.job_id} timed out (its queue ttl or execution timeout passed){detail}")
    if state.status == CANCELLED:
        raise RenderFailed(f"job {state.job_id} was cancelled on the backend")
    if state.status == NOT_FOUND:
        raise RenderLost(
            f"job {state.job_id} vanished: the backend no longer knows it (RunPod forgets jobs after their ttl) "
            "and it never reported a result"
        )


def _settle(job: RenderJob, state: JobState) -> str:
    run = job.run
    try:
        raise_for_status(state)
        found = outputs.collect(run, state, job.backend)
    except RENDER_FAILURES as failure:
        fail(job, failure, state)
        return "failed"
    job.completed(state, [o["key"] for o in found])
    live = bool(run.task_token) and executions.succeed(run.task_token or "", {"objects": found, "job_id": state.job_id})
    events.emit(
        "render.completed.v1",
        subject=run.run_id,
        data=_completed(run, state, found),
        correlation_id=run.run_id,
        event_id=str(uuid.uuid5(EVENT_NAMESPACE, f"{run.run_id}/{state.job_id}/completed")),
    )
    if not live:
        logger.warning("rendered, but the render task no longer waits", extra={"run_id": run.run_id})
    return "completed"


def _completed(run: Run, state: JobState, found: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "job_id": state.job_id,
        "objects": found,
        "workflow": run.workflow_name,
        "version": run.workflow_version,
        "sha256": run.workflow_sha256,
        "seed": run.seed,
        "timings": state.timings,
    }


def _claim(run: Run, state: JobState, source: str) -> RenderEvent | None:
    event = RenderEvent(
        f"{state.job_id}:{state.status}",
        run_id=run.run_id,
        job_id=state.job_id,
        status=state.status,
        source=source,
        ttl=int(time.time()) + EVENT_RETENTION_SECONDS,
    )
    return event if save_if_absent(event, RenderEvent.event_id.does_not_exist()) else None
