"""The reconciler: for runs in `rendering` it asks the backend where each job stands, records progress,
sends task heartbeats while the job is queued or running, settles jobs that finished without a webhook
(ComfyUI never sends one), and fails runs whose job vanished.

It runs on a schedule (every run due for a check) and on request after a ComfyUI submit (`follow`):
then it keeps watching those prompts, with progress from ComfyUI's websocket, while time remains."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from pynamodb.expressions.update import Action

from rendergate import backends, executions, runs
from rendergate.backends import ACTIVE, NOT_FOUND, JobState
from rendergate.config import settings
from rendergate.errors import RenderLost
from rendergate.observability import logger
from rendergate.render import completion
from rendergate.tables import Run, now_iso

FOLLOW_MARGIN_MS = 10_000
FOLLOW_POLL_SECONDS = 1.0
NOT_FOUND_GRACE_SECONDS = 30
UNCERTAIN_SLACK_SECONDS = 300


def reconcile(follow: list[str], remaining_ms: Callable[[], int]) -> dict[str, str]:
    """Check every rendering run that is due (and every run in `follow`); return each run's outcome."""
    outcomes: dict[str, str] = {}
    for run in Run.by_status.query("rendering"):
        if run.run_id in follow or _due(run):
            outcomes[run.run_id] = _checked(run)
    watching = [run_id for run_id in follow if outcomes.get(run_id) in ACTIVE]
    if watching:
        _follow(watching, remaining_ms, outcomes)
    return outcomes


def check(run: Run, progress: int | None = None) -> str:
    """Where the run's job stands, acted on: progress and heartbeat, or settled. Returns the outcome."""
    if not run.job_id:
        return _unsubmitted(run)
    backend = backends.backend(run.backend or settings().render_backend)
    state = backend.status(run.job_id)
    if state.status in ACTIVE:
        if progress is not None:
            state.progress = max(state.progress or 0, progress)
        _still_running(run, state, backend)
        return state.status
    if state.status == NOT_FOUND and run.checked_at is None and _age(run.submitted_at) < NOT_FOUND_GRACE_SECONDS:
        return "waiting"  # never seen yet: a job just submitted may not be visible to /status
    return completion.settle(run, state, "reconciler")


def _checked(run: Run, progress: int | None = None) -> str:
    try:
        return check(run, progress)
    except Exception:  # one backend hiccup must not stop the pass over the other runs
        logger.exception("reconciling a run failed", extra={"run_id": run.run_id})
        return "error"


def _follow(run_ids: list[str], remaining_ms: Callable[[], int], outcomes: dict[str, str]) -> None:
    followed = [run for run in map(runs.find, run_ids) if run is not None]
    backend = backends.backend((followed[0].backend if followed else None) or settings().render_backend)
    watch = getattr(backend, "watch", None)  # ComfyUI's /ws; RunPod has no socket to watch
    watcher = watch([run.job_id for run in followed if run.job_id]) if watch else None
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
                outcomes[run_id] = _checked(run, progress.get(run.job_id))
                if outcomes[run_id] not in ACTIVE:
                    run_ids.remove(run_id)
    finally:
        if watcher is not None:
            watcher.close()


def _still_running(run: Run, state: JobState, backend: backends.Backend) -> None:
    now = now_iso()
    actions: list[Action] = [Run.job_status.set(state.status), Run.checked_at.set(now)]
    if state.progress is not None:
        actions.append(Run.progress.set(state.progress))
    if run.task_token and _age(run.heartbeat_at or run.submitted_at) >= settings().render_heartbeat_seconds / 3:
        actions.append(Run.heartbeat_at.set(now))
        if not executions.heartbeat(run.task_token):
            # nobody waits for this job any more (the task timed out): stop paying for it
            logger.warning("the render task is gone; cancelling its job", extra={"run_id": run.run_id})
            backend.cancel(state.job_id)
    run.update(actions=actions)


def _unsubmitted(run: Run) -> str:
    """A run whose submit got no answer: the webhook adopts the job if one exists; past every limit it is lost."""
    current = settings()
    limit = current.render_queue_ttl_seconds + current.render_execution_timeout_seconds + UNCERTAIN_SLACK_SECONDS
    if run.submit_state == "uncertain" and _age(run.submitted_at) > limit:
        completion.fail(run, RenderLost(f"the submit was never confirmed and no job reported back in {limit} s"))
        return "lost"
    return "waiting"


def _due(run: Run) -> bool:
    return _age(run.checked_at) >= settings().reconcile_poll_seconds


def _age(timestamp: str | None) -> float:
    """Seconds since an ISO timestamp; infinite when there is none."""
    if not timestamp:
        return float("inf")
    return (datetime.now(UTC) - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
