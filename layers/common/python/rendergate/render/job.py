"""A render run's backend job, and the one writer of its fields. Every change to a render run's task
token, submit state, job id and status, progress, heartbeat, outputs or backend error is one of the
named transitions of `RenderJob`; the Render task, the webhook, the reconciler, completion and cancel
call them instead of updating the run themselves.

    begin ─▶ submitting ─▶ submitted ─▶ progressed* ─▶ completed | failed
                 │  ├─▶ uncertain ─▶ adopted (by the job's webhook) | failed (lost)
                 │  ├─▶ unsent (nothing was accepted: the task's retry sends again)
                 │  └─▶ refused
    cancelled (from any of them, while the run may still be cancelled)
"""

from __future__ import annotations

import time

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from rendergate import backends, config, credits, runs
from rendergate.backends import CANCELLED, COMPLETED, IN_QUEUE, Backend, JobState
from rendergate.config import settings
from rendergate.errors import scrubbed
from rendergate.observability import logger
from rendergate.tables import Run, epoch_of, now_iso, update_if

config.on_reset(backends.backend.cache_clear)  # backends are configured from the settings (the worker has none)

ERROR_LIMIT = 20_000  # characters of a backend's error text kept on the run
UNCONFIRMED_SLACK_SECONDS = 300


class RenderJob:
    """A render run seen as its backend job: where it stands, and the transitions that move it."""

    def __init__(self, run: Run) -> None:
        self.run = run

    @classmethod
    def of(cls, run_id: str) -> RenderJob:
        """The job of run `run_id` (NotFound when there is no such run)."""
        return cls(runs.get(run_id))

    @property
    def backend(self) -> Backend:
        """The backend the run was sent to (the configured one for a run that predates the choice)."""
        return backends.backend(self.run.backend or settings().render.backend)

    @property
    def unconfirmed(self) -> bool:
        """A submit was sent, or may have been, and no job id was ever recorded for it."""
        return self.run.job_id is None and self.run.submit_state in ("sending", "uncertain")

    @property
    def heartbeat_due(self) -> bool:
        """The waiting task should hear from its job: a third of its heartbeat timeout has passed."""
        last = self.run.heartbeat_at or self.run.submitted_at
        return bool(self.run.task_token) and age_seconds(last) >= settings().render.heartbeat_seconds / 3

    def lifespan_seconds(self) -> int:
        """How long the run's job may live on the backend: its queue ttl, then its execution timeout."""
        current = settings()
        return backends.lifespan_seconds(current.render.queue_ttl_seconds, current.render.execution_timeout_seconds)

    def lost_after_seconds(self) -> int:
        """How long an unconfirmed submit may stay silent before its job cannot exist any more."""
        return self.lifespan_seconds() + UNCONFIRMED_SLACK_SECONDS

    # ---------- transitions ----------

    def begin(self, task_token: str) -> bool:
        """The Render task started: the run moves to `rendering` and keeps the task's token. False when the
        run left the render stage first (cancelled before the task began)."""
        if not runs.advance(self.run, "rendering"):
            self.run.refresh()
            if self.run.status != "rendering":
                return False
        self._set(Run.task_token.set(task_token))
        return True

    def submitting(self) -> None:
        """A submit is about to be sent; if the answer is lost, this says one may have arrived."""
        self._set(Run.submit_state.set("sending"), Run.submit_attempts.add(1))

    def submitted(self, job_id: str) -> bool:
        """The backend accepted the job. False when the job's own webhook came first and adopted it."""
        now = now_iso()
        return self._set_if(
            [
                Run.job_id.set(job_id),
                Run.job_status.set(IN_QUEUE),
                Run.progress.set(0),
                Run.submit_state.set("submitted"),
                Run.submitted_at.set(now),
            ],
            Run.job_id.does_not_exist(),
        )

    def uncertain(self) -> None:
        """The submit was sent but its answer never came: wait for the job to report, never resend."""
        self._set(Run.submit_state.set("uncertain"), Run.submitted_at.set(self.run.submitted_at or now_iso()))

    def unsent(self) -> None:
        """Nothing was accepted (the backend was unreachable or overloaded): a later attempt may send again."""
        self._set(Run.submit_state.remove())

    def refused(self, error: Exception) -> None:
        """The backend refused the job; its reason is kept."""
        self._set(Run.submit_state.set("refused"), Run.backend_error.set(_error_text(str(error))))

    def adopted(self, job_id: str) -> bool:
        """A job reported back for a submit whose answer was never recorded: it is the run's job now."""
        if not self._set_if([Run.job_id.set(job_id), Run.submit_state.set("submitted")], Run.job_id.does_not_exist()):
            self.run.refresh()
            return False
        return True

    def progressed(self, state: JobState, heartbeat: bool) -> None:
        """The job is queued or running: its status, progress, and whether the task was sent a heartbeat."""
        now = now_iso()
        actions: list[Action] = [Run.job_status.set(state.status), Run.checked_at.set(now)]
        if state.progress is not None:
            actions.append(Run.progress.set(state.progress))
        if heartbeat:
            actions.append(Run.heartbeat_at.set(now))
        self._set(*actions)

    def completed(self, state: JobState, keys: list[str]) -> None:
        """The job's images are in the media bucket under `keys`; the run no longer counts against its owner's
        concurrent runs."""
        self._set(
            Run.job_status.set(COMPLETED),
            Run.progress.set(100),
            Run.outputs.set(keys),
            Run.timings.set(state.timings),
            Run.rendered_at.set(now_iso()),
        )
        credits.release_slot(self.run)

    def failed(self, failure: Exception, state: JobState | None = None) -> None:
        """The job failed, timed out, vanished or came back without images; the backend's text is kept."""
        text = state.error if state and state.error else str(failure)
        self._set(Run.job_status.set(state.status if state else "FAILED"), Run.backend_error.set(_error_text(text)))

    def cancelled(self) -> bool:
        """The client cancelled: the run moves to `cancelled` (False when it may no longer be) and its
        backend job, if it has one, is stopped. A job that cannot be stopped is recorded, not raised."""
        if not runs.advance(self.run, "cancelled"):
            return False
        self.stop()
        return True

    def stop(self) -> None:
        """Cancel the run's backend job, if it has one, and record whether that worked."""
        if not (self.run.job_id and self.run.backend and self.backend.capabilities.cancel):
            return
        try:
            self.backend.cancel(self.run.job_id)
        except Exception as error:  # the run is cancelled either way; the backend's own limits end the job
            logger.exception("cancelling the backend job failed", extra={"run_id": self.run.run_id})
            self._set(Run.backend_error.set(_error_text(f"the backend job could not be cancelled: {error}")))
        else:
            self._set(Run.job_status.set(CANCELLED))

    # ---------- writes ----------

    def _set(self, *actions: Action) -> None:
        self.run.update(actions=[*actions, Run.updated_at.set(now_iso())])

    def _set_if(self, actions: list[Action], condition: Condition) -> bool:
        return update_if(self.run, [*actions, Run.updated_at.set(now_iso())], condition)


def age_seconds(timestamp: str | None) -> float:
    """Seconds since an ISO timestamp; infinite when there is none."""
    if not timestamp:
        return float("inf")
    return time.time() - epoch_of(timestamp)


def _error_text(text: str) -> str:
    return scrubbed(text)[:ERROR_LIMIT]
