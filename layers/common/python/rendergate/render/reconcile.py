"""The reconciler: for runs in `rendering` it asks the backend where each job stands, records progress,
sends task heartbeats while the job is queued or running, settles jobs that finished without a webhook
(ComfyUI never sends one), and fails runs whose job vanished.

It runs on a schedule (every run due for a check) and on request after a ComfyUI submit (`follow`):
then it keeps watching those prompts, with progress from ComfyUI's websocket, while time remains."""

from __future__ import annotations

import time
from collections.abc import Callable

from rendergate import executions, runs
from rendergate.backends import ACTIVE, NOT_FOUND, JobState
from rendergate.config import settings
from rendergate.errors import RenderLost
from rendergate.observability import logger
from rendergate.render import completion
from rendergate.render.job import RenderJob, age_seconds
from rendergate.tables import Run

FOLLOW_MARGIN_MS = 10_000
FOLLOW_POLL_SECONDS = 1.0
NOT_FOUND_GRACE_SECONDS = 30


def reconcile(follow: list[str], remaining_ms: Callable[[], int]) -> dict[str, str]:
    """Check every rendering run that is due (and every run in `follow`); return each run's outcome."""
    outcomes: dict[str, str] = {}
    for run in Run.by_status.query("rendering"):
        if run.run_id in follow or _due(run):
            outcomes[run.run_id] = _checked(RenderJob(run))
    watching = [run_id for run_id in follow if outcomes.get(run_id) in ACTIVE]
    if watching:
        _follow(watching, remaining_ms, outcomes)
    return outcomes


def check(job: RenderJob, progress: int | None = None) -> str:
    """Where the run's job stands, acted on: progress and heartbeat, or settled. Returns the outcome."""
    run = job.run
    if not run.job_id:
        return _unsubmitted(job)
    state = job.backend.status(run.job_id)
    if state.status in ACTIVE:
        if progress is not None:
            state.progress = max(state.progress or 0, progress)
        _still_running(job, state)
        return state.status
    if state.status == NOT_FOUND and run.checked_at is None and age_seconds(run.submitted_at) < NOT_FOUND_GRACE_SECONDS:
        return "waiting"  # never seen yet: a job just submitted may not be visible to /status
    return completion.settle(job, state, "reconciler")


def _checked(job: RenderJob, progress: int | None = None) -> str:
    try:
        return check(job, progress)
    except Exception:  # one backend hiccup must not stop the pass over the other runs
        logger.exception("reconciling a run failed", extra={"run_id": job.run.run_id})
        return "error"


def _follow(run_ids: list[str], remaining_ms: Callable[[], int], outcomes: dict[str, str]) -> None:
    jobs = [RenderJob(run) for run in map(runs.find, run_ids) if run is not None]
    backend = jobs[0].backend if jobs else None
    job_ids = [job.run.job_id for job in jobs if job.run.job_id]
    watcher = backend.watch(job_ids) if backend and backend.capabilities.progress_socket else None
    try:
        while run_ids and remaining_ms() > FOLLOW_MARGIN_MS:
            if watcher is not None:
                progress = watcher.poll(FOLLOW_POLL_SECONDS)
            else:
                time.sleep(FOLLOW_POLL_SECONDS)
                progress = {}
            for run_id in list(run_ids):
                run = runs.find(run_id)
                if run is None or run.status != "rendering" or not run.job_id:
                    run_ids.remove(run_id)
                    continue
                outcomes[run_id] = _checked(RenderJob(run), progress.get(run.job_id))
                if outcomes[run_id] not in ACTIVE:
                    run_ids.remove(run_id)
    finally:
        if watcher is not None:
            watcher.close()


def _still_running(job: RenderJob, state: JobState) -> None:
    heartbeat = job.heartbeat_due
    if heartbeat and not executions.heartbeat(job.run.task_token or ""):
        # nobody waits for this job any more (the task timed out): stop paying for it
        logger.warning("the render task is gone; cancelling its job", extra={"run_id": job.run.run_id})
        job.backend.cancel(state.job_id)
    job.progressed(state, heartbeat)


def _unsubmitted(job: RenderJob) -> str:
    """A run whose submit got no answer: the webhook adopts the job if one exists; past every limit it is lost."""
    limit = job.lost_after_seconds()
    if job.run.submit_state == "uncertain" and age_seconds(job.run.submitted_at) > limit:
        completion.fail(job, RenderLost(f"the submit was never confirmed and no job reported back in {limit} s"))
        return "lost"
    return "waiting"


def _due(run: Run) -> bool:
    return age_seconds(run.checked_at) >= settings().render.reconcile_poll_seconds
